"""Layerwise as a separate OS process: configuration file, secrets, health, SIGKILL and restart."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
from printer_clients import ACCESS_CODE
from pydantic import SecretStr

from server.config import PrinterConfig, load_settings
from server.sim.printer import VirtualPrinter
from server.sim.process import LayerwiseProcess
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore

PRINTER = "Bench P1S"


def _printer_config(printer: VirtualPrinter) -> PrinterConfig:
    return PrinterConfig(name=PRINTER, host=printer.host, serial=printer.serial, access_code=SecretStr(ACCESS_CODE),
                         mqtt_port=printer.mqtt_port, ftps_port=printer.ftps_port, ca_file=printer.ca_cert_path)


async def test_process_config_kill_and_restart(tmp_path: Path, printer: VirtualPrinter) -> None:
    async with SpoolmanStandin(SpoolmanStore()) as spoolman, LayerwiseProcess(
        tmp_path / "data", spoolman_url=spoolman.url, printers=[_printer_config(printer)],
        seed_mappings={PRINTER: {0: 3}},
    ) as layerwise:
        # The configuration the process reads is valid and carries the code only by reference.
        settings = load_settings(layerwise.config_path, env={})
        assert settings.printer(PRINTER).access_code.get_secret_value() == ACCESS_CODE
        assert settings.seed_mappings == {PRINTER: {0: 3}}
        assert ACCESS_CODE not in layerwise.config_path.read_text()
        code_file = next((tmp_path / "data" / "secrets").iterdir())
        assert stat.S_IMODE(code_file.stat().st_mode) == 0o600
        assert ACCESS_CODE not in repr(layerwise)

        async with httpx.AsyncClient(base_url=layerwise.url, timeout=10) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            first_pid = layerwise.pid
            assert await layerwise.kill() == -9
            assert not layerwise.running
            await layerwise.restart()
            assert layerwise.pid != first_pid
            assert (await client.get("/api/v1/backlog")).status_code == 200

        assert await layerwise.terminate() is not None
        log = layerwise.log_text()
        assert "LayerwiseProcess start 2" in log
        assert ACCESS_CODE not in log
