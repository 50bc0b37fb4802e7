"""The print lifecycle's pure decisions: the events printer reports mean, and what each event
does to a job's facts and bills. No I/O, and no lifecycle state: that is the machine's
(`server.jobs.machine.JobMachine`), whose actions call these functions.

`derive_events(job, previous, current, echo)` compares two printer snapshots (and the
`project_file` echo, when one arrived) and says what happened: a job started,
a layer was reached, a pause, a resume, the end. `apply_event` / `apply_resume` give the
job's facts after one (progress, the end, its reason) and the bills now due.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from server.billing.rules import AnalysisLike, BillLine, bill_finish, bill_progress, bill_stop
from server.jobs.checkpoint import (
    ENDED_OFFLINE,
    ContinueSameJob,
    FinalState,
    JobCheckpoint,
    JobKey,
    ResumeDecision,
    SettleEndedJob,
    is_cancel,
    job_name,
)
from server.printer.snapshot import LAYER_STATES, PrinterSnapshot, PrintStatus, ProjectFile

# ---- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStarted:
    key: JobKey
    file: str | None  # the echo's url, else the printer's gcode_file
    subtask_name: str | None
    plate: int | None
    mapping: Mapping[int, int] = field(default_factory=dict)  # stated mapping, {} when to be learned
    announced: bool = False  # True when a `project_file` echo started it
    # A job picked up mid-print: the printer's `mapping` report, taken once the file agrees with it.
    reported: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerReached:
    layer: int
    mc_percent: int | None


@dataclass(frozen=True)
class Paused:
    print_error: int | None


@dataclass(frozen=True)
class Resumed:
    pass


@dataclass(frozen=True)
class Finished:
    pass


@dataclass(frozen=True)
class Failed:
    cancelled: bool
    at_layer: int | None
    mc_percent: int | None
    print_error: int | None = None
    reason: str | None = None  # "ended while offline" when the printer forgot the job


@dataclass(frozen=True)
class JobChanged:
    """The printer runs another print than the open job's: the open job is closed
    (as failed, "ended while offline") before the new one's JobStarted."""

    previous: JobKey


@dataclass(frozen=True)
class MappingStated:
    """The printer reported the job's mapping (`mapping`, `ams_mapping2`) after the start."""

    mapping: Mapping[int, int]


@dataclass(frozen=True)
class CancelConfirmed:
    """The cancel code arrived only after FAILED: the job just failed was cancelled.
    Both bill the same; only the job's final state changes."""

    print_error: int


LifecycleEvent = (
    JobStarted | LayerReached | Paused | Resumed | Finished | Failed | CancelConfirmed | JobChanged | MappingStated
)


def _started(status: PrintStatus, echo: ProjectFile | None, *, reported: Mapping[int, int] | None = None,
             picked_up: bool = False) -> JobStarted:
    if echo is not None:
        key = JobKey.from_echo(echo)
        return JobStarted(key=key, file=echo.file, subtask_name=echo.subtask_name, plate=key.plate,
                          mapping=dict(echo.mapping), announced=True)
    key = JobKey.of(status)
    # No stated mapping from the state here: for a job seen starting, its `mapping` report may
    # still be the last print's (one that changes while the job runs comes as MappingStated).
    # A print Layerwise joins while it runs has no such history: the report is this print's,
    # kept as `reported` and taken once the file's own filament list agrees with it.
    running = status.gcode_state in LAYER_STATES
    return JobStarted(key=key, file=status.gcode_file, subtask_name=status.subtask_name, plate=key.plate,
                      announced=False, reported=dict(reported or {}) if picked_up and running else {})


def reported_mapping(shot: PrinterSnapshot) -> dict[int, int]:
    """The printer's own `mapping` report as slicer filament -> tray (the trays it names)."""
    return {index: tray for index, tray in enumerate(shot.reported_mapping) if tray is not None}


def _file_changed(before: PrintStatus, now: PrintStatus) -> bool:
    """The printer's file changed to another one (A1/P1 name it; X1/H2 only name the plate)."""
    return bool(before.gcode_file and now.gcode_file and job_name(before.gcode_file) != job_name(now.gcode_file))


