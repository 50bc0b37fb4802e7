"""One printer's job lifecycle: the state machine in charge of it.

`JobMachine` (python-statemachine) lives as long as the printer's `JobTracker`. Its model is
the job checkpoint: the checkpoint's `lifecycle` field holds the machine's state, so the
state is saved and restored with the checkpoint. Every change of the lifecycle is an event
on the machine, and the actions hang on its transitions and state entries: reading the class
below tells what happens when. The decisions the actions take are the pure functions of
`lifecycle` (`apply_event`, `apply_resume`, `with_analysis`, `bills_due`); the I/O
(SQLite, the file fetch, the event bus) is the tracker's, behind `JobEffects`.

The callbacks are async and await the tracker's adapters directly, so an event's bills are
written before `fire` returns, in the order the events came (python-statemachine 3 runs a
machine with async callbacks on its async engine). An event that does not apply in the
current state is logged once per job, state and event, and ignored.

Run `python -m server.jobs.machine --diagram` for the Mermaid diagram that
`docs/tracking.md` embeds (a test keeps the two in step).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from statemachine import State, StateChart
from statemachine.contrib.diagram import formatter
from statemachine.exceptions import TransitionNotAllowed
from statemachine.orderedset import OrderedSet

from server.billing.rules import AnalysisLike
from server.jobs.checkpoint import CloseAndStartNew, ContinueSameJob, JobCheckpoint, SettleEndedJob
from server.jobs.lifecycle import (
    CancelConfirmed,
    Failed,
    Finished,
    JobChanged,
    JobStarted,
    LayerReached,
    LifecycleEvent,
    MappingStated,
    Paused,
    Resumed,
    Step,
    apply_event,
    apply_resume,
    with_analysis,
)
from server.printer.snapshot import PrinterSnapshot

log = logging.getLogger(__name__)

ResumeCause = ContinueSameJob | SettleEndedJob | CloseAndStartNew


class JobEffects(Protocol):
    """What the machine's actions need from the printer's tracker: I/O, and nothing to decide."""

    printer: str
    job_id: int | None
    analysis: AnalysisLike | None

    async def leave_job(self, current: PrinterSnapshot) -> None:
        """A new print starts: let the last job's file work go (or finish it on the side)."""

    async def record_job(self, job: JobCheckpoint, started: JobStarted) -> None:
        """The new job gets its row, and is the printer's job from then on (``JobMachine.job = job``)."""

    def want_file(self, current: PrinterSnapshot) -> None:
        """Fetch and analyse the job's file unless that is under way already."""

    async def commit(self, step: Step) -> None:
        """Write the step's bills and checkpoint, then make it the job (``JobMachine.job = step.job``).
        Until then ``JobMachine.job`` is the checkpoint as last saved, to compare the step with."""


# The checkpoint stores the innermost state's id; the machine reads a compound state's
# configuration. One object per id, so the machine's configuration cache holds.
_PRINTING = "printing"
_CONFIGURATIONS: dict[str, Any] = {
    "running": OrderedSet([_PRINTING, "running"]),
    "paused": OrderedSet([_PRINTING, "paused"]),
}


def _leaf(value: Any) -> str:
    values = list(value) if isinstance(value, OrderedSet | set | frozenset) else [value]
    return str(values[-1]) if values else ""  # document order: the innermost state comes last


class JobModel:
    """The machine's model: the printer's current job checkpoint (None before its first job).

    `JobCheckpoint` is immutable and replaced whole by every decision; this small holder is
    what stays, and its `lifecycle` property is the machine's state field, read from and written
    into the checkpoint it carries."""

    def __init__(self, job: JobCheckpoint | None = None) -> None:
        self.job = job

    @property
    def lifecycle(self) -> Any:
        leaf = self.job.lifecycle if self.job is not None else "idle"
        return _CONFIGURATIONS.get(leaf, leaf)

    @lifecycle.setter
    def lifecycle(self, value: Any) -> None:
        if self.job is not None:  # with no job the machine can only be idle
            self.job = replace(self.job, lifecycle=_leaf(value))


