"""`layerwise check` says when a printer refuses requests, with the fix (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_check import settings_for

from server.check import run_checks
from server.sim.printer import VirtualPrinter
from server.sim.spoolman import SpoolmanStandin


@pytest.mark.parametrize("mode", ["cloud", "lan"])
async def test_check_reports_a_printer_that_refuses_requests(tmp_path: Path, mode: str) -> None:
    async with VirtualPrinter(serial="01P00A000000078", cert_dir=tmp_path / "certs", mode=mode) as printer:
        standin = SpoolmanStandin()
        await standin.start()
        try:
            results = await run_checks(settings_for(tmp_path, printer, standin.url, "12345678"), timeout=10)
        finally:
            await standin.stop()
    mqtt = results[0]
    assert mqtt.ok, mqtt.line()
    if mode == "cloud":
        assert "limited: the printer refuses requests" in mqtt.line()
        assert "84033543" in mqtt.line() and "LAN-only mode" in mqtt.line() and "Developer Mode" in mqtt.line()
    else:
        assert "limited" not in mqtt.line()