def _another_print(job: JobCheckpoint, old: PrintStatus, new: PrintStatus, before: JobKey, now: JobKey) -> bool:
    """The printer's own job fields say another print runs than the open job.

    Task ids, the plate and the file identify a print; a `subtask_name` that alone changed is
    cosmetic (a rename), unless the progress started over (the end of the job and the start of
    the next were not seen: an X1 names only the plate, so the name is all that differs)."""
    if now == before or job.key.same_print(now):
        return False
    if job.key.subtask_id and now.subtask_id:
        return True  # same_print compared them: they differ
    if job.key.task_id and now.task_id:
        return job.key.task_id != now.task_id  # the same cloud task, renamed, is the same print
    if job.key.plate is not None and now.plate is not None and job.key.plate != now.plate:
        return True
    if _file_changed(old, new):
        return True
    layer_back = new.layer is not None and job.last_layer is not None and new.layer < job.last_layer
    percent_back = new.percent is not None and job.last_percent is not None and new.percent < job.last_percent
    restarted = new.gcode_state in ("PREPARE", "SLICING") and bool(job.last_layer)
    return layer_back or percent_back or restarted


def _stop_point(old: PrintStatus, new: PrintStatus, job: JobCheckpoint | None) -> tuple[int | None, int | None]:
    """Where a stopped print got to. The merged state's `layer_num` is trusted when this
    report changed it or the job saw it; otherwise it may be the previous print's (and
    some firmware resets it as it stops), so what the job saw last stands."""
    seen = job.last_layer if job is not None else None
    fresh = new.layer if new.layer is not None and (new.layer != old.layer or new.layer == seen) else None
    if fresh is not None and (seen is None or fresh >= seen):
        return fresh, new.percent
    return seen, job.last_percent if job is not None else None


def _ended(old: PrintStatus, new: PrintStatus, job: JobCheckpoint | None) -> list[LifecycleEvent]:
    if new.gcode_state == "FINISH":
        return [Finished()]
    if new.gcode_state == "FAILED":
        # The cancel code comes with FAILED (and is cleared to 0 seconds later).
        error = new.print_error if is_cancel(new.print_error) or not is_cancel(old.print_error) else old.print_error
        layer, percent = _stop_point(old, new, job)
        return [Failed(is_cancel(error), layer, percent, error)]
    # IDLE (a reboot clears the job) while a job was open: it ended unseen.
    return _ended_offline(job) if job is not None else [Failed(False, None, None, None, ENDED_OFFLINE)]


def event_inputs(job: JobCheckpoint | None, previous: PrinterSnapshot, current: PrinterSnapshot) -> tuple[object, ...]:
    """All that ``derive_events`` reads without an echo: the job, and of each snapshot its status and its
    `mapping` report. The very same objects (all frozen) again give the same events, so a caller may keep
    these from a report that gave none and skip the next one that brings the same again."""
    return job, previous.status, previous.reported_mapping, current.status, current.reported_mapping


