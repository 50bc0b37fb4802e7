"""Acceptance: the four real A1 print sequences, replayed message by message through
the state merge, the lifecycle and the mapping learner, arrive at the filament-to-tray
mapping their publisher recorded, and bill exactly what the analysis says.

Two are LAN prints without any `project_file` message (the mapping must be learned from
the tray reports), two are cloud prints that announce `ams_mapping`.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from machine_helpers import Recorder, machine_for
from snapshots import events_between, resume, snap

from server.analysis import PrintAnalysis, analyze_file
from server.billing.rules import BillLine, billed_total
from server.jobs.checkpoint import JobCheckpoint
from server.jobs.lifecycle import JobStarted, LifecycleEvent, Step, observe_trays
from server.jobs.machine import JobMachine
from server.jobs.mapping import MappingLearner
from server.printer.state import merge_report

NOW = datetime(2025, 12, 19, 18, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEQUENCES = FIXTURES / "sequences"
PRINT_FILES = FIXTURES / "print-files"
FOUR_COLOUR = "testqube-a1-4colour-bs2.04.gcode.3mf"
ONE_COLOUR = "testqube-a1-1colour-bs2.04.gcode.3mf"
CASES = {
    "a1-fw01.07-Testqube_Multicolor_local": FOUR_COLOUR,
    "a1-fw01.07-Testqube_Multicolor_cloud": FOUR_COLOUR,
    "a1-fw01.07-Testqube_local": ONE_COLOUR,
    "a1-fw01.07-Testqube_cloud": ONE_COLOUR,
}


@cache
def analysis_of(name: str) -> PrintAnalysis:
    return analyze_file(PRINT_FILES / name)


def messages(name: str) -> list[dict[str, Any]]:
    out = []
    for line in (SEQUENCES / f"{name}.log").read_text(encoding="utf-8").splitlines():
        _stamp, _, payload = line.partition(" :: ")
        out.append(json.loads(payload))
    return out


def expected_mapping(name: str) -> dict[int, int]:
    doc = json.loads((SEQUENCES / f"{name}.expected.json").read_text(encoding="utf-8"))
    return {int(k): int(v) for k, v in doc["expected_assignments"].items()}


@dataclass
class Replay:
    """The printer task's job handling without its I/O: the job machine, driven by the events
    derived from each report. The analysis becomes available `analysis_delay` messages after
    the job starts (the file downloading)."""

    analysis: PrintAnalysis
    analysis_delay: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    since_start: int = 0
    layer_when_analysed: int | None = None
    events: list[LifecycleEvent] = field(default_factory=list)
    machine: JobMachine = field(init=False)
    effects: Recorder = field(init=False)
    loop: asyncio.AbstractEventLoop = field(init=False, default_factory=asyncio.new_event_loop)

    def __post_init__(self) -> None:
        self.machine, self.effects = machine_for()

    @property
    def job(self) -> JobCheckpoint | None:
        return self.machine.job

    @property
    def known(self) -> PrintAnalysis | None:
        return self.effects.analysis

    @property
    def bills(self) -> list[BillLine]:
        return self.effects.bills

    def feed(self, message: dict[str, Any]) -> None:
        body = message.get("print")
        if not isinstance(body, dict):
            return
        echo = body if body.get("command") == "project_file" else None
        previous = self.state
        if echo is None:
            self.state = merge_report(self.state, message)
        current = snap(self.state)
        for event in events_between(self.job, previous, self.state, echo):
            self.events.append(event)
            if isinstance(event, JobStarted):
                self.since_start = 0
            self.loop.run_until_complete(self.machine.apply(event, current=current, at=NOW))
        if self.job is None:
            return
        self.machine.job = observe_trays(self.job, current)
        self.since_start += 1
        if self.known is None and self.since_start > self.analysis_delay:
            self.layer_when_analysed = self.job.last_layer
            self.loop.run_until_complete(self.machine.fire("file_fetched", file_path="job.gcode.3mf"))
            self.loop.run_until_complete(self.machine.fire("file_analysed", analysis=self.analysis))

    def restart(self, stored: JobCheckpoint, printer_state: dict[str, Any]) -> None:
        """Layerwise restarts: a new machine from the stored checkpoint (and the analysis, if it was
        known), resumed as the printer's full state says."""
        bills = self.bills
        self.machine, self.effects = machine_for(stored, self.known, job_id=self.effects.job_id)
        self.effects.commits.append(Step(None, tuple(bills)))  # what was billed before the restart
        self.state = dict(printer_state)  # the full report after reconnecting
        if stored.open:
            decision = resume(stored, printer_state)
            self.loop.run_until_complete(self.machine.restart_with(decision, current=snap(self.state), at=NOW))


