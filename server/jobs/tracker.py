"""One printer's jobs: from printer reports to checkpoints and ledger bills.

The printer's job lifecycle is ``machine.JobMachine``, one per tracker: the events
``lifecycle.derive_events`` finds in each report (and the resume decision after a
restart, ``jobs.decide_resume``) drive it, and its actions call the pure rules (the
billing rule, the mapping learner) and this adapter's I/O (``JobEffects``: ``commit``,
``record_job``, ``want_file``, ``leave_job``), in this order, so nothing is lost or
billed twice:

1. a decision's bills and the job checkpoint are written in one SQLite transaction
   (``billed.record_bills``), and only then
2. the outbox is woken to deliver them to Spoolman.

Fetching and analysing the job's file runs beside the reports (FTPS in a worker
thread); layers reported meanwhile are billed as soon as the analysis is known,
because billing works from the checkpoint ("billed through layer n"), not from
the events seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
import re
from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.analysis import AnalysisError, PrintAnalysis, analyze_file, plate_thumbnail
from server.billing import ledger
from server.billing.outbox import Outbox
from server.billing.settlement import resolve_tray
from server.config import PrinterConfig
from server.db import Database
from server.events import Event, EventBus
from server.jobs import billed, lifecycle
from server.jobs import store as job_store
from server.jobs.checkpoint import (
    RESUME_FIELDS,
    CloseAndStartNew,
    ContinueSameJob,
    JobCheckpoint,
    ResumeDecision,
    decide_resume,
    decide_resume_from_reports,
    newly_known,
    text,
)
from server.jobs.machine import JobMachine
from server.jobs.mapping import LAYER_SLACK, active_trays
from server.jobs.remaining import RemainEstimator
from server.jobs.switches import TraySwitch, TraySwitchTracker
from server.printer import ftps
from server.printer.errors import JobFileNotFound, PrinterError, PrinterTLSError, PrinterUnreachable
from server.printer.jobpaths import is_http_url
from server.printer.tls import PinStore
from server.printer.trays import PrinterView, locate, printer_view
from server.spoolman.directory import SpoolDirectory

log = logging.getLogger(__name__)

ANALYSIS_FILE = "analysis.json"
THUMBNAIL_FILE = "thumbnail.png"
SWITCHES_FILE = "tray-switches.json"
FETCH_RETRY_DELAYS = (2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)  # seconds between attempts to fetch the file
REASON_LIMIT = 300  # characters of an untracked job's reason (an exception may quote a whole file name)


def _now() -> datetime:
    return datetime.now(UTC)


def _safe_name(name: str) -> str:
    base = posixpath.basename(name.replace("\\", "/")) or "job"
    return re.sub(r"[^A-Za-z0-9._ -]", "_", base)[:120] or "job"


class JobTracker:
    def __init__(self, config: PrinterConfig, *, db: Database, bus: EventBus, outbox: Outbox | None,
                 data_dir: Path, pins: PinStore, spools: SpoolDirectory | None = None) -> None:
        self.config = config
        self.printer = config.name
        self.db = db
        self.bus = bus
        self.outbox = outbox
        self.jobs_dir = Path(data_dir) / "jobs"
        self.pins = pins
        self.machine = JobMachine(self)  # in charge of the job's lifecycle; its model is the job checkpoint
        self.job_id: int | None = None
        self.analysis: PrintAnalysis | None = None
        self._resumed = False  # the printer's state now is known (an open job matched against it)
        self._no_full_state = False  # the printer gives no full state: resume from its deltas
        self._reported: dict[str, Any] = {}  # RESUME_FIELDS the printer reported since the start
        self._last_state: Mapping[str, Any] = {}  # the merged state of the last report
        self._implied: dict[str, Any] = {}  # fields a resume from deltas implies, until the printer reports them
        self._lock = asyncio.Lock()
        self._fetch: asyncio.Task[None] | None = None
        self._detached: set[asyncio.Task[None]] = set()  # files of ended jobs still being read
        self.spools = spools
        self._remain: RemainEstimator | None = None  # only for a job whose file could not be had
        self._start_view: PrinterView | None = None  # the trays when the job started
        self._switches = TraySwitchTracker.for_job()  # auto-refill / swapped trays during this job
        self._feeding: int | None = None  # the slicer filament the loaded tray feeds
        self._given_up: set[int] = set()  # jobs whose file could not be read: not fetched again

    @property
    def job(self) -> JobCheckpoint | None:
        """The printer's current (or last) job: the machine's model."""
        return self.machine.job

    @job.setter
    def job(self, job: JobCheckpoint | None) -> None:
        self.machine.job = job

    # ---- start-up ---------------------------------------------------------------------------------------

    def restore(self) -> None:
        """Load the open job (if any) and its analysis from the data directory."""
        record = job_store.open_job(self.db, self.printer)
        if record is None or not record.checkpoint:
            # Nothing to resume, but the first full report still stands alone: the merged state before
            # it is a snapshot from before the start, and a print already under way was joined, not
            # seen starting (so its `mapping` report is its own, not the last print's).
            return
        self.job_id = record.id
        job = JobCheckpoint.from_dict(record.checkpoint)
        self.job = replace(job, learner=job.learner.after_gap())  # loads while down went unseen
        self.analysis = self._load_analysis(record.id)
        self._switches = self._load_switches(record.id)
        # A crash between saving a known tray (stated, learned or given by a person) and releasing
        # its waiting bills: release them now.
        for filament, tray in self.job.known.items():
            ledger.on_mapping_learned(self.db, record.id, filament, tray)
        log.info("%s: resuming job %s (%s) from its checkpoint", self.printer, record.id, self.job.key.name)

    def _job_dir(self, job_id: int) -> Path:
        return self.jobs_dir / str(job_id)

    def _load_analysis(self, job_id: int) -> PrintAnalysis | None:
        path = self._job_dir(job_id) / ANALYSIS_FILE
        try:
            return PrintAnalysis.from_json(json.loads(path.read_text("utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError) as exc:
            log.warning("%s: stored analysis of job %s is unreadable (%s); analysing again", self.printer, job_id, exc)
            return None

    # ---- reports ----------------------------------------------------------------------------------------

    async def on_update(self, previous: Mapping[str, Any], current: Mapping[str, Any],
                        echo: Mapping[str, Any] | None = None, *, full: bool = False,
                        view: PrinterView | None = None, report: Mapping[str, Any] | None = None) -> None:
        """A new merged state (and the ``project_file`` echo when this update is one); ``full`` when
        the report carried the printer's whole state (``msg: 0``, e.g. the answer to ``pushall``);
        ``report`` is the (cleaned) report's own fields."""
        async with self._lock:
            if self._implied:
                # Resumed from deltas: the merged state's gcode_state is still the snapshot's from before
                # the restart (missing, or an older print's), but the decision said what it is, until the
                # printer reports its own.
                previous = {**previous, **self._implied}
                if report is not None and "gcode_state" in report:
                    self._implied = {}
                else:
                    current = {**current, **self._implied}
            self._last_state = current
            current_is_news = False
            if not self._resumed:
                if report is not None:
                    self._reported.update({k: report[k] for k in RESUME_FIELDS if k in report})
                if full:
                    await self._resume(current)
                elif (self.job is None or not self.job.open) and (
                        echo is not None or (report is not None and "gcode_state" in report)):
                    # No job to resume, and the printer announces a print or reports a change of
                    # state now (a print starting, say): followed from here, against the state before.
                    self._resumed = True
                    current_is_news = True
                elif not self._no_full_state or not await self._resume_from_reports(current):
                    # The merged state still holds the snapshot from before the restart: only the
                    # printer's own reports (a full one, or, from a printer that gives none, its
                    # deltas) say what it is doing now.
                    return
                if not current_is_news:
                    previous = current  # the resume decision consumed this state
            for event in lifecycle.derive_events(self.job, previous, current, echo):
                await self._apply(event, current)
            view = view or printer_view(current)  # one tray view per report, shared by the checks below
            await self._observe_trays(current, view)
            await self._watch_tray_switches(current, view)
            await self._estimate_from_remain(view)
            if self._needs_file():
                self._start_fetch(current)  # e.g. the fetch was cut short by a reconnect

    def _needs_file(self) -> bool:
        """The job's file is still to be read: while it prints, and also when it ended before its
        file was read (Layerwise was down), since billing it needs the analysis."""
        job = self.job
        if job is None or self.analysis is not None or job.untracked_reason is not None:
            return False
        if self.job_id in self._given_up:
            return False  # reading its file failed for good (even if marking it untracked did not stick)
        if self._fetch is not None and not self._fetch.done():
            return False
        if job.open:
            return job.lifecycle in ("downloading", "parsing")
        return not job.billing.settled

    async def no_full_state(self) -> None:
        """The printer gives no full state on this connection (it refuses or ignores ``pushall``): an open
        job is resumed from the printer's deltas (see ``jobs.decide_resume_from_reports``). Called once per
        connection: after a reconnect too, the changes made while the link was down (a state change, the
        start of RUNNING) were reported to no one, so the merged state may be stale just as after a
        restart."""
        async with self._lock:
            if self._resumed and (self.job is None or not self.job.open):
                return  # nothing to resume; new prints are followed from the reports
            if self._resumed:
                self._resumed, self._reported = False, {}
            self._no_full_state = True
            log.info("%s: no full state from the printer; resuming from its reports", self.printer)
            await self._resume_from_reports(self._last_state)

    async def _resume_from_reports(self, current: Mapping[str, Any]) -> bool:
        """Resume from the fields reported since the start; False while they say nothing yet."""
        if self.job is None or not self.job.open:
            # Nothing to resume. The merged state before this point is a snapshot from before the
            # start; from here on, changes the printer reports start and follow jobs as usual.
            self._resumed = True
            return True
        decision = decide_resume_from_reports(self.job, self._reported)
        if decision is None:
            return False
        if isinstance(decision, ContinueSameJob):
            self._implied = {"gcode_state": "PAUSE" if decision.paused else "RUNNING"}
        elif isinstance(decision, CloseAndStartNew) and decision.start_new:
            self._implied = {"gcode_state": text(self._reported.get("gcode_state")) or "RUNNING"}
        if self._implied and "gcode_state" not in self._reported:
            current = {**current, **self._implied}
        await self._resume_with(decision, current)
        return True

    async def _resume(self, current: Mapping[str, Any]) -> None:
        if self.job is None or not self.job.open:
            self._resumed = True
            return
        await self._resume_with(decide_resume(self.job, current), current)

    async def _resume_with(self, decision: ResumeDecision, current: Mapping[str, Any]) -> None:
        self._resumed = True
        assert self.job is not None
        log.info("%s: after restart: %s", self.printer, decision)
        await self.machine.restart_with(decision, current=current, at=_now())
        if isinstance(decision, CloseAndStartNew) and decision.start_new:
            for event in lifecycle.derive_events(self.job, {}, current):
                await self._apply(event, current)

    async def _apply(self, event: lifecycle.LifecycleEvent, current: Mapping[str, Any]) -> None:
        await self.machine.apply(event, current=current, at=_now())

    # ---- the machine's effects (JobEffects) ---------------------------------------------------------------

    async def leave_job(self, current: Mapping[str, Any]) -> None:
        """A new print starts: the last job's file is still read on the side if its bills need it."""
        if self._needs_file() or (self._fetch is not None and not self._fetch.done() and self.job is not None
                                  and not self.job.open):
            self._detach_last_job()
        else:
            self._cancel_fetch()
        self.analysis = None
        self._remain = None
        self._switches = TraySwitchTracker.for_job()
        self._feeding = None
        self._start_view = printer_view(current)

    async def record_job(self, job: JobCheckpoint, started: lifecycle.JobStarted) -> None:
        record = await asyncio.to_thread(
            job_store.create_job, self.db, self.printer, _key_text(job), state=job.lifecycle,
            file_name=started.subtask_name or started.file, plate=started.plate, checkpoint=job.to_dict(),
            started_at=job.started_at,
        )
        self.job_id, self.job = record.id, job
        log.info("%s: job %s started: %s (plate %s)", self.printer, record.id, job.key.name, started.plate)
        self._announce()

    def want_file(self, current: Mapping[str, Any]) -> None:
        if self._needs_file():
            self._start_fetch(current)

    async def commit(self, step: lifecycle.Step) -> None:
        await self._commit(step)  # while the event is pending, self.job is the checkpoint as saved

    async def _observe_trays(self, current: Mapping[str, Any], view: PrinterView) -> None:
        if self.job is None or not self.job.open or self.job_id is None:
            return
        before = self.job.learned
        job = lifecycle.observe_trays(self.job, current, view)
        if job == self.job:
            return
        self.job = job
        new = {f: t for f, t in job.learned.items()
               if before.get(f) != t and f not in job.mapping and f not in job.manual}
        if not new:
            return  # only the learner's view of the trays moved: saved with the next checkpoint
        await asyncio.to_thread(job_store.save_checkpoint, self.db, self.job_id, job.to_dict())
        released = 0
        for filament, tray in new.items():
            log.info("%s: learned filament %s is in tray %s", self.printer, filament, tray)
            released += await asyncio.to_thread(ledger.on_mapping_learned, self.db, self.job_id, filament, tray)
        if released:
            self._wake_outbox()
        if new:
            self._announce()

    async def _watch_tray_switches(self, current: Mapping[str, Any], view: PrinterView) -> None:
        """A filament continuing from another tray (runout with a backup spool, a swap): its later
        layers go to the new tray's spool. The switch is saved before any layer is billed with it."""
        job = self.job
        if job is None or not job.open or self.analysis is None or job.last_layer is None or self.job_id is None:
            return
        if self._switches.filaments is None:
            self._switches = replace(self._switches, filaments=frozenset(self.analysis.filaments))
        tray_now, _ = active_trays(current, view)
        mapping = self._mapping(job)
        # Which filament is feeding: the one mapped to the loaded tray. A tray no filament maps to is
        # a backup spool, and the AMS only continues from one holding the same material and colour,
        # so that is the filament it stands in for (the gcode shows no change: the firmware did it).
        by_tray = {tray: filament for filament, tray in self._switches.current(mapping).items()}
        if tray_now in by_tray:
            self._feeding = by_tray[tray_now]
        elif tray_now is not None and _printing_unknown_tray(self.analysis, job.last_layer, mapping):
            # Never guess: a tray no filament maps to, while the file prints a filament whose tray is
            # not known, may well be that filament's. Nothing is inferred; the learner (or a person) says.
            self._feeding = None
        elif tray_now is not None:
            stand_in = _stands_in_for(view, tray_now, by_tray)
            self._feeding = self._feeding if stand_in is None else stand_in
        switches, switch = self._switches.feed(job.last_layer, tray_now, mapping, self._feeding)
        self._switches = switches
        if switch is not None:
            log.info("%s: filament %s switched from tray %s to tray %s at layer %s", self.printer,
                     switch.filament, switch.old_tray, switch.new_tray, switch.from_layer)
            await asyncio.to_thread(_save_switches, self._job_dir(self.job_id), switches)
            self._announce()

    def _load_switches(self, job_id: int) -> TraySwitchTracker:
        try:
            data = json.loads((self._job_dir(job_id) / SWITCHES_FILE).read_text("utf-8"))
        except FileNotFoundError:
            return TraySwitchTracker.for_job()
        return TraySwitchTracker.for_job().with_switches(TraySwitch(**item) for item in data)

    async def _estimate_from_remain(self, view: PrinterView) -> None:
        """No sliced file: bill what the AMS's remaining-percent of RFID spools says went, as estimates."""
        job = self.job
        if job is None or not job.open or job.lifecycle != "untracked" or self.job_id is None:
            self._remain = None
            return
        if self.spools is None:
            return
        if self._remain is None:
            self._remain = await RemainEstimator.for_trays(self.db, self.spools, self.printer, view)
            if self._start_view is not None:
                self._remain.tracker.feed(self._start_view)  # the baseline is what the trays held at the start
        lines, mapping = self._remain.bills(view, job, job.last_layer or 0)
        if lines:
            await asyncio.to_thread(billed.record_bills, self.db, self.job_id, lines, mapping,
                                    checkpoint=job.to_dict())
            self._wake_outbox()
            self._announce()

    # ---- persistence ------------------------------------------------------------------------------------

    async def _commit(self, step: lifecycle.Step) -> None:
        job = step.job
        if job is None or self.job_id is None:
            return
        columns = self._columns(job)
        before = self.job
        if step.bills:
            base = self._mapping(job)
            trays = [resolve_tray(self._switches.mapping_at(line.layer, base), line.filament_index)
                     for line in step.bills]
            await asyncio.to_thread(billed.record_bills, self.db, self.job_id, list(step.bills), trays,
                                    checkpoint=job.to_dict(), **columns)
            self._wake_outbox()
        elif job != self.job:
            await asyncio.to_thread(job_store.save_checkpoint, self.db, self.job_id, job.to_dict(), **columns)
        changed = job != self.job
        self.job = job
        # A mapping stated (or taken from the printer's report) after bills were written with no tray
        # known: they wait for it. Saved in the checkpoint first, so a crash here is redone by restore().
        stated = newly_known(before, job)
        released = 0
        for filament, tray in stated.items():
            released += await asyncio.to_thread(ledger.on_mapping_learned, self.db, self.job_id, filament, tray)
        if released:
            log.info("%s: job %s: %d waiting bill(s) released by the stated mapping", self.printer, self.job_id,
                     released)
            self._wake_outbox()
        if changed:
            self._announce()

    def _columns(self, job: JobCheckpoint) -> dict[str, Any]:
        columns: dict[str, Any] = {"state": job.lifecycle}
        if job.final_state is not None:
            columns.update(final=True, ended_at=job.ended_at or _now(), reason=job.end_reason or job.untracked_reason)
        elif job.untracked_reason:
            columns["reason"] = job.untracked_reason
        return columns

    def _mapping(self, job: JobCheckpoint) -> dict[int, int]:
        """Slicer filament -> tray as known now: a person's word, then the printer's, then the learner's."""
        return job.known

    # ---- a person states a tray ("never guess") ---------------------------------------------------------

    async def state_tray(self, job_id: int, filament_index: int, tray: int) -> int:
        """A person says which tray printed a slicer filament of a job (the dashboard asks when the tray
        is not known: Layerwise never bills a guessed spool). It is recorded in the job's checkpoint
        (``manual``), like a stated mapping, so bills written from then on use it (a job whose file is
        still being read included); the filament's bills waiting for a tray go to that tray's spool.
        Returns how many bills were released. Raises ValueError for a number that is no tray."""
        if isinstance(tray, bool) or resolve_tray({filament_index: tray}, filament_index) is None \
                or locate(tray) is None:
            raise ValueError(f"{tray!r} is not a tray")
        async with self._lock:
            if job_id == self.job_id and self.job is not None:
                self.job = replace(self.job, manual={**self.job.manual, filament_index: tray})
                await asyncio.to_thread(job_store.save_checkpoint, self.db, job_id, self.job.to_dict())
            else:
                await asyncio.to_thread(_record_manual_tray, self.db, self.printer, job_id, filament_index, tray)
            log.info("%s: job %s: filament %s is in tray %s (stated by a person)", self.printer, job_id,
                     filament_index, tray)
            released = await asyncio.to_thread(ledger.on_mapping_learned, self.db, job_id, filament_index, tray)
        if released:
            self._wake_outbox()
        self._announce()
        return released

    def _wake_outbox(self) -> None:
        if self.outbox is not None:
            self.outbox.wake()

    def _announce(self) -> None:
        job = self.job
        self.bus.publish(Event("job", self.printer, {
            "job_id": self.job_id,
            "state": job.lifecycle if job else None,
            "billed_through": job.billing.billed_through if job else None,
        }))

    # ---- the job's file ---------------------------------------------------------------------------------

    def _detach_last_job(self) -> None:
        """The last job ended before its file was read, and a new print starts: its file is still
        fetched and read on the side, and the ended job billed from its own checkpoint."""
        assert self.job_id is not None and self.job is not None
        task = self._fetch if self._fetch is not None and not self._fetch.done() else asyncio.create_task(
            self._fetch_and_analyse(self.job_id, self.job, {}), name=f"{self.printer}:job-file-{self.job_id}")
        if task is not self._fetch:
            task.add_done_callback(self._fetch_done)
        self._fetch = None
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        log.info("%s: job %s ended before its file was read; reading it beside the next job", self.printer,
                 self.job_id)

    async def _settle_detached(self, job_id: int, analysis: PrintAnalysis | None, reason: str | None) -> None:
        """Bill (or mark untracked) an ended job that is no longer the current one."""
        record = await asyncio.to_thread(job_store.get_job, self.db, job_id)
        if record is None or not record.checkpoint:
            return
        job = JobCheckpoint.from_dict(record.checkpoint)
        if analysis is None:
            step = lifecycle.Step(replace(job, untracked_reason=reason))
        else:
            step = lifecycle.with_analysis(job, analysis)  # ended: its state stays
        assert step.job is not None
        columns = self._columns(step.job)
        if step.bills:
            await asyncio.to_thread(billed.record_bills, self.db, job_id, list(step.bills), self._mapping(step.job),
                                    checkpoint=step.job.to_dict(), **columns)
            self._wake_outbox()
        else:
            await asyncio.to_thread(job_store.save_checkpoint, self.db, job_id, step.job.to_dict(), **columns)
        log.info("%s: ended job %s settled from its file: %d bill line(s)", self.printer, job_id, len(step.bills))

    def _cancel_fetch(self) -> None:
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()
        self._fetch = None

    def _start_fetch(self, current: Mapping[str, Any]) -> None:
        if self.job_id is None or self.job is None:
            return
        self._cancel_fetch()
        self._fetch = asyncio.create_task(
            self._fetch_and_analyse(self.job_id, self.job, dict(current)), name=f"{self.printer}:job-file"
        )
        self._fetch.add_done_callback(self._fetch_done)

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        """A failure after the file was read (writing its bills, say) is logged here, once: the job
        carries on from its checkpoint with the next report."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: reading the job's file ended in an error: %s", self.printer, _reason(exc),
                      exc_info=exc)

    async def _fetch_and_analyse(self, job_id: int, job: JobCheckpoint, current: dict[str, Any]) -> None:
        folder = self._job_dir(job_id)
        try:
            local = await self._fetch_with_retries(job, current, folder)
            async with self._lock:
                if self.job_id == job_id:
                    await self.machine.fire("file_fetched", file_path=str(local))
            analysis = await asyncio.to_thread(analyze_file, local, job.plate)
            thumbnail = await asyncio.to_thread(_save_analysis, folder, analysis, local, job.plate)
            if thumbnail:
                await asyncio.to_thread(job_store.save_checkpoint, self.db, job_id, thumbnail=THUMBNAIL_FILE)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Anything at all: the job is shown untracked with the reason, and never fetched again on
            # every report. A surprise gets its traceback once (not a recursion's thousand lines).
            reason = _reason(exc)
            surprise = not isinstance(exc, PrinterError | AnalysisError | OSError | RecursionError)
            log.warning("%s: job %s is untracked: %s", self.printer, job_id, reason, exc_info=surprise)
            self._given_up.add(job_id)
            async with self._lock:
                if self.job_id == job_id and self.job is not None:
                    await self.machine.fire("file_unavailable", reason=reason)
                else:
                    await self._settle_detached(job_id, None, reason)
            return
        async with self._lock:
            if self.job_id != job_id or self.job is None:
                await self._settle_detached(job_id, analysis, None)
                return
            await self.machine.fire("file_analysed", analysis=analysis)
            log.info("%s: job %s analysed: %d layers, %d filament(s)", self.printer, job_id,
                     analysis.layer_count, len(analysis.filaments))

    async def _fetch_with_retries(self, job: JobCheckpoint, current: Mapping[str, Any], folder: Path) -> Path:
        """A dropped connection or a printer busy rebooting is retried for about two minutes; a file
        that is not there, a refused access code or a broken file is final at once."""
        for delay in (*FETCH_RETRY_DELAYS, None):
            try:
                return await self._fetch_file(job, current, folder)
            except (PrinterUnreachable, PrinterTLSError) as exc:
                if delay is None:
                    raise
                log.info("%s: fetching the job's file failed (%s); retrying in %.0f s", self.printer, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _fetch_file(self, job: JobCheckpoint, current: Mapping[str, Any], folder: Path) -> Path:
        if job.file_path and Path(job.file_path).is_file():
            return Path(job.file_path)  # fetched before a restart
        url = job.file_url
        subtask = text(current.get("subtask_name")) or job.key.name
        gcode_file = text(current.get("gcode_file"))
        folder.mkdir(parents=True, exist_ok=True)
        if is_http_url(url):
            assert url is not None
            try:
                return await ftps.download_url(url, folder / "job.gcode.3mf")
            except (JobFileNotFound, PrinterUnreachable) as exc:
                # A cloud print's signed URL expires (and needs the internet); the printer keeps its own
                # copy of the file it prints, so look there before giving up.
                log.info("%s: the print's URL gave no file (%s); looking on the printer", self.printer, exc)
                # By the job's own name only: the echo that carried the URL came before the printer's
                # reports named the print, so the state may still name the previous one's file.
                url, subtask, gcode_file = None, job.key.name or subtask, None
        remote = await ftps.find_job_file(self.config, url=url, subtask_name=subtask, gcode_file=gcode_file,
                                          pins=self.pins)
        if remote is None:
            raise JobFileNotFound(
                f"the printer has no file for {subtask or url or 'this print'} (looked for {url or subtask})"
            )
        return await ftps.download(self.config, remote, folder / _safe_name(remote), pins=self.pins)

    async def close(self) -> None:
        tasks = [t for t in (self._fetch, *self._detached) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task  # its own failure was logged where it happened
        self._fetch = None


def _record_manual_tray(db: Database, printer: str, job_id: int, filament_index: int, tray: int) -> None:
    """A person's tray for a job that is not the tracker's current one (an ended job, perhaps still to
    be billed from its file): kept in its checkpoint all the same."""
    record = job_store.get_job(db, job_id)
    if record is None or record.printer != printer:
        raise LookupError(f"printer {printer} has no job {job_id}")
    if record.checkpoint:
        job = JobCheckpoint.from_dict(record.checkpoint)
        job = replace(job, manual={**job.manual, filament_index: tray})
        job_store.save_checkpoint(db, job_id, job.to_dict())


def _reason(exc: BaseException) -> str:
    """Why a job's file could not be had, for the job page: short, whatever the exception says."""
    text_ = str(exc) if isinstance(exc, PrinterError | AnalysisError | OSError) else f"{type(exc).__name__}: {exc}"
    text_ = " ".join(text_.split()) or type(exc).__name__
    return text_ if len(text_) <= REASON_LIMIT else text_[: REASON_LIMIT - 1] + "…"