class JobMachine(StateChart):
    """One printer's job lifecycle. The machine is reused from job to job, so the end states are
    not final: the next job starts from any of them, and the file of a job that ended before it
    was read is still taken in there (billing its end)."""

    allow_event_without_transition = False  # `fire` logs and ignores what does not apply
    catch_errors_as_events = False  # an adapter's failure (SQLite, say) reaches the caller
    atomic_configuration_update = True  # the checkpoint gets the new state in one write
    enable_self_transition_entries = False

    idle = State("Idle", initial=True)
    resuming = State("Resuming")  # after a restart or a reconnect: until the printer says where it is
    downloading = State("Downloading")
    parsing = State("Parsing")
    untracked = State("Untracked")  # the file could not be obtained or read: shown with its reason

    class printing(State.Compound, name="Printing"):
        running = State("Running", initial=True)
        paused = State("Paused")

        pause = running.to(paused)
        resume = paused.to(running)

    finished = State("Finished")
    failed = State("Failed")
    cancelled = State("Cancelled")

    start_job = (
        idle.to(downloading)
        | finished.to(downloading)
        | failed.to(downloading)
        | cancelled.to(downloading)
        | untracked.to(downloading)
        | resuming.to(downloading)
        | printing.to(downloading)  # a new job without the old one's end seen
    )
    restart = (
        downloading.to(resuming)
        | parsing.to(resuming)
        | untracked.to(resuming)
        | printing.to(resuming)
        | resuming.to.itself(internal=True)
    )
    # The same print still runs: back to where the job's facts say it stands.
    continue_job = (
        resuming.to(untracked, cond="file_unobtainable")
        | resuming.to(downloading, cond="file_not_fetched")
        | resuming.to(parsing, cond="file_not_analysed")
        | resuming.to(printing.paused, cond="printer_paused")
        | resuming.to(printing)
    )
    file_fetched = (
        downloading.to(parsing)
        | finished.to.itself(internal=True)
        | failed.to.itself(internal=True)
        | cancelled.to.itself(internal=True)
    )
    file_analysed = (
        parsing.to(printing)
        | finished.to.itself(internal=True)
        | failed.to.itself(internal=True)
        | cancelled.to.itself(internal=True)
    )
    file_unavailable = (
        downloading.to(untracked)
        | parsing.to(untracked)
        | finished.to.itself(internal=True)
        | failed.to.itself(internal=True)
        | cancelled.to.itself(internal=True)
    )
    finish = (
        printing.to(finished)
        | resuming.to(finished)
        | downloading.to(finished)
        | parsing.to(finished)
        | untracked.to(finished)
    )
    fail = (
        printing.to(failed) | resuming.to(failed) | downloading.to(failed) | parsing.to(failed) | untracked.to(failed)
    )
    cancel = (
        printing.to(cancelled)
        | resuming.to(cancelled)
        | downloading.to(cancelled)
        | parsing.to(cancelled)
        | untracked.to(cancelled)
    )
    confirm_cancel = failed.to(cancelled)  # the cancel code came after FAILED

    def __init__(self, effects: JobEffects, job: JobCheckpoint | None = None) -> None:
        self.effects = effects
        self._before: JobCheckpoint | None = None  # the checkpoint as last saved, when the current event came
        self._saved: JobCheckpoint | None = None  # while resuming: the checkpoint as it was before the restart
        self._pending = False  # an event moved the model's checkpoint and its action has not saved it yet
        self._refused: set[tuple[int | None, str, str]] = set()
        super().__init__(model=JobModel(job), state_field="lifecycle")

    # ---- driving it ---------------------------------------------------------------------------------------

    @property
    def job(self) -> JobCheckpoint | None:
        """The printer's job as saved: while an event's action is still writing it, the checkpoint the
        event found (the new state is not shown before it is stored)."""
        return self._before if self._pending else self.model.job

    @job.setter
    def job(self, job: JobCheckpoint | None) -> None:
        """Take a checkpoint (restored, saved, or with new facts): the machine stands where it says."""
        self.model.job = job
        self._pending = False

    @property
    def state_id(self) -> str:
        """The innermost active state's id: what the checkpoint stores."""
        return _leaf(self.model.lifecycle)

    async def fire(self, event: str, **data: Any) -> bool:
        """Send `event`; False when it does not apply in the current state (logged once, ignored)."""
        self._before, self._pending = self._saved or self.model.job, True
        try:
            await self.send(event, **data)
        except TransitionNotAllowed:
            self._refuse(event)
            return False
        except BaseException:
            if self._pending:
                self.model.job = self._before  # nothing was saved: the job stays as it was
            raise
        finally:
            self._pending = False
        return True

    async def apply(self, event: LifecycleEvent, *, current: PrinterSnapshot, at: datetime) -> None:
        """Drive the machine with an event `lifecycle.derive_events` found in a report."""
        if isinstance(event, JobStarted):
            await self.fire("start_job", started=event, current=current, at=at)
        elif isinstance(event, Paused | Resumed):
            await self.fire("pause" if isinstance(event, Paused) else "resume", cause=event, at=at)
        elif isinstance(event, Finished):
            await self.fire("finish", cause=event, at=at)
        elif isinstance(event, Failed):
            await self.fire("cancel" if event.cancelled else "fail", cause=event, at=at)
        elif isinstance(event, CancelConfirmed):
            await self.fire("confirm_cancel", cause=event, at=at)
        elif isinstance(event, LayerReached | MappingStated):
            self._before = self.model.job
            await self._take(event, at)  # the job's progress, not its lifecycle
        else:
            assert isinstance(event, JobChanged)  # only announces the Failed that follows

    async def restart_with(self, decision: ResumeCause, *, current: PrinterSnapshot, at: datetime) -> None:
        """The printer's state after a restart (or a reconnect that lost reports) decided what
        became of the open job: `restart`, then carry on, settle it, or close it."""
        saved = self.model.job
        await self.fire("restart")
        self._saved = saved  # `resuming` is a passing state: what counts as saved is the checkpoint before it
        try:
            if isinstance(decision, ContinueSameJob):
                await self.fire("continue_job", cause=decision, paused=decision.paused, current=current, at=at)
            elif isinstance(decision, SettleEndedJob):
                event = {"finished": "finish", "failed": "fail", "cancelled": "cancel"}[decision.final]
                await self.fire(event, cause=decision, at=at)
            else:
                await self.fire("fail", cause=decision, at=at)
        finally:
            self._saved = None

    def _refuse(self, event: str) -> None:
        key = (self.effects.job_id, self.state_id, event)
        if key not in self._refused:
            self._refused.add(key)
            job = self.model.job
            log.info("%s: job %s (%s): %r does not apply in state %s; ignored", self.effects.printer,
                     self.effects.job_id, job.key.name if job else "no job", event, self.state_id)

    # ---- guards -------------------------------------------------------------------------------------------

    def file_unobtainable(self) -> bool:
        return self.model.job is not None and self.model.job.untracked_reason is not None

    def file_not_fetched(self) -> bool:
        return self.effects.analysis is None and (self.model.job is None or self.model.job.file_path is None)

    def file_not_analysed(self) -> bool:
        return self.effects.analysis is None

    def printer_paused(self, paused: bool = False) -> bool:
        return paused

    # ---- actions ------------------------------------------------------------------------------------------

    async def on_start_job(self, started: JobStarted, current: PrinterSnapshot, at: datetime) -> None:
        """The last job's file work is let go; the new job's checkpoint becomes the model."""
        await self.effects.leave_job(current)
        self.model.job = apply_event(None, started, None, printer=self.effects.printer, at=at).job

    async def on_enter_downloading(self, current: PrinterSnapshot, started: JobStarted | None = None) -> None:
        if started is not None:
            await self.effects.record_job(self._job(), started)
        self.effects.want_file(current)

    async def after_file_fetched(self, file_path: str) -> None:
        await self._commit(Step(replace(self._job(), file_path=file_path)))

    async def after_file_analysed(self, analysis: AnalysisLike) -> None:
        """The analysis is taken in: the learner gets its filament changes, and everything due is
        billed (an ended job's end included)."""
        self.effects.analysis = analysis
        await self._commit(with_analysis(self._job(), analysis))

    async def after_file_unavailable(self, reason: str) -> None:
        await self._commit(Step(replace(self._job(), untracked_reason=reason)))

    async def after_pause(self, cause: Paused, at: datetime) -> None:
        await self._take(cause, at)

    async def after_resume(self, cause: Resumed, at: datetime) -> None:
        await self._take(cause, at)

    async def after_continue_job(self, cause: ContinueSameJob, at: datetime) -> None:
        """The layers printed while Layerwise was away are billed."""
        await self._take(cause, at)

    async def on_enter_finished(self, cause: Finished | SettleEndedJob, at: datetime) -> None:
        """The job is closed and its end billed (everything left, once the file is known)."""
        await self._take(cause, at)

    async def on_enter_failed(self, cause: Failed | SettleEndedJob | CloseAndStartNew, at: datetime) -> None:
        """The job is closed with its reason; billed through the layer it stopped in, pro rata."""
        await self._take(cause, at)

    async def on_enter_cancelled(self, cause: Failed | SettleEndedJob | CancelConfirmed, at: datetime) -> None:
        """As failed; a cancel confirmed after FAILED only relabels the job (nothing more is due)."""
        await self._take(cause, at)

    # ---- helpers ------------------------------------------------------------------------------------------

    def _job(self) -> JobCheckpoint:
        assert self.model.job is not None
        return self.model.job

    async def _take(self, cause: LifecycleEvent | ResumeCause, at: datetime) -> None:
        """The job's facts after `cause` and the bills now due, written (the pure rules decide)."""
        job = self.model.job
        if isinstance(cause, ContinueSameJob | SettleEndedJob | CloseAndStartNew):
            assert job is not None
            step = apply_resume(job, cause, self.effects.analysis, at=at)
        else:
            step = apply_event(job, cause, self.effects.analysis, printer=self.effects.printer, at=at)
        await self._commit(step)

    async def _commit(self, step: Step) -> None:
        await self.effects.commit(step)


def diagram() -> str:
    """The machine as a Mermaid `stateDiagram-v2`, generated from its definition."""
    return formatter.render(JobMachine, "mermaid").rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.jobs.machine")
    parser.add_argument("--diagram", action="store_true", help="print the job lifecycle as a Mermaid diagram")
    args = parser.parse_args(argv)
    if args.diagram:
        sys.stdout.write(diagram())
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
