"""One printer's long-lived task: its MQTT link, its merged state, and the feed to its jobs.

The link delivers reports; the state model merges them; the task turns each
merged state into one typed ``PrinterSnapshot`` (``printer.snapshot``), once per
report, and hands that on: to the job tracker, to RFID matching, to the pages
(``view``). It announces changes on the event bus and keeps the last known state
in SQLite so the dashboard has something to show right after a restart. The job
tracker and the RFID matcher it feeds are given to it (``server.runtime.printer_task``
wires them): printer I/O sits below the job lifecycle and does not import it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from server.config import PrinterConfig
from server.db import Database, repo
from server.events import Event, EventBus
from server.printer.errors import BadReport
from server.printer.link import LinkStatus, PrinterLink
from server.printer.refusals import is_full_report
from server.printer.snapshot import (
    BLANK,
    PrinterSnapshot,
    ProjectFile,
    TrayMemo,
    project_file,
    reported_fields,
    same_state,
    snapshot,
)
from server.printer.state import (
    ECHO_FIELDS,
    VERSION_FIELDS,
    CleanMemo,
    Problem,
    clean_report,
    clean_state,
    merge_clean,
)
from server.printer.tls import PinStore
from server.printer.trays import PrinterView
from server.printer.values import OnceLog

log = logging.getLogger(__name__)

PERSIST_EVERY = 10.0  # seconds between state snapshots; a crash loses at most this much display state
REPORT_SAMPLE_CHARS = 4096  # the last raw report kept for diagnostics, cut to this

class JobFeed(Protocol):
    """What the task feeds each report's snapshot to: the job tracker (``server.jobs.tracker.JobTracker``)."""

    def restore(self) -> None: ...

    async def on_update(self, previous: PrinterSnapshot, current: PrinterSnapshot,
                        echo: ProjectFile | None = None, *, full: bool = False) -> None: ...

    async def no_full_state(self) -> None: ...

    async def close(self) -> None: ...


class TrayWatcher(Protocol):
    """What the task shows each tray view to: RFID matching (``server.slots.rfid_service.RfidService``)."""

    async def on_view(self, printer: str, view: PrinterView) -> None: ...

    def reset(self, printer: str) -> None: ...


Jobs = TypeVar("Jobs", bound=JobFeed)