def derive_events(
    job: JobCheckpoint | None,
    previous: PrinterSnapshot,
    current: PrinterSnapshot,
    echo: ProjectFile | None = None,
) -> list[LifecycleEvent]:
    """The lifecycle events between two printer snapshots.

    `job` is the open (or last) job's checkpoint with the events derived before already
    applied; `echo` is the `project_file` message when this update is one. Rules:

    - the echo, or `gcode_state` entering PREPARE/RUNNING/PAUSE from anything else,
      starts a job (LAN prints announce nothing: the state alone is enough);
    - `layer_num` is only trusted once it changes while printing: right after a start
      it still holds the previous print's last layer;
    - FINISH finishes; FAILED fails, or cancels when `print_error` is a cancel code;
      IDLE with a job open means the printer forgot it (a reboot): failed, ended while offline.
    """
    old, new = previous.status, current.status
    open_job = job if job is not None and job.open else None
    events: list[LifecycleEvent] = []

    if echo is not None:
        started = _started(new, echo)
        if open_job is not None and open_job.key.same_print(started.key):
            # The same echo again, or an echo after the printer's own reports started
            # the job: only its mapping is news.
            fresh = started.mapping and not open_job.mapping
            return [MappingStated(started.mapping)] if fresh else []
        if open_job is not None:
            events += [JobChanged(open_job.key), *_ended_offline(open_job)]
        events.append(started)
        return events

    if open_job is None:
        error = new.print_error
        late = new.gcode_state == old.gcode_state == "FAILED" and error != old.print_error and error is not None
        if late and is_cancel(error) and job is not None and job.final_state == "failed":
            return [CancelConfirmed(error)]
        if new.active and (not old.active or job is None or not job.key.same_print(JobKey.of(new))):
            # Picked up: the printer was printing before Layerwise saw it start (joined mid-print,
            # or no earlier state at all after a restart).
            events.append(_started(new, None, reported=reported_mapping(current),
                                   picked_up=old.active or not old.gcode_state))
            # Picked up while already printing (the previous state was active too), the
            # layer is this print's; entering from idle, only a changed one is.
            trusted = new.layer != old.layer or old.active
            if new.layer is not None and trusted and new.gcode_state in LAYER_STATES:
                events.append(LayerReached(new.layer, new.percent))
        return events

    # A job is open. Another print only counts when the printer's own job fields
    # changed: a merged state keeps the last print's name until a report replaces it.
    if new.active and new.named and _another_print(open_job, old, new, JobKey.of(old), JobKey.of(new)):
        return [JobChanged(open_job.key), *_ended_offline(open_job), _started(new, None)]
    if not new.active:
        # Only a change counts: an announced job waits through the previous print's
        # FINISH that the printer keeps showing until PREPARE (the A1 may pass IDLE).
        # FAILED straight from there is this job failing before it began.
        changed = new.gcode_state != old.gcode_state
        was_printing = old.active or not old.gcode_state
        if changed and (new.gcode_state == "FAILED" or (was_printing and new.gcode_state in ("FINISH", "IDLE"))):
            return _ended(old, new, open_job)
        return events
    if not open_job.mapping:
        stated = reported_mapping(current)
        if stated and stated != reported_mapping(previous):
            events.append(MappingStated(stated))
    # A layer_num of 0 that did not change is no stale danger: it says "prelude", which
    # a job that has seen no layer yet needs for learning its first load.
    first = open_job.last_layer is None and new.layer == 0
    if new.layer is not None and (new.layer != old.layer or first) and new.gcode_state in LAYER_STATES:
        events.append(LayerReached(new.layer, new.percent))
    if new.gcode_state == "PAUSE" and old.gcode_state != "PAUSE":
        events.append(Paused(new.print_error))
    elif new.gcode_state == "RUNNING" and old.gcode_state == "PAUSE":
        events.append(Resumed())
    return events


def _ended_offline(job: JobCheckpoint) -> list[LifecycleEvent]:
    return [Failed(False, job.last_layer, job.last_percent, None, ENDED_OFFLINE)]


# ---- applying events to a job ------------------------------------------------------------------------------

CANCELLED_REASON = "task cancelled"


@dataclass(frozen=True)
class Step:
    """A job after an event, and the bills that became due (to write to the ledger
    together with the checkpoint, in one transaction)."""

    job: JobCheckpoint | None
    bills: tuple[BillLine, ...] = ()


def bills_due(job: JobCheckpoint, analysis: AnalysisLike | None) -> Step:
    """Bill whatever the job's facts make due; nothing while the analysis is unknown.
    Idempotent: the billing checkpoint remembers what was billed."""
    if analysis is None:
        return Step(job)
    if job.final_state == "finished":
        lines, billing = bill_finish(analysis, job.billing)
    elif job.final_state is not None:
        lines, billing = bill_stop(analysis, job.billing, job.last_layer, job.last_percent)
    elif job.last_layer is not None:
        lines, billing = bill_progress(analysis, job.billing, job.last_layer)
    else:
        return Step(job)
    return Step(replace(job, billing=billing), lines)


def reported_agrees(reported: Mapping[int, int], analysis: AnalysisLike) -> bool:
    """The printer's mapping report fits the file: every filament the file uses has a tray in it
    (the last print's report, for other filaments, would leave one out)."""
    used = set(analysis.filaments)
    return bool(used) and used <= {filament for filament, tray in reported.items() if tray is not None}


