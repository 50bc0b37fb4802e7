"""The job lifecycle machine: every transition, events that do not apply, the checkpoint as its
model (saved and restored with the job), and its diagram in the docs.

The machine's effects are recorded (`machine_helpers.Recorder`); the real adapter, `JobTracker`,
is driven by test_lifecycle_tracker.py and the e2e tests."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from machine_helpers import Recorder, machine_for

from server.jobs.checkpoint import (
    ENDED_OFFLINE,
    CloseAndStartNew,
    ContinueSameJob,
    JobCheckpoint,
    JobKey,
    SettleEndedJob,
)
from server.jobs.lifecycle import (
    CancelConfirmed,
    Failed,
    Finished,
    JobChanged,
    JobStarted,
    LayerReached,
    Paused,
    Resumed,
    Step,
)
from server.jobs.machine import JobMachine, diagram, main
from tests.billing.test_billing_fake_analysis import FakeAnalysis

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"
AT = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
ANALYSIS = FakeAnalysis({0: {0: 10.0}, 1: {0: 1.0}, 2: {0: 2.0}, 3: {0: 3.0}})
STATES = {"idle", "resuming", "downloading", "parsing", "untracked", "running", "paused", "finished", "failed",
          "cancelled"}
CURRENT: dict[str, Any] = {"gcode_state": "RUNNING"}


def started(name: str = "Cube") -> JobStarted:
    return JobStarted(JobKey(name), f"{name}.3mf", f"{name}.3mf", None)


async def fire_all(machine: JobMachine, *events: str | Any) -> None:
    for event in events:
        if isinstance(event, str):
            assert await machine.fire(event, **_data(event)), event
        else:
            await machine.apply(event, current=CURRENT, at=AT)


def _data(event: str) -> dict[str, Any]:
    return {
        "start_job": {"started": started(), "current": CURRENT, "at": AT},
        "file_fetched": {"file_path": "/data/jobs/1/Cube.3mf"},
        "file_analysed": {"analysis": ANALYSIS},
        "file_unavailable": {"reason": "no file on the printer"},
        "pause": {"cause": Paused(None), "at": AT},
        "resume": {"cause": Resumed(), "at": AT},
        "finish": {"cause": Finished(), "at": AT},
        "fail": {"cause": Failed(False, 2, 50), "at": AT},
        "cancel": {"cause": Failed(True, 2, 50), "at": AT},
        "confirm_cancel": {"cause": CancelConfirmed(0x0300400C), "at": AT},
        "restart": {},
        "continue_job": {"cause": ContinueSameJob(2, 50), "current": CURRENT, "at": AT},
    }[event]


async def printing() -> tuple[JobMachine, Recorder]:
    machine, effects = machine_for()
    await fire_all(machine, "start_job", "file_fetched", "file_analysed")
    return machine, effects


# ---- every transition ------------------------------------------------------------------------------------


async def test_a_tracked_print_from_start_to_finish_and_the_next_one() -> None:
    machine, effects = machine_for()
    assert machine.state_id == "idle" and machine.job is None
    await fire_all(machine, "start_job")
    assert machine.state_id == "downloading" and effects.job_id == 1 and effects.fetches == 1
    assert machine.job is not None and machine.job.lifecycle == "downloading" and machine.job.key == JobKey("Cube")
    await fire_all(machine, LayerReached(2, 40), "file_fetched")
    assert machine.state_id == "parsing" and machine.job.file_path == "/data/jobs/1/Cube.3mf"
    await fire_all(machine, "file_analysed")
    assert machine.state_id == "running" and effects.analysis is ANALYSIS
    assert [line.layer for line in effects.commits[-1].bills] == [0, 1]  # the layers due, billed on analysis
    await fire_all(machine, "pause")
    assert machine.state_id == "paused" and machine.job.lifecycle == "paused"
    await fire_all(machine, "resume", "finish")
    assert machine.state_id == "finished" and machine.job.final_state == "finished" and machine.job.ended_at == AT
    assert [line.layer for line in effects.commits[-1].bills] == [2, 3]  # the end billed
    await fire_all(machine, "start_job")
    assert machine.state_id == "downloading" and effects.job_id == 2 and machine.job.open
    assert effects.analysis is None  # the last job's analysis is not the new one's


@pytest.mark.parametrize("end", ["finish", "fail", "cancel"])
@pytest.mark.parametrize("waiting", [(), ("file_fetched",), ("file_unavailable",), ("file_fetched", "file_analysed"),
                                     ("file_fetched", "file_analysed", "pause")])
async def test_a_job_ends_from_wherever_it_stands(waiting: tuple[str, ...], end: str) -> None:
    machine, _ = machine_for()
    await fire_all(machine, "start_job", *waiting, end)
    final = {"finish": "finished", "fail": "failed", "cancel": "cancelled"}[end]
    assert machine.state_id == final and machine.job is not None and machine.job.final_state == final


async def test_an_unobtainable_file_leaves_the_job_untracked_with_its_reason() -> None:
    machine, _ = machine_for()
    await fire_all(machine, "start_job", "file_unavailable")
    assert machine.state_id == "untracked" and machine.job is not None
    assert machine.job.untracked_reason == "no file on the printer"


async def test_the_file_of_an_ended_job_is_still_taken_in_and_bills_its_end() -> None:
    machine, effects = machine_for()
    await fire_all(machine, "start_job", LayerReached(1, 20), "finish")
    assert effects.commits[-1].bills == ()  # no analysis yet
    await fire_all(machine, "file_fetched", "file_analysed")
    assert machine.state_id == "finished" and machine.job is not None and machine.job.file_path
    assert [line.layer for line in effects.commits[-1].bills] == [0, 1, 2, 3]
    await fire_all(machine, "file_unavailable")  # a reason noted, the job stays ended
    assert machine.state_id == "finished" and machine.job.untracked_reason


async def test_a_late_cancel_code_relabels_the_failed_job() -> None:
    machine, effects = await printing()
    await fire_all(machine, "fail")
    billed = effects.commits[-1].job
    await fire_all(machine, "confirm_cancel")
    assert machine.state_id == "cancelled" and machine.job is not None and machine.job.final_state == "cancelled"
    assert effects.commits[-1].bills == () and billed is not None and machine.job.billing == billed.billing


@pytest.mark.parametrize("steps", [("file_fetched", "file_analysed"), ("file_fetched", "file_analysed", "pause"),
                                   (), ("file_fetched",), ("file_unavailable",)])
async def test_a_new_job_while_one_is_open_ends_it_first(steps: tuple[str, ...]) -> None:
    machine, effects = machine_for()
    await fire_all(machine, "start_job", *steps)
    first = machine.job
    await fire_all(machine, JobChanged(JobKey("Cube")), Failed(False, None, None, None, ENDED_OFFLINE), started("Next"))
    assert machine.state_id == "downloading" and machine.job is not None and machine.job.key == JobKey("Next")
    assert effects.job_id == 2
    closed = [s.job for s in effects.commits if s.job is not None and s.job.key == JobKey("Cube")][-1]
    assert first is not None and closed.final_state == "failed" and closed.end_reason == ENDED_OFFLINE


async def test_a_new_job_straight_from_printing() -> None:
    # Only the machine's own check: derive_events always closes the open job first.
    machine, effects = await printing()
    await fire_all(machine, "start_job")
    assert machine.state_id == "downloading" and effects.job_id == 2


# ---- restart ---------------------------------------------------------------------------------------------


def stored(state: str, **changes: Any) -> JobCheckpoint:
    return JobCheckpoint(printer="a1", key=JobKey("Cube"), lifecycle=state, last_layer=1, last_percent=30, **changes)


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (ContinueSameJob(3, 80), "running"),
        (ContinueSameJob(3, 80, paused=True), "paused"),
        (SettleEndedJob("finished", 3, 100), "finished"),
        (SettleEndedJob("failed", 2, 60), "failed"),
        (SettleEndedJob("cancelled", 2, 60), "cancelled"),
        (CloseAndStartNew(start_new=True), "failed"),
    ],
)
@pytest.mark.parametrize("before", ["running", "paused"])
async def test_a_restart_resumes_as_the_printer_says(before: str, decision: Any, expected: str) -> None:
    machine, effects = machine_for(stored(before), analysis=ANALYSIS)
    assert machine.state_id == before  # restored from the checkpoint
    await machine.fire("restart")
    assert machine.state_id == "resuming"
    await machine.restart_with(decision, current=CURRENT, at=AT)
    assert machine.state_id == expected and machine.job is not None and machine.job.lifecycle == expected
    assert (machine.job.final_state is None) == (expected in ("running", "paused"))
    if isinstance(decision, ContinueSameJob):
        assert [line.layer for line in effects.commits[-1].bills] == [0, 1, 2]  # the layers missed while down
    if isinstance(decision, CloseAndStartNew):
        assert machine.job.end_reason == ENDED_OFFLINE


@pytest.mark.parametrize(
    ("job", "analysis", "expected"),
    [
        (stored("downloading"), None, "downloading"),
        (stored("parsing", file_path="/data/jobs/1/Cube.3mf"), None, "parsing"),
        (stored("untracked", untracked_reason="no file"), None, "untracked"),
        (stored("parsing", file_path="/data/jobs/1/Cube.3mf"), ANALYSIS, "running"),  # analysed before the crash
    ],
)
async def test_a_restart_continues_a_job_waiting_for_its_file_where_it_was(
        job: JobCheckpoint, analysis: Any, expected: str) -> None:
    machine, effects = machine_for(job, analysis=analysis)
    await machine.restart_with(ContinueSameJob(3, 80), current=CURRENT, at=AT)
    assert machine.state_id == expected and machine.job is not None and machine.job.last_layer == 3
    assert effects.fetches == (1 if expected == "downloading" else 0)


async def test_a_restarted_job_that_is_waiting_can_still_end() -> None:
    machine, _ = machine_for(stored("downloading"))
    await machine.restart_with(SettleEndedJob("finished", 3, 100), current=CURRENT, at=AT)
    assert machine.state_id == "finished"


async def test_a_new_print_after_a_restart() -> None:
    machine, effects = machine_for(stored("running"), analysis=ANALYSIS)
    await machine.fire("restart")
    await fire_all(machine, "start_job")
    assert machine.state_id == "downloading" and effects.job_id == 2


# ---- the checkpoint is the model -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(STATES - {"idle"}))
async def test_the_state_survives_a_reboot_in_the_checkpoint(state: str) -> None:
    machine, _ = machine_for(stored(state))
    assert machine.state_id == state
    reborn, _ = machine_for(JobCheckpoint.from_dict(machine.job.to_dict() if machine.job else {}))
    assert reborn.state_id == state and reborn.job == machine.job


async def test_the_state_a_machine_moved_to_is_stored_in_the_checkpoint() -> None:
    machine, _ = await printing()
    await fire_all(machine, "pause")
    assert machine.job is not None
    data = machine.job.to_dict()
    assert data["lifecycle"] == "paused"
    reborn, _ = machine_for(JobCheckpoint.from_dict(data))
    await fire_all(reborn, "resume")
    assert reborn.state_id == "running"


# ---- events that do not apply --------------------------------------------------------------------------------

ALL_EVENTS = ["start_job", "restart", "continue_job", "file_fetched", "file_analysed", "file_unavailable", "pause",
              "resume", "finish", "fail", "cancel", "confirm_cancel"]


async def reach(state: str) -> JobMachine:
    if state == "idle":
        return machine_for()[0]
    machine, _ = machine_for(stored(state, file_path="/x" if state == "parsing" else None), analysis=ANALYSIS)
    if state == "resuming":
        await machine.fire("restart")
    return machine


@pytest.mark.parametrize("state", sorted(STATES))
async def test_events_that_do_not_apply_are_logged_once_and_ignored(
        state: str, caplog: pytest.LogCaptureFixture) -> None:
    machine = await reach(state)
    allowed = {event.id for event in machine.allowed_events}
    refused = [event for event in ALL_EVENTS if event not in allowed]
    assert refused, state
    before = machine.job
    caplog.set_level(logging.INFO, logger="server.jobs.machine")
    for event in refused:
        for _ in range(2):
            assert await machine.fire(event, **_data(event)) is False
    assert machine.state_id == state and machine.job == before
    lines = [r.getMessage() for r in caplog.records if "does not apply" in r.getMessage()]
    assert len(lines) == len(refused)  # once per event, however often it comes
    for event, line in zip(refused, lines, strict=True):
        assert f"{event!r} does not apply in state {state}" in line and line.startswith("a1: job ")


async def test_a_failing_adapter_leaves_the_job_as_it_was() -> None:
    machine, effects = await printing()
    before = machine.job

    async def broken(step: Step) -> None:
        raise OSError("disk full")

    effects.commit = broken  # type: ignore[method-assign]
    with pytest.raises(OSError):
        await machine.fire("finish", **_data("finish"))
    assert machine.job == before and machine.state_id == "running"
    effects.commit = Recorder.commit.__get__(effects)  # type: ignore[method-assign]
    assert await machine.fire("finish", **_data("finish"))  # the machine carries on
    assert machine.state_id == "finished"


# ---- random sequences ------------------------------------------------------------------------------------------


class RandomEvents(RuleBasedStateMachine):
    """Any sequence of events: the state is always a declared one, a refused event never raises and
    changes nothing, and the checkpoint always restores the same state."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.machine, self.effects = machine_for()

    def teardown(self) -> None:
        self.loop.close()

    @rule(event=st.sampled_from(ALL_EVENTS), paused=st.booleans())
    def send(self, event: str, paused: bool) -> None:
        before, state = self.machine.job, self.machine.state_id
        data = _data(event)
        if event == "continue_job":
            data["paused"] = paused
        moved = self.loop.run_until_complete(self.machine.fire(event, **data))
        if not moved:
            assert self.machine.job == before and self.machine.state_id == state

    @rule(layer=st.integers(0, 5))
    def layer(self, layer: int) -> None:
        self.loop.run_until_complete(self.machine.apply(LayerReached(layer, 10), current=CURRENT, at=AT))

    @invariant()
    def state_is_declared_and_stored(self) -> None:
        state = self.machine.state_id
        assert state in STATES
        job = self.machine.job
        assert (job is None) == (state == "idle")
        if job is not None:
            assert job.lifecycle == state
            assert (job.final_state is None) == (state not in ("finished", "failed", "cancelled"))
            reborn, _ = machine_for(JobCheckpoint.from_dict(job.to_dict()))
            assert reborn.state_id == state


