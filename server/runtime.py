"""The running service: settings, storage, Spoolman, and one supervised task per printer.

Built once by ``serve``/``demo`` (and by tests), handed to the web app, and
started/stopped by the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from server.billing.figures import ledger_figures
from server.billing.ledger import write_session
from server.billing.outbox import Outbox
from server.billing.settlement import settle_grace
from server.config import PrinterConfig, Settings
from server.datadir import DataDirLock, lock_data_dir
from server.db import Database, open_database, repo
from server.db.leases import LEASE_INTERVAL, OUTBOX, LeaseStore, check_held, fair_share, printer_resource, wanted
from server.events import Event, EventBus
from server.forecast.service import ForecastService, JobView
from server.instruments import from_environment
from server.jobs.tracker import JobTracker
from server.metrics import LedgerFigures, Metric, Metrics, ledger_families, printer_families
from server.notify.service import Notifications
from server.printer.task import PrinterTask
from server.printer.tls import PinStore
from server.slots.rfid_service import RfidService
from server.slots.service import SlotService
from server.spoolman import SpoolmanClient
from server.spoolman.directory import SpoolDirectory
from server.supervise import stop_tasks, supervise

log = logging.getLogger(__name__)

FIGURES_TTL = 10.0  # seconds the ledger's figures on /metrics may be reused (several scrapers, a refresh)


def printer_task(config: PrinterConfig, *, db: Database, bus: EventBus, data_dir: Path, outbox: Outbox | None = None,
                 rfid: RfidService | None = None, spools: SpoolDirectory | None = None,
                 metrics: Metrics | None = None) -> PrinterTask[JobTracker]:
    """One printer's task, wired to its job tracker (both share the printer's pinned certificates)."""
    pins = PinStore(data_dir)
    jobs = JobTracker(config, db=db, bus=bus, outbox=outbox, data_dir=data_dir, pins=pins, spools=spools)
    return PrinterTask(config, db=db, bus=bus, pins=pins, jobs=jobs, rfid=rfid,
                       on_report=metrics.report_counter(config.name) if metrics is not None else None)


def job_view(task: PrinterTask[JobTracker]) -> JobView | None:
    """The printer's open, analysed job as the forecast sees it (None: nothing to forecast)."""
    tracker, job = task.jobs, task.jobs.job
    if job is None or not job.open or tracker.analysis is None or tracker.job_id is None:
        return None
    through = job.billing.billed_through
    return JobView(tracker.job_id, tracker.analysis, through, tracker.trays.mapping_at(through + 1, job.known),
                   task.snapshot)