def with_analysis(job: JobCheckpoint, analysis: AnalysisLike) -> Step:
    """The job once its file is analysed: the learner gets the filament changes (and
    matches what it saw meanwhile), a mapping reported when the job was picked up is taken
    if the file agrees with it, and everything already due is billed."""
    job = replace(job, learner=job.learner.with_changes(analysis.tool_changes))
    if not job.mapping and job.reported and reported_agrees(job.reported, analysis):
        job = replace(job, mapping={f: t for f, t in job.reported.items() if f in analysis.filaments})
    return bills_due(job, analysis)


def trays_seen(shot: PrinterSnapshot) -> tuple[int | None, int | None]:
    """All that ``observe_trays`` reads of a snapshot: the tray loaded and the tray being loaded."""
    return shot.active_tray, shot.loading_tray


def observe_trays(job: JobCheckpoint, shot: PrinterSnapshot) -> JobCheckpoint:
    """Feed the printer's active-tray report (the tray loaded, the tray being loaded) to the job's
    mapping learner."""
    if not job.open:
        return job
    learner = job.learner.observe(job.last_layer, *trays_seen(shot))
    return job if learner == job.learner else replace(job, learner=learner)


def _end(job: JobCheckpoint, final: FinalState, at: datetime, reason: str | None) -> JobCheckpoint:
    """The job closed: its final state, when and why (the lifecycle state is the machine's to move)."""
    return replace(job, final_state=final, ended_at=at, end_reason=reason)


def apply_event(
    job: JobCheckpoint | None,
    event: LifecycleEvent,
    analysis: AnalysisLike | None,
    *,
    printer: str,
    at: datetime,
) -> Step:
    """The job's facts after one event from `derive_events`, and the bills now due (the machine,
    `machine.JobMachine`, moves the lifecycle state and calls this from its actions).

    `JobStarted` returns the new job (the caller has persisted the one it replaces);
    `analysis` is None until the job's file is analysed, and billing catches up then
    (`with_analysis`)."""
    if isinstance(event, JobStarted):
        started = JobCheckpoint(
            printer=printer,
            key=event.key,
            file_url=event.file,
            mapping=dict(event.mapping),
            reported=dict(event.reported),
            announced=event.announced,
            started_at=at,
        )
        return Step(started) if analysis is None else with_analysis(started, analysis)
    if isinstance(event, CancelConfirmed) and job is not None and job.final_state == "failed":
        return Step(replace(job, final_state="cancelled", end_reason=CANCELLED_REASON))
    if job is None or not job.open:
        return Step(job)
    if isinstance(event, LayerReached):
        job = job.seen(event.layer, event.mc_percent)
    elif isinstance(event, MappingStated):
        job = replace(job, mapping=dict(event.mapping))
    elif isinstance(event, Finished):
        job = _end(job, "finished", at, None)
    elif isinstance(event, Failed):
        job = job.seen(event.at_layer, event.mc_percent)
        reason = event.reason or (CANCELLED_REASON if event.cancelled else None)
        if reason is None and event.print_error:
            reason = f"print_error {event.print_error:#010x}"
        job = _end(job, "cancelled" if event.cancelled else "failed", at, reason)
    return bills_due(job, analysis)  # a pause or resume only bills what is due


def apply_resume(job: JobCheckpoint, decision: ResumeDecision, analysis: AnalysisLike | None, *, at: datetime) -> Step:
    """An open job's facts after the resume decision at startup (`jobs.decide_resume`); the
    machine moves its state (`continue_job`, or the end).

    After `CloseAndStartNew(start_new=True)` the next `derive_events(job, BLANK, snapshot)`
    starts the new print."""
    if isinstance(decision, ContinueSameJob):
        job = job.seen(decision.layer, decision.mc_percent)
    elif isinstance(decision, SettleEndedJob):
        job = _end(job.seen(decision.at_layer, decision.mc_percent), decision.final, at, None)
    else:
        job = _end(job, "failed", at, decision.reason)
    return bills_due(job, analysis)
