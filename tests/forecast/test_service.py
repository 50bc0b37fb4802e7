"""The forecast service: recomputes on the bus's job, slot and spool events and publishes a ``forecast``
event when, and only when, something changed. A real SQLite file; spools come from the spool cache."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from pathlib import Path

from sqlmodel import select

from server.analysis import PrintAnalysis, analyze_file
from server.billing import ledger
from server.billing.rules import BillLine
from server.db import Database, open_database, repo
from server.db.ledger_tables import LedgerEntry
from server.events import Event, EventBus
from server.forecast.service import ForecastService, JobView
from server.jobs import store as job_store
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


# The ledger's bills and Spoolman's weight are read at different moments while tracking and the outbox
# go on: whatever lands in between may make a forecast late by one refresh, never count a bill twice
# (a runout told layers too early, and a notification that is sent once).

BILLED = 6  # layers 0..6 of filament 3 billed in the ledger, not yet in Spoolman


def filament_3_grams(analysis: PrintAnalysis, through: int) -> list[BillLine]:
    """Filament 3's bills of layers 0..``through``, grams by hand for the black spool (PLA, 1.75 mm)."""
    lines = []
    for layer in range(through + 1):
        mm = analysis.layers[layer].get(3, 0.0)
        if mm:
            lines.append(BillLine(layer, 3, mm, mm * math.pi * (1.75 / 2) ** 2 / 1000 * 1.24, False))
    return lines


def bill(db: Database, job_id: int, lines: list[BillLine]) -> None:
    with db.session() as session:
        ledger.add_bills(session, job_id, lines, [1] * len(lines))
        session.commit()


def deliver_all(db: Database) -> None:
    with db.session() as session:
        for entry in session.exec(select(LedgerEntry)).all():
            entry.state = "delivered"
            session.add(entry)
        session.commit()


async def runout(db: Database, spools: SpoolDirectory, view: JobView) -> int | None:
    service = ForecastService(db, EventBus(), spools, lambda _name: view, ["p"])
    await service.refresh(["p"])
    result = service.of("p")
    assert result is not None
    (tray,) = result.event()["trays"]  # type: ignore[misc]
    assert tray["status"] == "runs_out"
    return tray["runout_layer"]


def job_db(tmp_path: Path) -> tuple[Database, int]:
    db = open_database(tmp_path)
    repo.upsert_printer(db, "p", "SERIAL", None)
    repo.assign_spool(db, "p", 1, 12, "manual")
    return db, job_store.create_job(db, "p", "k", state="printing").id


async def test_bills_committed_before_the_tracker_moves_on_count_once(tmp_path: Path) -> None:
    analysis = analyze_file(FILE)
    lines = filament_3_grams(analysis, BILLED)
    spent = sum(line.grams for line in lines)
    db, job_id = job_db(tmp_path)
    spools = SpoolDirectory(None, ttl=3600)
    spools.put(black_spool(5.0 + spent))
    before = await runout(db, spools, JobView(job_id, analysis, -1, {3: 1}, BLANK))

    bill(db, job_id, lines)
    # The tracker commits the bills, then moves its billed_through: a forecast made in between sees the
    # bills in the ledger and the layers still to bill.
    assert await runout(db, spools, JobView(job_id, analysis, -1, {3: 1}, BLANK)) == before
    # Moved on: the layers are no longer needed, and their grams are still waiting for Spoolman.
    assert await runout(db, spools, JobView(job_id, analysis, BILLED, {3: 1}, BLANK)) == before
    db.close()


class DeliveredWhileRead(SpoolDirectory):
    """The outbox's answer lands while the forecast reads the spool: Spoolman's new weight is what the
    read returns, and the bills are marked delivered just before (as ``Outbox._finish`` does)."""

    def __init__(self, db: Database, after: Spool) -> None:
        super().__init__(None, ttl=3600)
        self.db, self.after = db, after

    async def get_many(self, spool_ids: Iterable[int]) -> dict[int, Spool | None]:
        await asyncio.to_thread(deliver_all, self.db)
        self.put(self.after)
        return await super().get_many(spool_ids)


