"""One printer's long-lived task: its MQTT link, its merged state, and (later) its jobs.

The link delivers reports; the state model merges them; the task announces
changes on the event bus and keeps the last known state in SQLite so the
dashboard has something to show right after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.config import PrinterConfig
from server.db import Database, repo
from server.events import Event, EventBus
from server.printer.link import LinkStatus, PrinterLink
from server.printer.state import OnceLog, merge_report
from server.printer.tls import PinStore
from server.printer.trays import PrinterView, printer_view
from server.tracking.job_tracker import JobTracker
from server.tracking.outbox import Outbox
from server.tracking.rfid_service import RfidService
from server.tracking.spools import SpoolDirectory

log = logging.getLogger(__name__)

PERSIST_EVERY = 10.0  # seconds between state snapshots; a crash loses at most this much display state


def is_full_report(body: dict[str, Any]) -> bool:
    """A report with the printer's whole state: ``msg: 0`` (P1/A1 answer ``pushall`` so), or, from
    printers that always report everything (X1, H2), one with the job and AMS fields."""
    msg = body.get("msg")
    return msg == 0 or (msg is None and "gcode_state" in body and "ams" in body)


class PrinterTask:
    def __init__(self, config: PrinterConfig, *, db: Database, bus: EventBus, data_dir: Path,
                 outbox: Outbox | None = None, rfid: RfidService | None = None,
                 spools: SpoolDirectory | None = None) -> None:
        self.config = config
        self.name = config.name
        self.db = db
        self.bus = bus
        self.pins = PinStore(data_dir)
        state, _online, last_seen = repo.load_printer_state(db, self.name)
        self.state: dict[str, Any] = state or {}
        self.online = False
        self.last_seen: datetime | None = last_seen
        self.link_error: str | None = None
        self._persisted_at = 0.0
        self._persisting: asyncio.Task[None] | None = None
        self.link: PrinterLink | None = None
        self.version: dict[str, Any] | None = None
        self.project_file: dict[str, Any] | None = None
        self._live_state = False  # the state holds reports received by this process
        self.rfid = rfid
        self.once = OnceLog(config.name)
        self.jobs = JobTracker(config, db=db, bus=bus, outbox=outbox, data_dir=data_dir, pins=self.pins,
                               spools=spools)
        self.jobs.restore()

    async def run(self) -> None:
        self.link = PrinterLink(self.config, self.pins)
        try:
            await self.link.run(self._on_message, self._on_status)
        finally:
            await self.jobs.close()

    async def _on_message(self, message: dict[str, Any]) -> None:
        self.last_seen = datetime.now(UTC)
        info = message.get("info")
        if isinstance(info, dict) and info.get("command") == "get_version":
            self.version = info
            self.bus.publish(Event("printer", self.name, {}))
            return
        body = message.get("print")
        if not isinstance(body, dict):
            return
        command = body.get("command")
        previous = self.state
        if command == "project_file":
            # The print command's echo describes the job; it is not printer state.
            self.project_file = body
            await self._track(previous, self.state, body)
        elif command in (None, "push_status"):
            self.state = merge_report(self.state, body)
            self._live_state = True
            view = self.view()  # once per report: the tracker and RFID matching share it
            await self._track(previous, self.state, None, full=is_full_report(body), view=view)
            if self.rfid is not None:
                await self.rfid.on_view(self.name, view)
        else:
            return
        self.bus.publish(Event("printer", self.name, {}))
        if time.monotonic() - self._persisted_at > PERSIST_EVERY:
            self._persisted_at = time.monotonic()
            # In a worker thread, off the path of the next report; a snapshot of the state is taken now.
            snapshot = dict(self.state)
            self._persisting = asyncio.create_task(asyncio.to_thread(
                repo.save_printer_state, self.db, self.name, snapshot, self.online, self.last_seen))

    async def _track(self, previous: dict[str, Any], current: dict[str, Any], echo: dict[str, Any] | None,
                     *, full: bool = False, view: PrinterView | None = None) -> None:
        try:
            await self.jobs.on_update(previous, current, echo, full=full, view=view)
        except Exception:
            # A tracking bug must not take the printer link down with it; the checkpoint
            # is intact, so the next report retries from where billing stood.
            log.exception("%s: tracking failed on a report", self.name)

    def view(self) -> PrinterView:
        return printer_view(self.state, self.version, self.project_file, once=self.once)

    async def _on_status(self, status: LinkStatus) -> None:
        was_online = self.online
        self.online = status.online
        self.link_error = None if status.online or status.state == "connecting" else status.detail
        if was_online != self.online:
            log.info("printer %s is %s", self.name, "online" if self.online else "offline")
            if self.online and self.rfid is not None and self._live_state:
                # Look at every tray again after a reconnect, starting with what this process saw last
                # (never the snapshot from before a restart): the printer's next full report may be a
                # while away, as pushall is rate-limited.
                self.rfid.reset(self.name)
                await self.rfid.on_view(self.name, self.view())
        self.bus.publish(Event("printer", self.name, {"online": self.online}))

    def persist(self) -> None:
        self._persisted_at = time.monotonic()
        repo.save_printer_state(self.db, self.name, self.state, self.online, self.last_seen)