TestRandomEvents = RandomEvents.TestCase
TestRandomEvents.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


# ---- the diagram -----------------------------------------------------------------------------------------------


def test_the_docs_carry_the_current_diagram() -> None:
    generated = diagram()
    assert generated.startswith("stateDiagram-v2")
    assert f"```mermaid\n{generated}```" in DOCS.read_text(encoding="utf-8"), (
        "docs/tracking.md is stale: paste `python -m server.jobs.machine --diagram` into it"
    )


def test_the_diagram_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--diagram"]) == 0
    assert capsys.readouterr().out == diagram()


async def test_a_restart_is_compared_with_the_checkpoint_saved_before_it() -> None:
    # `resuming` passes unsaved: what the decision changed is measured against the stored checkpoint.
    machine, effects = machine_for(stored("running"), analysis=ANALYSIS)
    saved: list[JobCheckpoint | None] = []

    async def commit(step: Step) -> None:
        saved.append(machine.job)  # the job as the adapter sees it while writing the step
        machine.job = step.job

    effects.commit = commit  # type: ignore[method-assign]
    await machine.restart_with(ContinueSameJob(1, 30), current=CURRENT, at=AT)
    assert machine.state_id == "running" and saved == [stored("running")]


async def test_the_new_state_is_shown_only_once_it_is_saved() -> None:
    # A reader of the printer's job (the dashboard, a test waiting for "analysed") never sees a state
    # whose checkpoint is not stored yet.
    machine, effects = machine_for()
    await fire_all(machine, "start_job", "file_fetched")
    seen: list[tuple[str | None, str]] = []
    record = effects.commit

    async def commit(step: Step) -> None:
        seen.append((machine.job.lifecycle if machine.job else None, machine.state_id))
        await record(step)
        seen.append((machine.job.lifecycle if machine.job else None, machine.state_id))

    effects.commit = commit  # type: ignore[method-assign]
    await fire_all(machine, "file_analysed")
    assert seen == [("parsing", "running"), ("running", "running")]
