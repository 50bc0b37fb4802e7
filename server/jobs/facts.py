"""What the printer's snapshots say about an open job after Layerwise (re)starts or reconnects. Pure.

Until the printer's own reports say where it stands, the merged state is the one saved before the
restart, and it may be stale (an older print's FINISH, say). A full report settles it at once
(``checkpoint.decide_resume``). A printer that gives no full state sends deltas only: ``Catchup``
gathers the print fields they named (``Reported``) until they decide, and then stands in for the
print state that decision implies until the printer reports its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from server.jobs.checkpoint import (
    CloseAndStartNew,
    ContinueSameJob,
    JobCheckpoint,
    ResumeDecision,
    decide_resume_from_reports,
)
from server.printer.snapshot import BLANK, PrinterSnapshot, Reported


def with_state(shot: PrinterSnapshot, gcode_state: str) -> PrinterSnapshot:
    """The snapshot with another print state (the one a decision implies; the merged one is stale)."""
    return replace(shot, status=replace(shot.status, gcode_state=gcode_state))


@dataclass
class Catchup:
    """One printer's way back to a known state after a start or a reconnect."""

    resumed: bool = False  # the printer's state now is known (an open job matched against it)
    no_full_state: bool = False  # the printer gives no full state: resume from its deltas
    reported: Reported = field(default_factory=Reported)  # the print fields reported since the start
    implied: str | None = None  # the gcode_state a resume from deltas implies, until the printer says
    last: PrinterSnapshot = BLANK  # the printer as of the last report

    def seen(self, previous: PrinterSnapshot, current: PrinterSnapshot) -> tuple[PrinterSnapshot, PrinterSnapshot]:
        """Take a report's snapshot (and the one before it); returns both as tracking should read them."""
        if self.implied is not None:
            # Resumed from deltas: the merged state's gcode_state is still the snapshot's from before
            # the restart (missing, or an older print's), but the decision said what it is, until the
            # printer reports its own.
            previous = with_state(previous, self.implied)
            if "gcode_state" in current.reported:
                self.implied = None
            else:
                current = with_state(current, self.implied)
        self.last = current
        if not self.resumed:
            self.reported = self.reported.add(current)
        return previous, current

    def reconnected(self) -> None:
        """No full state on this connection: what was reported before it is history."""
        if self.resumed:
            self.resumed, self.reported = False, Reported()
        self.no_full_state = True

    def decide(self, job: JobCheckpoint) -> tuple[ResumeDecision, PrinterSnapshot] | None:
        """The open job's resume decision from the deltas so far, and the last snapshot as it implies
        (None while they say nothing about progress yet)."""
        decision = decide_resume_from_reports(job, self.reported)
        if decision is None:
            return None
        if isinstance(decision, ContinueSameJob):
            self.implied = "PAUSE" if decision.paused else "RUNNING"
        elif isinstance(decision, CloseAndStartNew) and decision.start_new:
            self.implied = self.reported.status.gcode_state or "RUNNING"
        current = self.last
        if self.implied is not None and "gcode_state" not in self.reported.fields:
            current = with_state(current, self.implied)
        return decision, current