def _key_text(job: JobCheckpoint) -> str:
    key = job.key
    return "|".join(str(part) for part in (key.name, key.plate, key.task_id, key.subtask_id) if part not in (None, ""))


def _printing_unknown_tray(analysis: PrintAnalysis, layer: int, mapping: Mapping[int, int]) -> bool:
    """The file prints, around ``layer``, a filament whose tray is not known (the slicer's layer and the
    printer's may differ by one at a change)."""
    near: set[int] = set()
    for change in analysis.tool_changes:
        if change.layer < layer - LAYER_SLACK:
            near = {change.filament}  # the filament loaded last before the window
        elif change.layer <= layer + LAYER_SLACK:
            near.add(change.filament)
        else:
            break
    return any(filament not in mapping for filament in near)


def _stands_in_for(view: PrinterView, backup: int, by_tray: Mapping[int, int]) -> int | None:
    """The filament whose tray holds the same material and colour as ``backup``, if exactly one does."""
    spare = view.tray(backup)
    if spare is None or not spare.material:
        return None
    same = [filament for tray, filament in by_tray.items()
            if (t := view.tray(tray)) is not None and (t.material, t.color_hex) == (spare.material, spare.color_hex)]
    return same[0] if len(same) == 1 else None


def _save_switches(folder: Path, switches: TraySwitchTracker) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{SWITCHES_FILE}.part"
    part.write_text(json.dumps([asdict(s) for s in switches.switches]), "utf-8")
    part.replace(folder / SWITCHES_FILE)  # atomic: a crash leaves the old list or the new one


def _save_analysis(folder: Path, analysis: PrintAnalysis, local: Path, plate: int | None) -> bool:
    """Store the analysis (a restart resumes without re-reading the file) and the plate thumbnail."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ANALYSIS_FILE).write_text(json.dumps(analysis.to_json(), separators=(",", ":")), "utf-8")
    try:
        thumbnail = plate_thumbnail(local, plate)
    except (AnalysisError, OSError):
        return False
    if thumbnail:
        (folder / THUMBNAIL_FILE).write_bytes(thumbnail)
    return bool(thumbnail)
