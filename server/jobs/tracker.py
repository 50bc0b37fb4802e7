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

Each report arrives as the printer's typed snapshot (``server.printer.snapshot``), made
once by the printer task; nothing here reads the printer's raw report. The job's file
is fetched and analysed beside the reports (``files.JobFiles``); what the trays say
about the job is ``trays.TrayWatch``'s.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from server.analysis import PrintAnalysis
from server.billing import ledger
from server.billing.outbox import Outbox
from server.billing.settlement import resolve_tray
from server.config import PrinterConfig
from server.db import Database
from server.events import Event, EventBus
from server.jobs import billed, lifecycle
from server.jobs import store as job_store
from server.jobs.checkpoint import CloseAndStartNew, JobCheckpoint, ResumeDecision, decide_resume, newly_known
from server.jobs.facts import Catchup
from server.jobs.files import JobFiles
from server.jobs.machine import JobMachine
from server.jobs.trays import TrayWatch, load_switches
from server.printer.snapshot import BLANK, PrinterSnapshot, ProjectFile
from server.printer.tls import PinStore
from server.printer.trays import locate
from server.spoolman.directory import SpoolDirectory

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _same(inputs: tuple[object, ...], kept: tuple[object, ...] | None) -> bool:
    """The very same objects (never just equal ones: identity is what proves nothing moved)."""
    return kept is not None and all(a is b for a, b in zip(inputs, kept, strict=True))