@pytest.mark.parametrize("delay", [0, 250], ids=["analysed-at-once", "analysed-late"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_replayed_sequence_learns_the_mapping_and_bills_the_whole_print(name: str, delay: int) -> None:
    analysis = analysis_of(CASES[name])
    replay = Replay(analysis, analysis_delay=delay)
    for message in messages(name):
        replay.feed(message)

    starts = [e for e in replay.events if isinstance(e, JobStarted)]
    assert len(starts) == 1, starts
    assert starts[0].announced == name.endswith("_cloud")
    job = replay.job
    assert job is not None and job.final_state == "finished" and job.lifecycle == "finished"
    if delay:
        # The file arrived after the print's first loads (and first change, for four
        # colours): what was seen meanwhile waited and was matched.
        assert replay.layer_when_analysed is not None and replay.layer_when_analysed >= 9
    expected = expected_mapping(name)
    # The learned mapping alone must be right, with or without a project_file echo.
    assert dict(job.learned) == expected
    assert {f: job.tray_for(f) for f in expected} == expected
    if name.endswith("_cloud"):
        assert dict(job.mapping) == expected

    billed = billed_total(replay.bills)
    total = analysis.used_through(analysis.layer_count)
    assert billed.keys() == total.keys()
    for filament, mm in total.items():
        assert billed[filament] == pytest.approx(mm, abs=0.01)
    pairs = [(line.layer, line.filament_index) for line in replay.bills]
    assert len(pairs) == len(set(pairs))
    assert not any(line.estimate for line in replay.bills)


@pytest.mark.parametrize("name", ["a1-fw01.07-Testqube_Multicolor_local", "a1-fw01.07-Testqube_Multicolor_cloud"])
def test_lost_reports_leave_a_tray_unknown_never_wrong(name: str) -> None:
    """MQTT over TCP loses nothing, but a dropped link does; drop 30% of the reports."""
    expected = expected_mapping(name)
    for seed in range(6):
        dice = random.Random(seed)
        replay = Replay(analysis_of(CASES[name]))
        for message in messages(name):
            if dice.random() >= 0.3:
                replay.feed(message)
        learned = dict(replay.job.learned) if replay.job else {}
        assert all(expected[f] == tray for f, tray in learned.items()), (seed, learned)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_restart_mid_print_resumes_and_still_bills_the_whole_print_once(name: str) -> None:
    """Layerwise goes down for 40 reports at several points (or the print starts while
    it is down); the checkpoint goes through its dict form, the printer's state comes
    back whole (pushall) and the resume decision picks up. The print is billed whole,
    each (layer, filament) once, and the mapping is still learned."""
    analysis = analysis_of(CASES[name])
    reports = messages(name)
    expected = expected_mapping(name)
    for down_at in range(60, len(reports) - 60, 90):
        replay = Replay(analysis)
        printer_state: dict[str, Any] = {}
        for index, message in enumerate(reports):
            if isinstance(message.get("print"), dict) and message["print"].get("command") != "project_file":
                printer_state = merge_report(printer_state, message)
            if down_at <= index < down_at + 40:
                continue  # Layerwise is down; the printer carries on
            if index == down_at + 40 and replay.job is not None:
                stored = JobCheckpoint.from_dict(json.loads(json.dumps(replay.job.to_dict())))
                replay.restart(stored, printer_state)
                continue
            replay.feed(message)
        job = replay.job
        assert job is not None and job.final_state == "finished", down_at
        total = analysis.used_through(analysis.layer_count)
        billed = billed_total(replay.bills)
        assert all(billed.get(f, 0.0) == pytest.approx(mm, abs=0.01) for f, mm in total.items()), down_at
        pairs = [(line.layer, line.filament_index) for line in replay.bills]
        assert len(pairs) == len(set(pairs)), down_at
        assert job.learned == expected, (down_at, job.learned)


XMAS = "xmas-pud-x1c-4colour.gcode.3mf"  # 192 layers, 82 changes, one per layer from 84 on


def simulated_reports(analysis: PrintAnalysis, trays: dict[int, int], lost: set[int], jitter: list[int]):
    """What an X1 reports through a print: per change, target then unload then load,
    tagged with the layer the printer shows (the change's own, or one off)."""
    yield 0, None, None  # the job's first look: nothing loaded yet
    loaded = None
    for number, change in enumerate(analysis.tool_changes):
        tray = trays[change.filament]
        layer = max(0, change.layer + jitter[number % len(jitter)])
        if number in lost:
            loaded = tray
            continue  # these reports never arrived; the merged state keeps the old values
        yield layer, loaded, tray
        yield layer, None, tray
        yield layer, tray, tray
        loaded = tray


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(16)), st.sets(st.integers(0, 81), max_size=30))
def test_many_changes_with_lost_reports_are_never_misattributed(order: list[int], lost: set[int]) -> None:
    analysis = analysis_of(XMAS)
    filaments = sorted({change.filament for change in analysis.tool_changes})
    trays = dict(zip(filaments, order, strict=False))
    learner = MappingLearner.for_changes(analysis.tool_changes)
    for layer, now, tar in simulated_reports(analysis, trays, lost, [0]):
        learner = learner.observe(layer, now, tar)
    assert all(trays[f] == tray for f, tray in learner.mapping().items()), (learner.mapping(), trays)
    if not lost:
        assert learner.mapping() == trays


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(16)), st.lists(st.sampled_from([-1, 0, 0, 1]), min_size=1, max_size=8))
def test_many_changes_reported_a_layer_early_or_late_are_all_learned(order: list[int], jitter: list[int]) -> None:
    analysis = analysis_of(XMAS)
    filaments = sorted({change.filament for change in analysis.tool_changes})
    trays = dict(zip(filaments, order, strict=False))
    learner = MappingLearner.for_changes(analysis.tool_changes)
    for layer, now, tar in simulated_reports(analysis, trays, set(), jitter):
        learner = learner.observe(layer, now, tar)
    assert learner.mapping() == trays
    assert learner.conflicts == ()
