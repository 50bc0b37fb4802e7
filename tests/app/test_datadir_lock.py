"""One Layerwise process per data directory (issue 9, item 7): a second ``layerwise serve`` or ``demo``
on a directory in use exits 2 with one line, before it contacts any printer; the lock goes with the
process that held it, however it ends."""

from __future__ import annotations

import os
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

from server.datadir import DataDirInUse, lock_data_dir
from server.web.embedded import bind_tcp

STARTUP_S = 60  # an upper bound for a slow, loaded machine, never a measured duration


def _free_port() -> int:
    with bind_tcp("127.0.0.1", 0) as probe:
        return int(probe.getsockname()[1])


def _config(path: Path, data_dir: Path, port: int, printer_port: int | None = None) -> Path:
    text = f'''
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data_dir}"

[spoolman]
url = "http://127.0.0.1:9"
'''
    if printer_port is not None:
        text += f'''
[[printers]]
name = "Probe"
host = "127.0.0.1"
serial = "00M09A350100009"
access_code = "12345678"
tls = "insecure"
model = "X1C"
mqtt_port = {printer_port}
ftps_port = {printer_port}
'''
    path.write_text(text)
    return path


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "server", *args]


@contextmanager
def _serving(config: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """A real ``layerwise serve``, once it answers /healthz."""
    process = subprocess.Popen(_command("serve", "--config", str(config)), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "layerwise serve did not come up"
            time.sleep(0.1)  # polling interval for the condition above, not a timing assertion
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=STARTUP_S)


def _refused(args: list[str]) -> str:
    """Run a second process to its end; it must exit 2 with one line on stderr, nothing else."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=STARTUP_S)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_a_second_serve_or_demo_on_the_same_data_directory_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = _free_port()
    with socket.socket() as printer:  # a "printer" only the second process is told about
        printer.bind(("127.0.0.1", 0))
        printer.listen()
        printer.setblocking(False)
        second = _config(tmp_path / "second.toml", data, _free_port(), printer.getsockname()[1])
        with _serving(_config(tmp_path / "first.toml", data, port), port) as first:
            line = _refused(_command("serve", "--config", str(second)))
            assert f"another Layerwise (pid {first.pid}) is already using {data.resolve()}" in line
            line = _refused(_command("demo", "--data-dir", str(data), "--port", str(_free_port())))
            assert f"(pid {first.pid})" in line
            with pytest.raises(BlockingIOError):
                printer.accept()  # the refused process never contacted its printer
        # The first one stopped: the directory is free again.
        with _serving(_config(tmp_path / "again.toml", data, port), port):
            pass


def test_the_lock_goes_with_a_killed_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = _free_port()
    config = _config(tmp_path / "layerwise.toml", data, port)
    with _serving(config, port) as first:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=STARTUP_S)
    with _serving(config, port):  # no stale lock: starts at once after a SIGKILL
        pass


def test_within_one_process_the_lock_is_shared_and_released(tmp_path: Path) -> None:
    one = lock_data_dir(tmp_path / "d")
    two = lock_data_dir(tmp_path / "d" / ".." / "d")  # the same directory, spelled differently
    probe = [sys.executable, "-c", f"from server.datadir import lock_data_dir; lock_data_dir({str(tmp_path / 'd')!r})"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    held = subprocess.run(probe, capture_output=True, text=True, env=env, timeout=STARTUP_S)
    assert held.returncode != 0 and DataDirInUse.__name__ in held.stderr and f"pid {os.getpid()}" in held.stderr
    one.release()
    one.release()  # idempotent: does not release the other holder's share
    assert subprocess.run(probe, capture_output=True, env=env, timeout=STARTUP_S).returncode != 0
    two.release()
    assert subprocess.run(probe, capture_output=True, env=env, timeout=STARTUP_S).returncode == 0
