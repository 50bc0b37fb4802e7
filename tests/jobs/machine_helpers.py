"""The tracker's side of the job machine (`machine.JobEffects`) without its I/O, for tests that drive
the machine alone: what the machine asks is recorded, and a commit keeps the job as the tracker does
(the real adapter, `JobTracker`, is driven by test_lifecycle_tracker.py and the e2e tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.billing.rules import BillLine
from server.jobs.checkpoint import JobCheckpoint
from server.jobs.lifecycle import JobStarted, Step
from server.jobs.machine import JobMachine


@dataclass
class Recorder:
    printer: str = "a1"
    job_id: int | None = None
    analysis: Any = None
    commits: list[Step] = field(default_factory=list)
    fetches: int = 0
    machine: JobMachine | None = None

    @property
    def bills(self) -> list[BillLine]:
        return [line for step in self.commits for line in step.bills]

    async def leave_job(self, current: Any) -> None:
        self.analysis = None

    async def record_job(self, job: JobCheckpoint, started: JobStarted) -> None:
        assert self.machine is not None
        self.job_id = (self.job_id or 0) + 1
        self.machine.job = job

    def want_file(self, current: Any) -> None:
        self.fetches += 1

    async def commit(self, step: Step) -> None:
        assert self.machine is not None
        if step.job is not None and self.job_id is not None:
            self.commits.append(step)
            self.machine.job = step.job


def machine_for(job: JobCheckpoint | None = None, analysis: Any = None,
                job_id: int | None = None) -> tuple[JobMachine, Recorder]:
    """A machine standing where `job` says (idle for None), as after a restart."""
    effects = Recorder(analysis=analysis, job_id=job_id if job_id is not None else 1 if job is not None else None)
    machine = JobMachine(effects, job)
    effects.machine = machine
    return machine, effects
