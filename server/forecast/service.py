"""Keeps each printer's runout forecast up to date and publishes it on the event bus.

It listens on the bus like any page does, so tracking never waits for it: a job's announcement
(started, analysed, a layer billed), a slot assignment or a spool delivered marks the printer for a
new forecast (a delivered spool: only the printers it was in at their last forecast, so a farm's
deliveries do not each recompute every printer); bursts are coalesced. Spoolman is read through the
spool cache, and the ledger's bills still on their way to Spoolman are taken off each spool's
remaining weight. The ``forecast`` event's payload is documented in docs/tracking.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from server.analysis import PrintAnalysis
from server.billing.backlog import queued_grams
from server.db import Database, repo
from server.events import Event, EventBus
from server.forecast.core import Forecast, Pace, SpoolFacts, TrayFacts, forecast
from server.printer.snapshot import LAYER_STATES, PrinterSnapshot
from server.spoolman import Spool, SpoolmanError
from server.spoolman.directory import SpoolDirectory

log = logging.getLogger(__name__)

TRIGGERS = frozenset({"job", "slot", "spool"})  # what changes a forecast (``printer`` reports do not: pace only)
# After an event that changes a forecast, the service waits this long for the rest of its burst: a layer's
# bills (a ``job`` event) and their deliveries (a ``spool`` event per spool) come within a fraction of a
# second, and each refreshed the printer on its own (bench.farm: up to five refreshes per printer and
# layer). Short beside any layer, so the forecast is as current; well under a second of a farm's events,
# so the bus's queue (256) does not overflow meanwhile.
GATHER_SECONDS = 0.5


@dataclass(frozen=True)
class JobView:
    """What the forecast needs of a printer's open, analysed job (runtime.py builds it from the tracker)."""

    job_id: int
    analysis: PrintAnalysis
    billed_through: int
    mapping: Mapping[int, int]  # slicer filament -> tray, for the next layer to bill
    snapshot: PrinterSnapshot


@dataclass(frozen=True)
class JobForecast:
    job_id: int
    forecast: Forecast
    billed_through: int = -1  # the job's layer billed last when it was made (not in the event)

    def event(self) -> dict[str, object]:
        return {"job_id": self.job_id, "trays": [t.event() for t in self.forecast.trays]}


def spool_facts(spool: Spool, waiting_g: float = 0.0) -> SpoolFacts:
    """Spoolman's spool, less what the ledger still has to bill it."""
    remaining = spool.remaining_weight
    colour = (spool.filament.color_hex or "")[:6].lower() or None
    return SpoolFacts(spool.id, None if remaining is None else remaining - waiting_g, spool.filament.density,
                      spool.filament.diameter, filament_id=spool.filament.id, material=spool.filament.material,
                      color_hex=colour)


def pace_of(snapshot: PrinterSnapshot, analysis: PrintAnalysis) -> Pace | None:
    """The print's current pace from the printer's remaining time; before it prints, the slicer's estimate."""
    status = snapshot.status
    if status.gcode_state in LAYER_STATES and status.remaining_minutes is not None and (status.layer or 0) >= 1:
        return Pace(status.remaining_minutes * 60.0, status.layer or 1, status.total_layers or analysis.layer_count)
    if analysis.prediction_s:
        return Pace(float(analysis.prediction_s), 1, analysis.layer_count)
    return None


def tray_facts(snapshot: PrinterSnapshot, assigned: Mapping[int, int], found: Mapping[int, Spool | None],
               waiting: Mapping[int, float]) -> dict[int, TrayFacts]:
    """Every tray the printer reports, with its assigned spool (None when unassigned or unreadable).

    ``found`` must be read from Spoolman (or the cache) *before* ``waiting`` from the ledger: a delivery
    that lands in between is then at worst counted nowhere (the forecast is late by one refresh), never
    both in Spoolman's weight and in the waiting grams (a runout told layers too early)."""
    out: dict[int, TrayFacts] = {}
    for tray in snapshot.trays:
        spool_id = assigned.get(tray.global_index)
        spool = found.get(spool_id) if spool_id is not None else None
        facts = spool_facts(spool, waiting.get(spool.id, 0.0)) if spool is not None else None
        out[tray.global_index] = TrayFacts(tray.global_index, facts, tray.material, tray.color_hex, tray.present,
                                           tray.external)
    for tray, spool_id in assigned.items():  # assigned but not reported (yet): still a spool to count
        spool = found.get(spool_id)
        if tray not in out and spool is not None:
            out[tray] = TrayFacts(tray, spool_facts(spool, waiting.get(spool_id, 0.0)))
    return out