def _spool_changed(spools: SpoolDirectory, bus: EventBus, spool_id: int) -> None:
    """A bill reached Spoolman: the cached spool is stale and open pages should refresh it."""
    spools.invalidate(spool_id)
    bus.publish(Event("spool", None, {"spool_id": spool_id}))


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: EventBus
    spoolman: SpoolmanClient | None
    spools: SpoolDirectory
    slots: SlotService
    printers: dict[str, PrinterTask[JobTracker]]
    outbox: Outbox | None = None
    rfid: RfidService | None = None
    data_lock: DataDirLock | None = None
    notifications: Notifications | None = None
    forecast: ForecastService | None = None
    metrics: Metrics = field(default_factory=Metrics)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _figures: tuple[float, LedgerFigures] | None = None  # (monotonic time, the ledger's figures) for /metrics
    # Several instances on PostgreSQL: what this one holds (resource -> its task), who holds the rest.
    instance: str = ""
    held: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        data_lock = lock_data_dir(settings.server.data_dir)  # first: one process per data dir (DataDirInUse)
        db = open_database(settings.server.data_dir, settings.server.database_url_text())
        spoolman = (
            SpoolmanClient(settings.spoolman.url, timeout=settings.spoolman.timeout, api_key=settings.spoolman.api_key)
            if settings.spoolman.url
            else None
        )
        metrics = Metrics()
        if spoolman is not None:
            spoolman.on_error = metrics.spoolman_error
        spools = SpoolDirectory(spoolman)
        bus = EventBus()
        outbox = None
        if spoolman is not None:
            outbox = Outbox(
                db,
                spoolman,
                on_change=lambda spool_id: _spool_changed(spools, bus, spool_id), on_fresh=spools.put,
                settle_grace=settle_grace(settings.spoolman.timeout),
                on_delivered=metrics.delivered,
            )
        data_dir = settings.server.data_dir
        names = [p.name for p in settings.printers]
        slots = SlotService(db, spools, bus, names, outbox=outbox)
        if outbox is not None:
            outbox.on_slot_cleared = slots.spool_deleted
        rfid = RfidService(settings.rfid, spoolman, slots, bus, db)
        printers = {
            p.name: printer_task(p, db=db, bus=bus, data_dir=data_dir, outbox=outbox, rfid=rfid, spools=spools,
                                 metrics=metrics)
            for p in settings.printers
        }
        for printer in settings.printers:
            repo.upsert_printer(db, printer.name, printer.serial, printer.model)
            seed = settings.seed_mappings.get(printer.name)
            if seed and repo.seed_env_mappings(db, printer.name, seed):
                source = settings.seed_sources.get(printer.name, "the configuration")
                log.info("seeded %d slot assignment(s) for %s from %s", len(seed), printer.name, source)
        forecasts = ForecastService(db, bus, spools, lambda name: job_view(printers[name]), printers)
        runtime = cls(settings, db, bus, spoolman, spools, slots, printers, outbox, rfid, data_lock=data_lock,
                      forecast=forecasts, metrics=metrics)
        if settings.notifications.urls:
            # Offline messages only for the printers this instance tracks (several instances on PostgreSQL).
            runtime.notifications = Notifications(
                settings.notifications, bus, db, spools, spoolman,
                lambda: {name: p.online for name, p in printers.items() if runtime.tracked_by(name) is None})
        metrics.add_source(runtime._scraped)
        return runtime

    def _scraped(self) -> list[Metric]:
        """The figures computed at scrape: the ledger's (read again at most every FIGURES_TTL seconds: a
        year of prints is a second of SQLite on a small machine), and which printers are connected."""
        now = time.monotonic()
        if self._figures is None or now - self._figures[0] >= FIGURES_TTL:
            self._figures = (now, ledger_figures(self.db))
        online = {name: task.online for name, task in self.printers.items()}
        return [*ledger_families(self._figures[1]), *printer_families(online)]

    def tracked_by(self, printer: str) -> str | None:
        """None when this instance tracks the printer (always with SQLite); else the instance that does,
        or "" while nobody does (being taken over)."""
        if not self.db.is_postgresql or printer_resource(printer) in self.held:
            return None
        return self.holders.get(printer_resource(printer), "")

    async def start(self) -> None:
        instruments = from_environment()
        if instruments is not None:  # benchmarks only (bench.farm): loop lag and commit times from inside
            self._tasks.append(asyncio.create_task(instruments.run(), name="instruments"))
        if self.notifications is not None:  # on each instance: a printer's events come from its holder
            self._tasks.append(asyncio.create_task(supervise("notifications", self.notifications.run),
                                                   name="notifications"))
        if self.forecast is not None:
            self._tasks.append(asyncio.create_task(supervise("runout forecast", self.forecast.run), name="forecast"))
        if self.db.is_postgresql:
            self.instance = self.instance or f"{socket.gethostname()}:{self.settings.server.port}"
            self._tasks.append(asyncio.create_task(supervise("leases", self._keep_leases), name="leases"))
            return
        if self.outbox is not None:
            self._tasks.append(asyncio.create_task(supervise("Spoolman outbox", self.outbox.run), name="outbox"))
        for name, printer in self.printers.items():
            self._tasks.append(asyncio.create_task(supervise(f"printer {name!r}", printer.run), name=name))

    async def _keep_leases(self) -> None:
        """Every LEASE_INTERVAL: heartbeat, then take the outbox and a fair share of the free printers.

        A printer taken gets a new task built now, so it resumes from the checkpoint as it is in the
        database (written by the instance that held it until it died), exactly as after a restart.
        Any database error means the leases may be gone with the connection: stop everything held.
        """
        store = LeaseStore(self.db, self.instance)
        self.db.fence = lambda session, printer: check_held(session, store.pid, printer_resource(printer))
        first = True
        try:
            while True:
                try:
                    await asyncio.to_thread(store.heartbeat, list(self.held))
                    if not first:  # one round late, so instances starting together see each other
                        await self._take(store)
                    first = False
                except Exception:
                    log.exception("leases: the database connection failed; stopping every printer held")
                    await self._release_all()
                    await asyncio.to_thread(store.drop)
                await asyncio.sleep(LEASE_INTERVAL)
        finally:
            await self._release_all()
            await asyncio.to_thread(store.drop)

    async def _take(self, store: LeaseStore) -> None:
        if self.outbox is not None and OUTBOX not in self.held and await asyncio.to_thread(store.try_take, OUTBOX):
            log.info("leases: %s delivers the bills to Spoolman", self.instance)
            self.held[OUTBOX] = asyncio.create_task(supervise("Spoolman outbox", self.outbox.run), name="outbox")
        if self.outbox is not None and OUTBOX in self.held:
            self.outbox.wake()  # bills written by the other instances wake no one here: look every round
        free = [name for name in self.printers if printer_resource(name) not in self.held]
        owned = len(self.printers) - len(free)
        room = wanted(free, owned, len(self.printers), await asyncio.to_thread(store.alive))
        for name in free:
            if room <= 0:
                break
            if await asyncio.to_thread(store.try_take, printer_resource(name)):
                room -= 1
                config = next(p for p in self.settings.printers if p.name == name)
                task = await asyncio.to_thread(
                    printer_task, config, db=self.db, bus=self.bus, data_dir=self.settings.server.data_dir,
                    outbox=self.outbox, rfid=self.rfid, spools=self.spools, metrics=self.metrics)
                self.printers[name] = task
                self.held[printer_resource(name)] = asyncio.create_task(
                    supervise(f"printer {name!r}", task.run), name=name)
                log.info("leases: %s tracks printer %r", self.instance, name)
        alive = await asyncio.to_thread(store.alive)
        mine = [name for name in self.printers if printer_resource(name) in self.held]
        if alive > 1 and len(mine) > fair_share(len(self.printers), alive):
            await self._hand_on(store, mine[-1])  # one a round: a newcomer takes it (rebalancing)
        if self.held:
            await asyncio.to_thread(store.heartbeat, list(self.held))
        self.holders = await asyncio.to_thread(store.holders)
        for name, task in self.printers.items():
            if printer_resource(name) not in self.held:
                await asyncio.to_thread(task.refresh_from_store)

    async def _hand_on(self, store: LeaseStore, name: str) -> None:
        """Let another instance track ``name``: stop its task, save its state, end the lease.

        The lease ends inside a ledger write transaction: a bill of this printer's task still in flight
        (a thread outlives its cancelled task) has committed before it, or comes after it and is refused
        by the fence, so the next holder resumes from a checkpoint nobody writes behind its back.
        """
        await stop_tasks(self.held.pop(printer_resource(name)))
        await asyncio.to_thread(self.printers[name].persist)

        def end_lease() -> None:
            with write_session(self.db) as session:
                store.release(printer_resource(name))
                session.commit()

        await asyncio.to_thread(end_lease)
        log.info("leases: %s hands printer %r on to another instance", self.instance, name)

    async def _release_all(self) -> None:
        tasks, self.held = list(self.held.values()), {}
        await stop_tasks(*tasks)

    async def stop(self) -> None:
        mine = [name for name in self.printers if self.tracked_by(name) is None]  # before the leases end
        await stop_tasks(*self._tasks)
        self._tasks.clear()
        if self.rfid is not None:
            await self.rfid.aclose()
        for name in mine:  # another instance's printer is its to save
            await asyncio.to_thread(self.printers[name].persist)
        if self.spoolman is not None:
            await self.spoolman.aclose()
        self.db.close()
        if self.data_lock is not None:
            self.data_lock.release()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object = None) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
