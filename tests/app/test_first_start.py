"""The first start, as a new user meets it (issue 12, items 4-6): real ``layerwise`` processes.

- a configuration without printers runs with zero printers on its own data directory, never the demo;
- the demo (nothing configured at all) says it is a demo, listens on loopback, prints a localhost URL,
  logs in one format, and SIGTERM removes its temporary folder as Ctrl-C does;
- a port in use stops ``serve`` and ``demo`` with one line and exit 2 before any printer is contacted.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from server.web.embedded import bind_tcp

STARTUP_S = 60  # an upper bound for a slow, loaded machine, never a measured duration
ROOT = Path(__file__).parents[2]
# Our one log line shape: "2026-12-04 18:03:36,879 WARNING server.web.serve: text".
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ")


def _free_port() -> int:
    with bind_tcp("127.0.0.1", 0) as probe:
        return int(probe.getsockname()[1])


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user who configured nothing; temporary folders go under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAYERWISE_")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**env, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path / "home")}


@contextmanager
def _started(args: list[str], env: dict[str, str], ready: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """A real ``layerwise`` process, once a line of its combined output contains ``ready``."""
    process = subprocess.Popen([sys.executable, "-m", "server", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + STARTUP_S
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if ready in line:
                break
            assert time.monotonic() < deadline, lines
        else:
            raise AssertionError(f"ended before {ready!r}: {lines}")
        yield process, lines
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=STARTUP_S)


def _rest(process: subprocess.Popen[str], lines: list[str]) -> list[str]:
    assert process.stdout is not None
    return lines + process.stdout.read().splitlines()


def _wait_healthy(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None
        assert time.monotonic() < deadline, "did not come up"
        time.sleep(0.1)  # polling interval for the condition above, not a timing assertion


def test_a_config_without_printers_runs_on_its_own_settings_not_the_demo(tmp_path: Path) -> None:
    port, data = _free_port(), tmp_path / "data"
    config = tmp_path / "layerwise.toml"
    config.write_text(f'[server]\nhost = "127.0.0.1"\nport = {port}\ndata_dir = "{data}"\n')
    env = _clean_env(tmp_path)
    with _started(["serve", "--config", str(config)], env, "no printers") as (process, lines):
        _wait_healthy(port, process)
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/printers").json() == []
        page = httpx.get(f"http://127.0.0.1:{port}/").text
        assert "No printers configured yet" in page and "[[printers]]" in page
        assert (data / "layerwise.db").exists()
        assert not list((tmp_path / "tmp").glob("layerwise-demo-*"))
        process.terminate()
        output = "\n".join(_rest(process, lines))
    assert "demo" not in output.lower(), output
    assert "[[printers]]" in output  # the log line says how to add one


def test_the_demo_says_so_listens_on_loopback_and_sigterm_removes_its_folder(tmp_path: Path) -> None:
    port = _free_port()
    env = _clean_env(tmp_path)
    with _started(["serve", "--port", str(port)], env, "open http://") as (process, lines):
        _wait_healthy(port, process)
        folders = list((tmp_path / "tmp").glob("layerwise-demo-*"))
        assert len(folders) == 1
        with socket.socket() as s:  # listening on loopback only: the same port is free on other addresses
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.2", port))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STARTUP_S) == 0
        output = _rest(process, lines)
    text = "\n".join(output)
    assert f"open http://localhost:{port}" in text
    assert "This is a demo" in text
    assert not folders[0].exists(), "SIGTERM left the demo's temporary folder behind"
    assert "LAYERWISE_AMS_MAPPINGS" not in text  # nothing was set
    assert "seeded 3 slot assignment(s) for Demo X1C from the demo" in text
    assert "uvicorn.error" not in text and "Traceback" not in text
    log_lines = [line for line in output if re.match(r"^(\S+ - )?\d{4}-|^(DEBUG|INFO|WARNING|ERROR)", line)]
    assert log_lines and all(LOG_LINE.match(line) for line in log_lines), log_lines


def _refused(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True, env=env,
                          timeout=STARTUP_S)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_one_line_and_exit_2_before_any_printer_is_contacted(tmp_path: Path, command: str) -> None:
    env = _clean_env(tmp_path)
    with socket.socket() as taken, socket.socket() as printer:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        printer.bind(("127.0.0.1", 0))
        printer.listen()
        printer.setblocking(False)
        config = tmp_path / "layerwise.toml"
        config.write_text(f'''
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{tmp_path / 'data'}"

[[printers]]
name = "Probe"
host = "127.0.0.1"
serial = "00M09A350100009"
access_code = "12345678"
tls = "insecure"
mqtt_port = {printer.getsockname()[1]}
ftps_port = {printer.getsockname()[1]}
''')
        args = ["serve", "--config", str(config)] if command == "serve" else ["demo", "--port", str(port)]
        line = _refused(args, env)
        assert f"127.0.0.1:{port} is already in use" in line and "--port" in line
        with pytest.raises(BlockingIOError):
            printer.accept()  # never contacted
    assert not list((tmp_path / "tmp").glob("layerwise-demo-*"))