class ForecastService:
    def __init__(self, db: Database, bus: EventBus, spools: SpoolDirectory,
                 jobs: Callable[[str], JobView | None], printers: Iterable[str],
                 gather: Callable[[], Awaitable[object]] | None = None) -> None:
        self.db = db
        self._gather = gather or (lambda: asyncio.sleep(GATHER_SECONDS))
        self.bus = bus
        self.spools = spools
        self.jobs = jobs
        self.printers = list(printers)
        self.latest: dict[str, JobForecast] = {}
        self._sent: dict[str, dict[str, object]] = {}
        self._held: dict[str, frozenset[int]] = {}  # printer -> the spools in its trays at its last forecast

    def of(self, printer: str, job_id: int | None = None) -> JobForecast | None:
        latest = self.latest.get(printer)
        return latest if latest is not None and (job_id is None or latest.job_id == job_id) else None

    async def run(self) -> None:
        async with self.bus.subscribe() as queue:
            await self.refresh(self.printers)  # a job resumed after a restart
            while True:
                dirty = set(self.touched(await queue.get()))
                if not dirty:
                    continue
                await self._gather()  # the rest of the burst: one refresh for all of it
                while not queue.empty():
                    dirty.update(self.touched(queue.get_nowait()))
                await self.refresh(sorted(p for p in dirty if p in self.printers))

    def touched(self, event: Event) -> list[str]:
        """The printers whose forecast ``event`` may change."""
        if event.kind == "spool" and event.printer is None and isinstance(event.data.get("spool_id"), int):
            # A delivery changes its spool's weight and waiting grams, nothing else. Printers never
            # forecast successfully (Spoolman was down, no job) are taken too: their spools are unknown.
            spool_id = event.data["spool_id"]
            return [p for p in self.printers if spool_id in self._held.get(p, (spool_id,))]
        if event.kind in TRIGGERS or event.kind == "resync":
            return [event.printer] if event.printer else self.printers
        return []

    async def refresh(self, printers: Iterable[str]) -> None:
        views = {printer: self.jobs(printer) for printer in printers}
        if not views:
            return
        # Spoolman first, the ledger second (see tray_facts); one ledger read for all of them, and one
        # read of the slot assignments.
        wanted = [printer for printer, view in views.items() if view is not None]
        trays = await asyncio.to_thread(repo.trays_of, self.db, wanted) if wanted else {}
        read: dict[str, tuple[JobView, dict[int, int], dict[int, Spool | None]]] = {}
        for printer, view in views.items():
            if view is None:
                continue
            assigned = trays[printer]
            try:
                read[printer] = (view, assigned, await self.spools.get_many(assigned.values()))
            except SpoolmanError as exc:  # Spoolman down: the last forecast stands until it answers
                log.debug("%s: forecast not updated: %s", printer, exc)
                self._held.pop(printer, None)
            else:
                self._held[printer] = frozenset(assigned.values())
        through = {view.job_id: view.billed_through for view, _, _ in read.values()}
        waiting = await asyncio.to_thread(queued_grams, self.db, through) if read else {}
        for printer, view in views.items():
            if view is None:
                self._ended(printer)
            elif printer in read:
                _, assigned, found = read[printer]
                trays = tray_facts(view.snapshot, assigned, found, waiting)
                result = JobForecast(view.job_id, forecast(
                    view.analysis, view.billed_through, view.mapping, trays, pace_of(view.snapshot, view.analysis),
                    auto_refill=view.snapshot.auto_refill), view.billed_through)
                self.latest[printer] = result
                self._publish(printer, result.event())

    def _ended(self, printer: str) -> None:
        self._held.pop(printer, None)
        gone = self.latest.pop(printer, None)
        if gone is not None:  # the job ended: say so once, so pages and listeners drop the warning
            self._publish(printer, {"job_id": gone.job_id, "trays": []})

    def _publish(self, printer: str, payload: dict[str, object]) -> None:
        if self._sent.get(printer) == payload:
            return  # nothing new: listeners (notifications) hear each change once
        self._sent[printer] = payload
        self.bus.publish(Event("forecast", printer, payload))
