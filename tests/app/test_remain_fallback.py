"""A job whose sliced file cannot be obtained: RFID trays' remaining percent is billed as estimates."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.jobs import store as job_store
from server.sim.printer import AmsUnit, Tray
from server.sim.spoolman import DEMO_TRAY_UUIDS
from tests.app.conftest import PRINTER, make_stack


async def test_untracked_job_bills_remaining_percent_drops_as_estimates(tmp_path: Path) -> None:
    # Tray 0 holds spool 3 (seeded by hand); tray 1 holds a tagged Bambu spool.
    trays = [Tray(0), Tray(1, "PLA", "000000FF", tray_uuid=DEMO_TRAY_UUIDS["pla_black"], remain=80), Tray(2), Tray(3)]
    async with make_stack(tmp_path, ams=[AmsUnit(0, "ams", trays)]) as stack:
        await stack.wait_online()
        runtime, printer = stack.runtime, stack.printer
        store = stack.spoolman.store
        before = store.get_spool(1)["used_weight"]
        async with asyncio.timeout(15):  # RFID assigns spool 1 (it carries the tray's tag)
            while not any(a.tray == 1 and a.spool_id == 1 for a in await runtime.slots.assignments(PRINTER)):
                await asyncio.sleep(0.05)

        # A print started elsewhere whose file is on no storage the printer serves.
        await printer.publish_report({"print": {"command": "push_status", "msg": 1, "gcode_state": "RUNNING",
                                                "subtask_name": "ghost", "gcode_file": "ghost.gcode.3mf",
                                                "layer_num": 1, "mc_percent": 1}})
        tracker = runtime.printers[PRINTER].jobs
        async with asyncio.timeout(30):
            while tracker.job is None or tracker.job.lifecycle != "untracked":
                await asyncio.sleep(0.05)
        assert tracker.job.untracked_reason

        await printer.push_tray_change(0, 1, remain=78)
        await printer.push_tray_change(0, 1, remain=70)  # 10 points of a 1000 g spool since the start
        await printer.push_tray_change(0, 1, remain=69.8)  # under half a point: not billed yet
        async with asyncio.timeout(15):
            while store.get_spool(1)["used_weight"] < before + 99.9:
                await asyncio.sleep(0.05)
        assert abs(store.get_spool(1)["used_weight"] - (before + 100.0)) < 0.01
        (summary,) = job_store.list_jobs(runtime.db, PRINTER)
        assert summary.job.state == "untracked"
        (usage,) = summary.usage
        assert usage.spool_id == 1 and usage.estimate is True
        assert abs(usage.grams - 100.0) < 0.01
