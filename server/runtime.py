"""The running service: settings, storage, Spoolman, and one supervised task per printer.

Built once by ``serve``/``demo`` (and by tests), handed to the web app, and
started/stopped by the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from server.billing.outbox import Outbox
from server.billing.settlement import settle_grace
from server.config import PrinterConfig, Settings
from server.datadir import DataDirLock, lock_data_dir
from server.db import Database, open_database, repo
from server.events import Event, EventBus
from server.instruments import from_environment
from server.jobs.tracker import JobTracker
from server.notify.service import Notifications
from server.printer.task import PrinterTask
from server.printer.tls import PinStore
from server.slots.rfid_service import RfidService
from server.slots.service import SlotService
from server.spoolman import SpoolmanClient
from server.spoolman.directory import SpoolDirectory
from server.supervise import supervise

log = logging.getLogger(__name__)


def printer_task(config: PrinterConfig, *, db: Database, bus: EventBus, data_dir: Path, outbox: Outbox | None = None,
                 rfid: RfidService | None = None, spools: SpoolDirectory | None = None) -> PrinterTask[JobTracker]:
    """One printer's task, wired to its job tracker (both share the printer's pinned certificates)."""
    pins = PinStore(data_dir)
    jobs = JobTracker(config, db=db, bus=bus, outbox=outbox, data_dir=data_dir, pins=pins, spools=spools)
    return PrinterTask(config, db=db, bus=bus, pins=pins, jobs=jobs, rfid=rfid)


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
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        data_lock = lock_data_dir(settings.server.data_dir)  # first: one process per data dir (DataDirInUse)
        db = open_database(settings.server.data_dir)
        spoolman = (
            SpoolmanClient(settings.spoolman.url, timeout=settings.spoolman.timeout, api_key=settings.spoolman.api_key)
            if settings.spoolman.url
            else None
        )
        spools = SpoolDirectory(spoolman)
        bus = EventBus()
        outbox = None
        if spoolman is not None:
            outbox = Outbox(
                db,
                spoolman,
                on_change=lambda spool_id: _spool_changed(spools, bus, spool_id), on_fresh=spools.put,
                settle_grace=settle_grace(settings.spoolman.timeout),
            )
        data_dir = settings.server.data_dir
        names = [p.name for p in settings.printers]
        slots = SlotService(db, spools, bus, names, outbox=outbox)
        if outbox is not None:
            outbox.on_slot_cleared = slots.spool_deleted
        rfid = RfidService(settings.rfid, spoolman, slots, bus, db)
        printers = {
            p.name: printer_task(p, db=db, bus=bus, data_dir=data_dir, outbox=outbox, rfid=rfid, spools=spools)
            for p in settings.printers
        }
        for printer in settings.printers:
            repo.upsert_printer(db, printer.name, printer.serial, printer.model)
            seed = settings.seed_mappings.get(printer.name)
            if seed and repo.seed_env_mappings(db, printer.name, seed):
                source = settings.seed_sources.get(printer.name, "the configuration")
                log.info("seeded %d slot assignment(s) for %s from %s", len(seed), printer.name, source)
        runtime = cls(settings, db, bus, spoolman, spools, slots, printers, outbox, rfid, data_lock=data_lock)
        if settings.notifications.urls:
            runtime.notifications = Notifications(settings.notifications, bus, db, spools, spoolman,
                                                  lambda: {name: p.online for name, p in printers.items()})
        return runtime

    async def start(self) -> None:
        instruments = from_environment()
        if instruments is not None:  # benchmarks only (bench.farm): loop lag and commit times from inside
            self._tasks.append(asyncio.create_task(instruments.run(), name="instruments"))
        if self.outbox is not None:
            self._tasks.append(asyncio.create_task(supervise("Spoolman outbox", self.outbox.run), name="outbox"))
        if self.notifications is not None:
            self._tasks.append(asyncio.create_task(supervise("notifications", self.notifications.run),
                                                   name="notifications"))
        for name, printer in self.printers.items():
            self._tasks.append(asyncio.create_task(supervise(f"printer {name!r}", printer.run), name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.rfid is not None:
            await self.rfid.aclose()
        for printer in self.printers.values():
            await asyncio.to_thread(printer.persist)
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
