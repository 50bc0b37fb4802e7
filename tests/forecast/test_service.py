"""The forecast service: recomputes on the bus's job, slot and spool events and publishes a ``forecast``
event when, and only when, something changed. A real SQLite file; spools come from the spool cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.analysis import analyze_file
from server.db import open_database, repo
from server.events import Event, EventBus
from server.forecast.service import ForecastService, JobView
from server.printer.snapshot import BLANK
from server.spoolman import Spool
from server.spoolman.directory import SpoolDirectory
from server.spoolman.models import Filament

FILE = Path(__file__).resolve().parents[1] / "fixtures" / "print-files" / "p1s-2colour-bs2.05.gcode.3mf"


def black_spool(remaining: float) -> Spool:
    filament = Filament(id=1, density=1.24, diameter=1.75, material="PLA", color_hex="161616")
    return Spool(id=12, filament=filament, remaining_weight=remaining)


async def test_publishes_each_change_once_and_an_empty_forecast_when_the_job_ends(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    repo.upsert_printer(db, "p", "SERIAL", None)
    repo.assign_spool(db, "p", 1, 12, "manual")
    bus, spools = EventBus(), SpoolDirectory(None, ttl=3600)
    spools.put(black_spool(5.0))
    analysis = analyze_file(FILE)
    job: list[JobView | None] = [JobView(7, analysis, -1, {3: 1}, BLANK)]
    service = ForecastService(db, bus, spools, lambda _name: job[0], ["p"])
    async with bus.subscribe() as queue:
        await service.refresh(["p"])
        event = queue.get_nowait()
        assert (event.kind, event.printer, event.data["job_id"]) == ("forecast", "p", 7)
        (tray,) = event.data["trays"]
        # 5 g of filament 3 runs out during layer 31 (tests/forecast/test_core.py works it out by hand).
        assert (tray["tray"], tray["spool_id"], tray["status"], tray["runout_layer"]) == (1, 12, "runs_out", 31)
        # Before layer 1, at the slicer's pace: 7745 s over 100 layers, 30 layers to go.
        assert tray["runout_in_s"] == 30 * 7745 / 100
        assert service.of("p", 7) is not None and service.of("p", 8) is None

        await service.refresh(["p"])
        assert queue.empty()  # nothing changed: nothing said

        job[0] = None
        await service.refresh(["p"])
        assert queue.get_nowait().data == {"job_id": 7, "trays": []}
        assert service.of("p") is None
    db.close()


async def test_a_job_event_on_the_bus_brings_a_new_forecast(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    repo.upsert_printer(db, "p", "SERIAL", None)
    repo.assign_spool(db, "p", 1, 12, "manual")
    bus, spools = EventBus(), SpoolDirectory(None, ttl=3600)
    spools.put(black_spool(500.0))
    view = JobView(7, analyze_file(FILE), -1, {3: 1}, BLANK)
    service = ForecastService(db, bus, spools, lambda _name: view, ["p"])
    async with bus.subscribe() as queue:
        task = asyncio.create_task(service.run())
        first = await asyncio.wait_for(queue.get(), 30)  # the forecast made at start
        assert first.data["trays"][0]["status"] == "enough"
        spools.put(black_spool(1.0))
        bus.publish(Event("spool", None, {"spool_id": 12}))
        while (event := await asyncio.wait_for(queue.get(), 30)).kind != "forecast":
            pass
        assert event.data["trays"][0]["status"] == "runs_out"
        task.cancel()
    db.close()