class JobTracker:
    def __init__(self, config: PrinterConfig, *, db: Database, bus: EventBus, outbox: Outbox | None,
                 data_dir: Path, pins: PinStore, spools: SpoolDirectory | None = None) -> None:
        self.config = config
        self.printer = config.name
        self.db = db
        self.bus = bus
        self.outbox = outbox
        self.files = JobFiles(config, db=db, data_dir=data_dir, pins=pins)
        self.machine = JobMachine(self)  # in charge of the job's lifecycle; its model is the job checkpoint
        self.job_id: int | None = None
        self.analysis: PrintAnalysis | None = None
        self.catchup = Catchup()  # until the printer's reports say where it stands after a (re)start
        self._lock = asyncio.Lock()
        self.spools = spools
        self.trays = TrayWatch(self.printer, db=db, spools=spools)  # the current job's tray facts
        # Most reports change nothing tracking reads (a farm's temperatures): the inputs of the last
        # report that gave no lifecycle event, and of the last tray look that taught the learner
        # nothing. The same again gives the same nothing (both steps are pure), so it is skipped.
        self._no_events: tuple[object, ...] | None = None
        self._trays_taught_nothing: tuple[JobCheckpoint, tuple[int | None, int | None]] | None = None

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
        self.analysis = self.files.load_analysis(record.id)
        self.trays = TrayWatch(self.printer, db=self.db, spools=self.spools,
                               switches=load_switches(self.files.job_dir(record.id)))
        # A crash between saving a known tray (stated, learned or given by a person) and releasing
        # its waiting bills: release them now.
        for filament, tray in self.job.known.items():
            ledger.on_mapping_learned(self.db, record.id, filament, tray)
        log.info("%s: resuming job %s (%s) from its checkpoint", self.printer, record.id, self.job.key.name)

    # ---- reports ----------------------------------------------------------------------------------------

    async def on_update(self, previous: PrinterSnapshot, current: PrinterSnapshot, echo: ProjectFile | None = None,
                        *, full: bool = False) -> None:
        """The printer's snapshot after a report, and the one before it (and the ``project_file`` echo
        when this update is one); ``full`` when the report carried the printer's whole state
        (``msg: 0``, e.g. the answer to ``pushall``)."""
        async with self._lock:
            previous, current = self.catchup.seen(previous, current)
            current_is_news = False
            if not self.catchup.resumed:
                if full:
                    await self._resume(current)
                elif (self.job is None or not self.job.open) and (
                        echo is not None or "gcode_state" in current.reported):
                    # No job to resume, and the printer announces a print or reports a change of
                    # state now (a print starting, say): followed from here, against the state before.
                    self.catchup.resumed = True
                    current_is_news = True
                elif not self.catchup.no_full_state or not await self._resume_from_reports():
                    # The merged state still holds the snapshot from before the restart: only the
                    # printer's own reports (a full one, or, from a printer that gives none, its
                    # deltas) say what it is doing now.
                    return
                if not current_is_news:
                    previous = current  # the resume decision consumed this state
            await self._derive_and_apply(previous, current, echo)
            await self._observe_trays(current)
            await self._watch_tray_switches(current)
            await self._estimate_from_remain(current)
            if self._needs_file():
                self._start_fetch(current)  # e.g. the fetch was cut short by a reconnect

    async def _derive_and_apply(self, previous: PrinterSnapshot, current: PrinterSnapshot,
                                echo: ProjectFile | None) -> None:
        inputs = lifecycle.event_inputs(self.job, previous, current)
        if echo is None and _same(inputs, self._no_events):
            return
        events = lifecycle.derive_events(self.job, previous, current, echo)
        self._no_events = inputs if echo is None and not events else None
        for event in events:
            await self._apply(event, current)

    def _needs_file(self) -> bool:
        """The job's file is still to be read: while it prints, and also when it ended before its
        file was read (Layerwise was down), since billing it needs the analysis."""
        job = self.job
        if job is None or self.analysis is not None or job.untracked_reason is not None:
            return False
        if self.files.given_up(self.job_id) or self.files.running:
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
            if self.catchup.resumed and (self.job is None or not self.job.open):
                return  # nothing to resume; new prints are followed from the reports
            self.catchup.reconnected()
            log.info("%s: no full state from the printer; resuming from its reports", self.printer)
            await self._resume_from_reports()

    async def _resume_from_reports(self) -> bool:
        """Resume from the fields reported since the start; False while they say nothing yet."""
        if self.job is None or not self.job.open:
            # Nothing to resume. The merged state before this point is a snapshot from before the
            # start; from here on, changes the printer reports start and follow jobs as usual.
            self.catchup.resumed = True
            return True
        decided = self.catchup.decide(self.job)
        if decided is None:
            return False
        await self._resume_with(*decided)
        return True

    async def _resume(self, current: PrinterSnapshot) -> None:
        if self.job is None or not self.job.open:
            self.catchup.resumed = True
            return
        await self._resume_with(decide_resume(self.job, current.status), current)

    async def _resume_with(self, decision: ResumeDecision, current: PrinterSnapshot) -> None:
        self.catchup.resumed = True
        assert self.job is not None
        log.info("%s: after restart: %s", self.printer, decision)
        await self.machine.restart_with(decision, current=current, at=_now())
        if isinstance(decision, CloseAndStartNew) and decision.start_new:
            for event in lifecycle.derive_events(self.job, BLANK, current):
                await self._apply(event, current)

    async def _apply(self, event: lifecycle.LifecycleEvent, current: PrinterSnapshot) -> None:
        await self.machine.apply(event, current=current, at=_now())

    # ---- the machine's effects (JobEffects) ---------------------------------------------------------------

    async def leave_job(self, current: PrinterSnapshot) -> None:
        """A new print starts: the last job's file is still read on the side if its bills need it."""
        if self._needs_file() or (self.files.running and self.job is not None and not self.job.open):
            assert self.job_id is not None and self.job is not None
            self.files.detach(self.job_id, self.job, self)
        else:
            self.files.cancel()
        self.analysis = None
        self.trays = TrayWatch(self.printer, db=self.db, spools=self.spools, start=current.view)

    async def record_job(self, job: JobCheckpoint, started: lifecycle.JobStarted) -> None:
        record = await asyncio.to_thread(
            job_store.create_job, self.db, self.printer, job_store.key_text(job), state=job.lifecycle,
            file_name=started.subtask_name or started.file, plate=started.plate, checkpoint=job.to_dict(),
            started_at=job.started_at,
        )
        self.job_id, self.job = record.id, job
        log.info("%s: job %s started: %s (plate %s)", self.printer, record.id, job.key.name, started.plate)
        self._announce()

    def want_file(self, current: PrinterSnapshot) -> None:
        if self._needs_file():
            self._start_fetch(current)

    async def commit(self, step: lifecycle.Step) -> None:
        await self._commit(step)  # while the event is pending, self.job is the checkpoint as saved

    async def _observe_trays(self, current: PrinterSnapshot) -> None:
        if self.job is None or not self.job.open or self.job_id is None:
            return
        seen = lifecycle.trays_seen(current)
        still = self._trays_taught_nothing
        if still is not None and still[0] is self.job and still[1] == seen:
            return
        before = self.job.learned
        job = lifecycle.observe_trays(self.job, current)
        if job == self.job:
            self._trays_taught_nothing = (self.job, seen)
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

    async def _watch_tray_switches(self, current: PrinterSnapshot) -> None:
        if self.job is None or self.job_id is None:
            return
        if await self.trays.watch_switches(self.files.job_dir, self.job_id, self.job, self.analysis, current):
            self._announce()

    async def _estimate_from_remain(self, current: PrinterSnapshot) -> None:
        if self.job is None or self.job_id is None:
            return
        if await self.trays.estimate_from_remain(self.job_id, self.job, current.view):
            self._wake_outbox()
            self._announce()

    # ---- persistence ------------------------------------------------------------------------------------

    async def _commit(self, step: lifecycle.Step) -> None:
        job = step.job
        if job is None or self.job_id is None:
            return
        columns = job_store.columns(job)
        before = self.job
        if step.bills:
            base = job.known
            trays = [resolve_tray(self.trays.mapping_at(line.layer, base), line.filament_index)
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
                await asyncio.to_thread(job_store.record_manual_tray, self.db, self.printer, job_id, filament_index,
                                        tray)
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

    # ---- the job's file (files.JobFiles reports here: FileSink) -------------------------------------------

    def _start_fetch(self, current: PrinterSnapshot) -> None:
        if self.job_id is not None and self.job is not None:
            self.files.start(self.job_id, self.job, current.status, self)

    async def file_fetched(self, job_id: int, path: Path) -> None:
        async with self._lock:
            if self.job_id == job_id:
                await self.machine.fire("file_fetched", file_path=str(path))

    async def file_analysed(self, job_id: int, analysis: PrintAnalysis) -> None:
        async with self._lock:
            if self.job_id != job_id or self.job is None:
                await self._settle_detached(job_id, analysis, None)
                return
            await self.machine.fire("file_analysed", analysis=analysis)
            log.info("%s: job %s analysed: %d layers, %d filament(s)", self.printer, job_id,
                     analysis.layer_count, len(analysis.filaments))

    async def file_unavailable(self, job_id: int, reason: str) -> None:
        async with self._lock:
            if self.job_id == job_id and self.job is not None:
                await self.machine.fire("file_unavailable", reason=reason)
            else:
                await self._settle_detached(job_id, None, reason)

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
        columns = job_store.columns(step.job)
        if step.bills:
            await asyncio.to_thread(billed.record_bills, self.db, job_id, list(step.bills), step.job.known,
                                    checkpoint=step.job.to_dict(), **columns)
            self._wake_outbox()
        else:
            await asyncio.to_thread(job_store.save_checkpoint, self.db, job_id, step.job.to_dict(), **columns)
        log.info("%s: ended job %s settled from its file: %d bill line(s)", self.printer, job_id, len(step.bills))

    async def close(self) -> None:
        await self.files.close()
