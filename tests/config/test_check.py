"""``layerwise check``: one line per check, exit 0/1/2, against real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import logs
from server.check import CheckResult, run_checks
from server.cli import main
from server.config import Settings, load_settings
from server.sim.spoolman.standin import SpoolmanStandin


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("LAYERWISE_"):
            monkeypatch.delenv(name)
    yield
    # `check` installs a log handler on the captured stderr; later tests must not write to it.
    if logs._handler is not None:
        logging.getLogger().removeHandler(logs._handler)
        logs._handler = None


def unused_port() -> int:
    """A port nothing listens on: bound, then released, so a connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, spoolman_url: str, printer_port: int) -> Path:
    path = tmp_path / "layerwise.toml"
    path.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"
[spoolman]
url = "{spoolman_url}"
timeout = 2
[[printers]]
name = "Workshop X1C"
host = "127.0.0.1"
serial = "00M09A350100001"
access_code = "12345678"
mqtt_port = {printer_port}
ftps_port = {printer_port}
"""
    )
    return path


def test_unreachable_printer_and_spoolman(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = unused_port()
    spoolman = f"http://127.0.0.1:{unused_port()}"
    config = write_config(tmp_path, spoolman, port)
    assert main(["check", "--config", str(config), "--timeout", "10"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"configuration {config}: ok (1 printer, Spoolman {spoolman})"
    assert out[1].startswith('printer "Workshop X1C" MQTT: failed: ')
    assert out[2].startswith('printer "Workshop X1C" FTPS: failed: ')
    assert out[3].startswith(f"Spoolman {spoolman}: failed: ")
    assert len(out) == 4
    assert "12345678" not in "\n".join(out)


def test_invalid_configuration_exits_2_with_the_problems_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "spoolman:7912", 70000)
    assert main(["check", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "spoolman.url: 'spoolman:7912' is not an http(s) URL; expected Spoolman's base URL, "
        "such as http://spoolman:7912",
        "printers[0].mqtt_port: is 70000; expected a TCP port number 1-65535 (the printer's MQTT port is 8883)",
        "printers[0].ftps_port: is 70000; expected a TCP port number 1-65535 (the printer's FTPS port is 990)",
    ]


def test_nothing_configured_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "empty.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path}"\n')
    assert main(["check", "--config", str(config)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"configuration {config}: ok (0 printers)",
        "printers: failed: none configured ([[printers]] or LAYERWISE_PRINTER_*)",
        "Spoolman: failed: not configured (spoolman.url or LAYERWISE_SPOOLMAN_URL)",
    ]


async def test_spoolman_ok_against_the_stand_in(tmp_path: Path) -> None:
    standin = SpoolmanStandin()
    await standin.start()
    try:
        settings = load_settings(write_config(tmp_path, standin.url, unused_port()), env={})
        *_, spoolman = await run_checks(settings, timeout=10)
    finally:
        await standin.stop()
    assert spoolman.ok, spoolman.line()
    assert spoolman.line().startswith(f"Spoolman {standin.url}: ok (version ")


def test_line_format() -> None:
    assert CheckResult('printer "A" MQTT', True, "logged in as bblp, TLS verified").line() == (
        'printer "A" MQTT: ok (logged in as bblp, TLS verified)'
    )
    assert CheckResult('printer "A" FTPS', False, "access code refused").line() == (
        'printer "A" FTPS: failed: access code refused'
    )
    assert CheckResult("Spoolman http://x", True).line() == "Spoolman http://x: ok"


async def test_virtual_printer_and_stand_in_all_ok(tmp_path: Path) -> None:
    from server.sim.printer import VirtualPrinter

    async with VirtualPrinter(serial="01P00A000000077", cert_dir=tmp_path / "certs") as printer:
        standin = SpoolmanStandin()
        await standin.start()
        try:
            settings = settings_for(tmp_path, printer, standin.url, "12345678")
            wrong = settings_for(tmp_path, printer, standin.url, "87654321")
            results = await run_checks(settings, timeout=10)
            refused = await run_checks(wrong, timeout=10)
        finally:
            await standin.stop()
    assert [r.line().split(": ok")[0] for r in results if r.ok] == [
        'printer "Virtual P1S" MQTT',
        'printer "Virtual P1S" FTPS',
        f"Spoolman {standin.url}",
    ]
    assert [r.ok for r in refused] == [False, False, True]
    assert "87654321" not in "\n".join(r.line() for r in refused)


def settings_for(tmp_path: Path, printer: object, spoolman_url: str, code: str) -> Settings:
    path = tmp_path / f"virtual-{code}.toml"
    path.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"
[spoolman]
url = "{spoolman_url}"
[[printers]]
name = "Virtual P1S"
host = "127.0.0.1"
serial = "{printer.serial}"
access_code = "{code}"
mqtt_port = {printer.mqtt_port}
ftps_port = {printer.ftps_port}
ca_file = "{printer.ca_cert_path}"
"""  # type: ignore[attr-defined]
    )
    return load_settings(path, env={})
