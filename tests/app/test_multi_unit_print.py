"""One print across two AMS units, an AMS HT and the external spool: each spool billed what the analysis says."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.analysis import analyze_file
from server.sim.demo_print import demo_3mf
from server.sim.printer import AmsUnit, Tray
from tests.app.conftest import PRINTER, make_stack

# slicer filament -> global tray: AMS 0 slot 0, AMS 1 slot 1, AMS HT 128, external 254
MAPPING = [0, 5, 128, 254]
SPOOLS = {0: 1, 5: 3, 128: 4, 254: 6}


@pytest.mark.parametrize("model", ["X1C", "P1S"])
async def test_print_across_every_kind_of_unit(tmp_path: Path, model: str) -> None:
    path = tmp_path / "demo.gcode.3mf"
    path.write_bytes(demo_3mf(layers=16))
    analysis = analyze_file(path)
    units = [AmsUnit(0), AmsUnit(1), AmsUnit(128, "ams_ht")]
    async with make_stack(tmp_path, model=model, ams=units, external=Tray(254, "PETG")) as stack:
        await stack.wait_online()
        for tray, spool in SPOOLS.items():
            await stack.runtime.slots.assign(PRINTER, tray, spool, move=True)
        store = stack.spoolman.store
        before = {spool: store.get_spool(spool)["used_length"] for spool in SPOOLS.values()}
        stack.printer.add_file("/cache/demo.gcode.3mf", path)
        await stack.printer.start_print("/cache/demo.gcode.3mf", ams_mapping=MAPPING)
        tracker = stack.runtime.printers[PRINTER].jobs
        for layer in range(1, analysis.layer_count + 1):
            await stack.printer.advance(1)
            async with asyncio.timeout(20):
                while tracker.job is None or (tracker.job.last_layer or 0) < layer:
                    await asyncio.sleep(0.02)
        await stack.printer.finish()
        async with asyncio.timeout(30):
            while tracker.job.open or tracker.analysis is None or \
                    (await stack.runtime.outbox.backlog()).backlog.count:
                await asyncio.sleep(0.05)
        totals = analysis.used_through(analysis.layer_count)
        for filament, tray in enumerate(MAPPING):
            spool = SPOOLS[tray]
            billed = store.get_spool(spool)["used_length"] - before[spool]
            assert abs(billed - totals[filament]) < 0.01, (filament, tray, billed, totals[filament])