async def test_a_delivery_landing_during_the_forecast_is_not_counted_twice(tmp_path: Path) -> None:
    analysis = analyze_file(FILE)
    lines = filament_3_grams(analysis, BILLED)
    db, job_id = job_db(tmp_path)
    view = JobView(job_id, analysis, BILLED, {3: 1}, BLANK)
    quiet = SpoolDirectory(None, ttl=3600)
    quiet.put(black_spool(5.0))
    expected = await runout(db, quiet, view)  # nothing waiting, Spoolman already has the bills

    bill(db, job_id, lines)
    assert await runout(db, DeliveredWhileRead(db, black_spool(5.0)), view) == expected
    db.close()


def two_printers(tmp_path: Path) -> tuple[Database, SpoolDirectory, JobView]:
    """Printers p and q with spools 12 and 20 in tray 1 (cached, 500 g each), and a job's view."""
    db = open_database(tmp_path)
    for printer, spool_id in (("p", 12), ("q", 20)):
        repo.upsert_printer(db, printer, printer.upper(), None)
        repo.assign_spool(db, printer, 1, spool_id, "manual")
    spools = SpoolDirectory(None, ttl=3600)
    spools.put(black_spool(500.0))
    spools.put(Spool(id=20, filament=black_spool(0).filament, remaining_weight=500.0))
    return db, spools, JobView(7, analyze_file(FILE), -1, {3: 1}, BLANK)


async def test_a_delivered_spool_recomputes_only_the_printers_it_is_in(tmp_path: Path) -> None:
    """A farm delivers bills all the time; each delivery recomputing all 100 printers' forecasts was half of
    Layerwise's CPU (docs/benchmarks.md). A printer not yet forecast (its spools unknown) is still taken."""
    db, spools, view = two_printers(tmp_path)
    service = ForecastService(db, EventBus(), spools, lambda _name: view, ["p", "q", "r"])
    delivered = Event("spool", None, {"spool_id": 12})
    assert service.touched(delivered) == ["p", "q", "r"]  # nothing forecast yet
    await service.refresh(["p", "q", "r"])
    assert service.touched(delivered) == ["p"]  # r has no trays: nothing of it depends on spool 12
    assert service.touched(Event("spool", None, {"spool_id": 99})) == []
    assert service.touched(Event("slot", "q", {"tray": 1})) == ["q"]
    assert service.touched(Event("resync")) == ["p", "q", "r"]
    assert service.touched(Event("printer", "p")) == []
    db.close()


class Refreshes(ForecastService):
    """Records the printers of each refresh."""

    calls: list[list[str]]

    async def refresh(self, printers: Iterable[str]) -> None:
        printers = list(printers)
        self.calls = [*getattr(self, "calls", []), printers]
        await super().refresh(printers)


async def test_a_layer_and_its_deliveries_are_one_refresh(tmp_path: Path) -> None:
    """A layer's bills (a job event) and their deliveries (a spool event each) came as separate refreshes
    of the printer; the service waits for the rest of the burst and refreshes once."""
    db, spools, view = two_printers(tmp_path)
    bus, burst_over = EventBus(), asyncio.Event()
    service = Refreshes(db, bus, spools, lambda _name: view, ["p", "q"], gather=burst_over.wait)
    async with bus.subscribe() as queue:
        task = asyncio.create_task(service.run())
        while (await asyncio.wait_for(queue.get(), 30)).kind != "forecast":
            pass  # the forecasts made at start: p's, then q's
        while (await asyncio.wait_for(queue.get(), 30)).kind != "forecast":
            pass
        bus.publish(Event("printer", "q"))  # a report: changes no forecast, nothing waits for it
        bus.publish(Event("job", "p", {"billed_through": 0}))
        for _ in range(3):
            await asyncio.sleep(0)  # the service now waits for the rest of the burst
        bus.publish(Event("spool", None, {"spool_id": 12}))
        bus.publish(Event("spool", None, {"spool_id": 20}))
        assert service.calls == [["p", "q"]]  # only the one at start so far
        burst_over.set()

        async def refreshed_again() -> None:
            while len(service.calls) < 2:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(refreshed_again(), 30)
        assert service.calls == [["p", "q"], ["p", "q"]]
        task.cancel()
    db.close()
