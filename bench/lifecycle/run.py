"""The job lifecycle's cost on the event loop, one command: ``python -m bench.lifecycle``.

A recorded A1 print (tests/fixtures/sequences, 4 colours, cloud) is replayed report by report
through what the printer task runs for each on its event loop: ``lifecycle.derive_events`` and
the printer's ``JobMachine`` (``machine.apply``) on the report's snapshot (made before the clock
starts: the printer task makes it once per report, ``bench.printer.views`` counts those), with the
tracker's I/O left out (a null
adapter: this measures the lifecycle's own work, not SQLite). Printed: per report, the mean and
the worst, and per lifecycle event (start, pause, end, ...) the time of one machine transition.

For comparison it also times one lifecycle step (a pause, a resume) on the printer's lasting
machine and on a machine built afresh for the step, which is what Layerwise did before the
machine was in charge (``lifecycle_at`` rebuilt one and replayed a path to the job's state on
every step), here with today's machine class.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.jobs.checkpoint import JobCheckpoint, JobKey
from server.jobs.lifecycle import JobStarted, Paused, Resumed, Step, derive_events
from server.jobs.machine import JobMachine
from server.printer.snapshot import BLANK, PrinterSnapshot, project_file, snapshot
from server.printer.state import merge_report

SEQUENCES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "sequences"
SEQUENCE = "a1-fw01.07-Testqube_Multicolor_cloud"
AT = datetime(2026, 12, 4, tzinfo=UTC)


class NullEffects:
    """The tracker's side without I/O: commits keep the job, nothing is fetched."""

    printer = "bench"

    def __init__(self) -> None:
        self.job_id: int | None = None
        self.analysis: Any = None
        self.machine: JobMachine | None = None

    async def leave_job(self, current: PrinterSnapshot) -> None:
        self.analysis = None

    async def record_job(self, job: JobCheckpoint, started: JobStarted) -> None:
        assert self.machine is not None
        self.job_id = (self.job_id or 0) + 1
        self.machine.job = job

    def want_file(self, current: PrinterSnapshot) -> None:
        pass

    async def commit(self, step: Step) -> None:
        assert self.machine is not None
        if step.job is not None:
            self.machine.job = step.job


def reports() -> list[dict[str, Any]]:
    lines = (SEQUENCES / f"{SEQUENCE}.log").read_text(encoding="utf-8").splitlines()
    return [json.loads(line.partition(" :: ")[2]) for line in lines]


async def replay(messages: list[dict[str, Any]]) -> tuple[list[float], dict[str, list[float]]]:
    effects = NullEffects()
    machine = JobMachine(effects)
    effects.machine = machine
    per_report: list[float] = []
    per_event: dict[str, list[float]] = {}
    state: dict[str, Any] = {}
    current = BLANK
    for message in messages:
        body = message.get("print")
        if not isinstance(body, dict):
            continue
        echo = body if body.get("command") == "project_file" else None
        previous = current
        if echo is None:
            state = merge_report(state, message)
        current = snapshot(state, report=body)
        announced = project_file(echo) if echo is not None else None
        start = time.perf_counter()
        for event in derive_events(machine.job, previous, current, announced):
            began = time.perf_counter()
            await machine.apply(event, current=current, at=AT)
            per_event.setdefault(type(event).__name__, []).append(time.perf_counter() - began)
        per_report.append(time.perf_counter() - start)
    return per_report, per_event


def per_step(repeat: int, *, rebuild: bool) -> float:
    """One pause and resume of a running job: on the printer's lasting machine, or (``rebuild``, the
    old ``lifecycle_at`` way) on a machine built afresh for each step."""
    job = JobCheckpoint(printer="bench", key=JobKey("bench"), lifecycle="running")
    effects = NullEffects()
    lasting = JobMachine(effects, job)
    effects.machine = lasting

    async def steps() -> None:
        for event, cause in (("pause", Paused(None)), ("resume", Resumed())):
            machine = JobMachine(NullEffects(), lasting.job) if rebuild else lasting
            machine.effects.machine = machine  # type: ignore[attr-defined]
            await machine.fire(event, cause=cause, at=AT)
            lasting.job = machine.job

    async def timed() -> float:
        await steps()
        start = time.perf_counter()
        for _ in range(repeat):
            await steps()
        return (time.perf_counter() - start) / repeat / 2

    return asyncio.run(timed())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="replays of the recorded print")
    args = parser.parse_args(argv)
    messages = reports()
    per_report: list[float] = []
    per_event: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        reports_, events = asyncio.run(replay(messages))
        per_report += reports_
        for name, times in events.items():
            per_event.setdefault(name, []).extend(times)
    us = 1e6
    print(f"{SEQUENCE}: {len(per_report) // args.rounds} reports x {args.rounds} rounds")
    print(f"per report (derive_events + machine): mean {statistics.fmean(per_report) * us:.1f} us, "
          f"p99 {sorted(per_report)[int(len(per_report) * 0.99)] * us:.1f} us, max {max(per_report) * us:.1f} us")
    for name, times in sorted(per_event.items()):
        print(f"  {name:<14} {len(times) // args.rounds:>4} per print, mean {statistics.fmean(times) * us:7.1f} us")
    print(f"one lifecycle step (pause or resume) on the printer's machine: {per_step(300, rebuild=False) * us:.1f} us; "
          f"on a machine rebuilt per step, as lifecycle_at did: {per_step(300, rebuild=True) * us:.1f} us")
    return 0
