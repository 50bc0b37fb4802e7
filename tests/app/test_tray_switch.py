"""A spool runs out mid-print and the AMS continues from a backup tray: later layers bill the backup's spool."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.analysis import analyze_file
from server.sim.demo_print import demo_3mf
from server.sim.printer import AmsUnit, Tray
from tests.app.conftest import PRINTER, Stack, make_stack

RUNOUT_LAYER = 12


def used_mm(stack: Stack, spool_id: int) -> float:
    return float(stack.spoolman.store.get_spool(spool_id)["used_length"])


async def wait_layer(stack: Stack, layer: int) -> None:
    tracker = stack.runtime.printers[PRINTER].jobs
    async with asyncio.timeout(20):
        while tracker.job is None or (tracker.job.last_layer or 0) < layer:
            await asyncio.sleep(0.02)


async def test_runout_to_backup_tray_moves_billing_to_the_backup_spool(tmp_path: Path) -> None:
    path = tmp_path / "demo.gcode.3mf"
    path.write_bytes(demo_3mf(layers=30))
    analysis = analyze_file(path)
    colours = ["000000FF", "FFFFFFFF", "C12E1FFF", "00AE42FF"]
    # AMS 1 holds a second spool of the same black PLA as tray 0: the AMS's auto-refill backup.
    units = [AmsUnit(0, "ams", [Tray(i, "PLA", colours[i]) for i in range(4)]),
             AmsUnit(1, "ams", [Tray(0, "PLA", "000000FF")])]
    async with make_stack(tmp_path, ams=units) as stack:
        await stack.wait_online()
        for tray, spool in ((0, 1), (1, 4), (2, 5), (3, 6), (4, 7)):
            await stack.runtime.slots.assign(PRINTER, tray, spool, move=True)
        before = {spool: used_mm(stack, spool) for spool in (1, 7)}
        stack.printer.add_file("/cache/demo.gcode.3mf", path)
        await stack.printer.start_print("/cache/demo.gcode.3mf", ams_mapping=[0, 1, 2, 3])
        tracker = stack.runtime.printers[PRINTER].jobs
        async with asyncio.timeout(30):
            while tracker.analysis is None:
                await asyncio.sleep(0.05)
        for layer in range(1, analysis.layer_count + 1):
            if layer == RUNOUT_LAYER:
                await stack.printer.runout(0, backup_ams_id=1, backup_slot=0)
            await stack.printer.advance(1)
            await wait_layer(stack, layer)
        await stack.printer.finish()
        async with asyncio.timeout(20):
            while tracker.job.open or (await stack.runtime.outbox.backlog()).backlog.count:
                await asyncio.sleep(0.05)

        (switch,) = tracker.trays.switches.switches
        assert (switch.filament, switch.old_tray, switch.new_tray) == (0, 0, 4)
        first = used_mm(stack, 1) - before[1]
        backup = used_mm(stack, 7) - before[7]
        total = analysis.used_through(analysis.layer_count)[0]
        assert abs(first + backup - total) < 0.01  # nothing lost or doubled across the switch
        # The backup was first loaded in the layer before the runout layer's report (the demo loads
        # filament 0 again late in each layer); from that layer on, filament 0 bills the backup's spool.
        assert switch.from_layer == RUNOUT_LAYER - 1
        assert abs(first - analysis.used_through(switch.from_layer - 1)[0]) < 0.01
        assert abs(backup - (total - analysis.used_through(switch.from_layer - 1)[0])) < 0.01