class PrinterTask(Generic[Jobs]):
    def __init__(self, config: PrinterConfig, *, db: Database, bus: EventBus, pins: PinStore, jobs: Jobs,
                 rfid: TrayWatcher | None = None, on_report: Callable[[], None] | None = None) -> None:
        self.config = config
        self.on_report = on_report  # counts each message received (the metrics); must be cheap
        self.name = config.name
        self.db = db
        self.bus = bus
        self.pins = pins
        state, _online, last_seen = repo.load_printer_state(db, self.name)
        # Cleaned: a snapshot saved by an older version may hold anything a printer once sent.
        self.state: dict[str, Any] = clean_state(state or {})
        self.online = False
        self.last_seen: datetime | None = last_seen
        self.link_error: str | None = None
        # "limited: the printer refuses requests ..." with the consequences and the fix, or None.
        self.limited: str | None = None
        self._persisted_at = 0.0
        self._persisting: asyncio.Task[None] | None = None
        self.link: PrinterLink | None = None
        self.version: dict[str, Any] | None = None
        self.project_file: dict[str, Any] | None = None
        self._live_state = False  # the state holds reports received by this process
        self.rfid = rfid
        self.once = OnceLog(config.name)
        # The last report that could not be (wholly) understood, for the printer card and the API.
        self.last_report_error: str | None = None
        self.last_report_error_at: datetime | None = None
        self._last_message: dict[str, Any] | None = None  # the last report as received, for diagnostics
        self.snapshot = BLANK  # the printer as of its last report: made once per report, read by all
        self._trays = TrayMemo()  # the last report's trays, reused while the AMS parts stay equal
        self._sections = CleanMemo()  # the last report's sections cleaned, reused while sent again alike
        self._resnap()
        self.jobs = jobs
        self.jobs.restore()

    async def run(self) -> None:
        self.link = PrinterLink(self.config, self.pins, on_bad_report=self._refused, on_limited=self._on_limited)
        try:
            await self.link.run(self._on_message, self._on_status)
        finally:
            await self.jobs.close()

    async def _on_message(self, message: dict[str, Any]) -> None:
        if self.on_report is not None:
            self.on_report()
        self.last_seen = datetime.now(UTC)
        self._last_message = message  # encoded only when asked for (last_report): a farm sends hundreds a second
        info = message.get("info")
        if isinstance(info, dict) and info.get("command") == "get_version":
            self.version = self._cleaned(info, VERSION_FIELDS)
            self._resnap()  # the units' kinds and serials
            self.bus.publish(Event("printer", self.name, {}))
            return
        body = message.get("print")
        if not isinstance(body, dict):
            return
        command = body.get("command")
        previous = self.snapshot
        if command == "project_file":
            # The print command's echo describes the job; it is not printer state.
            self.project_file = self._cleaned(body, ECHO_FIELDS)
            self._resnap()  # the job's mapping, for the pages
            echo = project_file(self.project_file, once=self.once)
            await self._track(previous, self.snapshot, echo)
        elif command in (None, "push_status"):
            try:
                report, problems = self._sections.clean(body)
                state = merge_clean(self.state, report, problems)
                changed = bool(problems) or not same_state(state, self.state)
                if changed:
                    current = snapshot(state, version=self.version, echo=self.project_file, report=report,
                                       once=self.once, memo=self._trays)
                else:  # nothing Layerwise reads changed: the last snapshot, with what this report named
                    reported = reported_fields(report)
                    current = previous if previous.reported == reported else replace(previous, reported=reported)
            except Exception as exc:
                # Cleaning should make this impossible; should it happen, the report is dropped and the
                # last good state stays, so tracking goes on with the next report.
                self._problem(f"report:{type(exc).__name__}", f"a report could not be read ({type(exc).__name__}); "
                              "skipped", exc)
                return
            self._note(problems)
            self.state, self.snapshot = state, current
            self._live_state = True
            await self._track(previous, current, None, full=is_full_report(report))
            if self.rfid is not None:
                try:
                    await self.rfid.on_view(self.name, current.view)
                except Exception as exc:  # a matching bug must not take the link down: once per kind
                    self.once.warn(f"rfid:{type(exc).__name__}", "RFID matching failed on a report (%s)",
                                   type(exc).__name__, exc_info=exc)
            if not changed:
                # The pages would show the same again (last_seen is only shown offline): no event, so a
                # farm's open pages do not re-read a printer for each of its temperature reports.
                self._persist_if_due()
                return
        else:
            return
        self.bus.publish(Event("printer", self.name, {}))
        self._persist_if_due()

    def _persist_if_due(self) -> None:
        if time.monotonic() - self._persisted_at > PERSIST_EVERY:
            self._persisted_at = time.monotonic()
            # In a worker thread, off the path of the next report; a snapshot of the state is taken now.
            saved = dict(self.state)
            self._persisting = asyncio.create_task(asyncio.to_thread(
                repo.save_printer_state, self.db, self.name, saved, self.online, self.last_seen))

    def _cleaned(self, body: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        cleaned, problems = clean_report(body, fields)
        self._note(problems)
        return cleaned

    def _note(self, problems: list[Problem]) -> None:
        """Parts of a report that were ignored: logged once per kind, the latest shown on the printer."""
        for problem in problems:
            self.once.warn(problem.kind, "%s", problem.text)
        if problems:
            self.last_report_error = "; ".join(p.text for p in problems[:3])[:300]
            self.last_report_error_at = datetime.now(UTC)

    def _problem(self, kind: str, text: str, exc: BaseException | None = None) -> None:
        self.once.warn(kind, "%s", text, exc_info=exc)
        self.last_report_error, self.last_report_error_at = text, datetime.now(UTC)

    def _refused(self, bad: BadReport) -> None:
        """A report the link refused before decoding (the link has logged it once)."""
        self.last_report_error, self.last_report_error_at = str(bad), datetime.now(UTC)
        self.bus.publish(Event("printer", self.name, {}))

    async def _track(self, previous: PrinterSnapshot, current: PrinterSnapshot, echo: ProjectFile | None,
                     *, full: bool = False) -> None:
        try:
            await self.jobs.on_update(previous, current, echo, full=full)
        except Exception:
            # A tracking bug must not take the printer link down with it; the checkpoint
            # is intact, so the next report retries from where billing stood.
            log.exception("%s: tracking failed on a report", self.name)

    async def _on_limited(self, limited: str | None) -> None:
        """The printer refuses (or ignores) requests: no full state will come, so an open job goes on
        from the printer's reports; the card shows why and what to change."""
        self.limited = limited
        if limited is not None:
            await self.jobs.no_full_state()
        self.bus.publish(Event("printer", self.name, {}))

    def view(self) -> PrinterView:
        """The tray and job view of the last report (the snapshot's: never built again for a page)."""
        return self.snapshot.view

    def _resnap(self) -> None:
        """The snapshot of the state as it stands (at start, or when the version or the job's echo
        arrives), reporting no print fields of its own. Never raises: the last good one stays."""
        try:
            self.snapshot = snapshot(self.state, version=self.version, echo=self.project_file, once=self.once)
        except Exception as exc:
            self._problem(f"view:{type(exc).__name__}", f"the printer's state could not be shown "
                          f"({type(exc).__name__})", exc)

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

    @property
    def last_report(self) -> str:
        """The last report as received, cut to REPORT_SAMPLE_CHARS."""
        return "" if self._last_message is None else _sample(self._last_message)

    def refresh_from_store(self) -> None:
        """A printer another instance tracks (several instances on PostgreSQL): show what it last saved."""
        state, online, last_seen = repo.load_printer_state(self.db, self.name)
        self.state, self.online, self.last_seen = clean_state(state or {}), online, last_seen
        self._resnap()

    def persist(self) -> None:
        self._persisted_at = time.monotonic()
        repo.save_printer_state(self.db, self.name, self.state, self.online, self.last_seen)


def _sample(message: dict[str, Any]) -> str:
    try:
        text = json.dumps(message, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return "(not JSON)"
    return text if len(text) <= REPORT_SAMPLE_CHARS else text[:REPORT_SAMPLE_CHARS] + "..."
