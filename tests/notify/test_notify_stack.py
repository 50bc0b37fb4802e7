"""Notifications from a whole Layerwise (virtual printer, Spoolman stand-in): a forecast and the job's end
arrive at a real HTTP receiver through Apprise's json:// target, with the grams the ledger billed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.billing import statements
from server.config.reach import NotificationsConfig
from server.events import Event
from server.sim.demo_print import demo_3mf
from tests.app.conftest import PRINTER, make_stack
from tests.notify.receiver import Receiver


async def test_forecast_and_job_end_reach_the_phone(tmp_path: Path, receiver: Receiver) -> None:
    # low_stock_g: every spool is "low", so each billed spool is told about once.
    config = NotificationsConfig(urls=[receiver.url], events=["runout", "job_finished", "low_stock"],
                                 low_stock_g=100_000, runout_within_layers=2)
    async with make_stack(tmp_path, {"notifications": config}) as stack:
        await stack.wait_online()
        for tray, spool in ((0, 1), (1, 4), (2, 5), (3, 6)):
            await stack.runtime.slots.assign(PRINTER, tray, spool, move=True)
        stack.printer.add_file("/cache/demo.gcode.3mf", demo_3mf(layers=6))
        await stack.printer.start_print("/cache/demo.gcode.3mf", ams_mapping=[0, 1, 2, 3])
        tracker = stack.runtime.printers[PRINTER].jobs
        async with asyncio.timeout(30):
            while tracker.analysis is None:
                await asyncio.sleep(0.05)
        job_id = tracker.job_id
        forecast = {"job_id": job_id, "trays": [{"tray": 0, "spool_id": 1, "status": "runs_out", "runout_layer": 4,
                                                 "total_layers": 6, "runout_in_s": 300.0, "needed_g": 35.0,
                                                 "remaining_g": 20.0, "filament": "PLA Black"}]}
        stack.runtime.bus.publish(Event("forecast", PRINTER, forecast))
        first = await receiver.next()
        await stack.printer.advance(3)
        async with asyncio.timeout(30):
            while (tracker.job.billing.billed_through or 0) < 2:
                await asyncio.sleep(0.05)
        stack.runtime.bus.publish(Event("forecast", PRINTER, forecast))  # within 2 layers now: said once more
        await stack.printer.finish()
        bodies = [first]
        while not any(b["title"].endswith("finished") for b in bodies):
            bodies.append(await receiver.next())
        detail = await asyncio.to_thread(statements.job_detail, stack.runtime.db, job_id)

    assert first["title"] == f"{PRINTER}: Filament will run out"
    assert first["message"].startswith("Tray A1 (PLA Black, spool #1) runs out during layer 4 of 6, about 5 min")
    titles = [b["title"] for b in bodies]
    assert titles.count(f"{PRINTER}: Filament runs out soon") == 1
    (ended,) = [b for b in bodies if b["title"].endswith("finished")]
    assert ended["title"] == f"{PRINTER}: {detail.name} finished"
    for part in detail.parts:  # the ledger's grams per spool
        assert f"(spool #{part.spool_id}): " in ended["message"]
    low = [b for b in bodies if "running low" in b["title"]]
    assert low and len(low) == len({t for t in titles if "running low" in t})  # each billed spool, once
