"""The real Docker image: built from the Dockerfile, run as compose.example.yaml runs it.

Built on a debootstrapped Debian bookworm with Debian's python3 (build-base-image.sh), because Docker
Hub is out of reach on the CI machines; set LAYERWISE_DOCKER_BASE=python:3.12-slim to build on the
default base instead. Needs a running Docker daemon (`.ci/run` installs and starts one). These tests
skip only when told to (LAYERWISE_NO_DOCKER=1); with no daemon they fail, saying so.

The image's health check runs with a 1 s interval here instead of 30 s (`--health-interval`): the
same command, checked sooner.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
BASE_SCRIPT = Path(__file__).with_name("build-base-image.sh")
DEFAULT_BASE = "layerwise-base:bookworm-1"
IMAGE = "layerwise:docker-test"
LAYERWISE_UID = 1000
READY_WITHIN_S = 180  # a generous bound for "never": the demo is healthy within seconds


def _docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


@pytest.fixture(scope="module")
def docker() -> None:
    if os.environ.get("LAYERWISE_NO_DOCKER") == "1":
        pytest.skip("LAYERWISE_NO_DOCKER=1: Docker tests skipped on request")
    if shutil.which("docker") is None:
        pytest.fail("no `docker` command: install docker.io (bash .ci/run does) or set LAYERWISE_NO_DOCKER=1")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.fail(f"the Docker daemon does not answer (start it: `dockerd &`), or set LAYERWISE_NO_DOCKER=1:\n"
                    f"{info.stderr.strip()}")


@pytest.fixture(scope="module")
def image(docker: None) -> str:
    base = os.environ.get("LAYERWISE_DOCKER_BASE", "")
    build_args: list[str] = []
    if not base:
        base = DEFAULT_BASE
        subprocess.run(["bash", str(BASE_SCRIPT), base], check=True, timeout=900)
        # Our base trusts this machine's CAs; pip (from Debian's ensurepip) must use them, not certifi's.
        build_args += ["--build-arg", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt"]
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        # This machine's pip mirror, if any; file:// indexes cannot be seen from inside the build.
        value = " ".join(u for u in os.environ.get(name, "").split() if u.startswith(("http://", "https://")))
        if value:
            build_args += ["--build-arg", f"{name}={value}"]
    # Host networking: the build's pip reaches PyPI as this machine does, whatever the bridge's NAT.
    _docker("build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", *build_args,
            "-t", IMAGE, str(REPO), timeout=900)
    return IMAGE


class Container:
    def __init__(self, image: str, volume: str) -> None:
        self.name = f"layerwise-test-{uuid.uuid4().hex[:10]}"
        # The demo, keeping its data in /data; published on a free port of the host's loopback only.
        _docker("run", "-d", "--init", "--name", self.name, "--health-interval", "1s",
                "-p", "127.0.0.1::7913", "-v", f"{volume}:/data",
                image, "layerwise", "demo", "--host", "0.0.0.0", "--data-dir", "/data")

    def state(self) -> dict:
        return json.loads(_docker("inspect", "-f", "{{json .State}}", self.name).stdout)

    def logs(self) -> str:
        result = _docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            state = self.state()
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                return
            if not state.get("Running") or health == "unhealthy" or time.monotonic() > deadline:
                raise AssertionError(f"container not healthy (running={state.get('Running')}, "
                                     f"health={health}):\n{self.logs()}")
            time.sleep(0.5)

    def url(self) -> str:
        host_port = _docker("port", self.name, "7913/tcp").stdout.split()[0]  # 127.0.0.1:NNNNN
        return f"http://{host_port}"

    def stop(self) -> None:
        _docker("stop", self.name)

    def remove(self) -> None:
        _docker("rm", "-f", self.name, check=False)


@pytest.fixture
def run_container(image: str) -> Iterator:
    started: list[Container] = []

    def run(volume: str) -> Container:
        container = Container(image, volume)
        started.append(container)
        return container

    yield run
    for container in started:
        container.remove()


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode("utf-8", "replace")


def _check_demo_serves(container: Container) -> None:
    container.wait_healthy()
    status, body = _get(f"{container.url()}/healthz")
    assert status == 200, body
    status, body = _get(f"{container.url()}/")
    assert status == 200
    assert "Layerwise" in body


def test_fresh_bind_mount_created_by_root(run_container, tmp_path: Path) -> None:
    # What `docker compose up` does with ./layerwise-data: the daemon creates the missing directory
    # as root:root. A root-owned file in it (say, restored by hand) must become Layerwise's too.
    data = tmp_path / "layerwise-data"
    restored = data / "restored-by-root.txt"
    if os.geteuid() == 0:
        data.mkdir(mode=0o755)
        restored.write_text("x")
    # else: left missing, so the Docker daemon creates it as root:root, as compose does.

    container = run_container(str(data))
    _check_demo_serves(container)
    container.stop()

    assert data.stat().st_uid == LAYERWISE_UID
    if restored.exists():
        assert restored.stat().st_uid == LAYERWISE_UID
    db = data / "layerwise.db"
    assert db.stat().st_uid == LAYERWISE_UID
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM printers").fetchone()[0] >= 1


def test_named_volume(run_container, image: str) -> None:
    volume = f"layerwise-test-{uuid.uuid4().hex[:10]}"
    _docker("volume", "create", volume)
    try:
        container = run_container(volume)
        _check_demo_serves(container)
        container.stop()
        # Read the volume back through a throwaway container of the same image.
        probe = ("import json, os, sqlite3; c = sqlite3.connect('file:/data/layerwise.db?mode=ro', uri=True); "
                 "print(json.dumps({'uid': os.stat('/data/layerwise.db').st_uid, "
                 "'printers': c.execute('SELECT count(*) FROM printers').fetchone()[0]}))")
        out = _docker("run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "/opt/layerwise/bin/python",
                      image, "-c", probe).stdout
        found = json.loads(out)
        assert found["uid"] == LAYERWISE_UID
        assert found["printers"] >= 1
    finally:
        for container_name in _docker("ps", "-aq", "--filter", f"volume={volume}", check=False).stdout.split():
            _docker("rm", "-f", container_name, check=False)
        _docker("volume", "rm", "-f", volume, check=False)
