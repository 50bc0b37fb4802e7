"""What identifies a print, and which mapping a job may take from the printer's reports (issue 9).

- Item 0: a job picked up mid-print takes the printer's `mapping` report when the file's filament list
  agrees with it (a job started from reports ignores the one the last print left behind).
- Item 10: a renamed `subtask_name` is not a new print; values of the wrong type are missing values.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snapshots import events_between, key_of, key_of_echo, resume

from server.jobs.checkpoint import JobCheckpoint, JobKey, job_name
from server.jobs.lifecycle import (
    JobChanged,
    JobStarted,
    LayerReached,
    MappingStated,
    apply_event,
    with_analysis,
)
from server.printer.snapshot import plate_of
from tests.billing.test_billing_fake_analysis import FakeAnalysis, FakeToolChange

AT = datetime(2026, 1, 1, tzinfo=UTC)
# Filaments 0, 1 and 3 are used (2 is in the project but unused), 4 layers.
ANALYSIS = FakeAnalysis(
    {0: {0: 10.0}, 1: {0: 5.0, 1: 1.0}, 2: {1: 4.0, 3: 2.0}, 3: {3: 3.0}, 4: {0: 1.0}},
    tool_changes=(FakeToolChange(0, 0), FakeToolChange(1, 1), FakeToolChange(2, 3), FakeToolChange(4, 0)),
)
X1_RUNNING = {"gcode_state": "RUNNING", "layer_num": 3, "mc_percent": 60, "subtask_name": "Cube",
              "gcode_file": "/data/Metadata/plate_1.gcode", "task_id": "0", "subtask_id": "0",
              "mapping": [0, 1, 65535, 2]}  # ams_id << 8 | slot: filament 3 in AMS 0 slot 2


def started(events: list[Any]) -> JobStarted:
    (event,) = [e for e in events if isinstance(e, JobStarted)]
    return event


def test_a_job_picked_up_mid_print_takes_the_reported_mapping_once_the_file_agrees() -> None:
    events = events_between(None, X1_RUNNING, X1_RUNNING)  # Layerwise joins: no history, state = now
    assert [type(e) for e in events] == [JobStarted, LayerReached]
    job = apply_event(None, events[0], None, printer="x1", at=AT).job
    assert job is not None and job.mapping == {} and job.reported == {0: 0, 1: 1, 3: 2}
    job = apply_event(job, events[1], None, printer="x1", at=AT).job
    assert job is not None
    step = with_analysis(job, ANALYSIS)
    assert step.job is not None and step.job.mapping == {0: 0, 1: 1, 3: 2}
    # Everything before the join is due at once, and its trays are known.
    assert sorted({line.layer for line in step.bills}) == [0, 1, 2]
    assert {step.job.tray_for(line.filament_index) for line in step.bills} <= {0, 1, 2}


def test_a_job_picked_up_from_an_empty_previous_state_counts_as_picked_up() -> None:
    # After a restart that closed the old job: events_between(job, {}, state).
    event = started(events_between(None, {}, X1_RUNNING))
    assert event.reported == {0: 0, 1: 1, 3: 2}


def test_a_reported_mapping_that_misses_a_used_filament_is_not_taken() -> None:
    state = {**X1_RUNNING, "mapping": [0, 1]}  # the last print's, for two filaments: 3 is unmapped
    job = apply_event(None, started(events_between(None, state, state)), None, printer="x1", at=AT).job
    assert job is not None
    step = with_analysis(job.seen(3, 60), ANALYSIS)
    assert step.job is not None and step.job.mapping == {}


def test_a_job_started_from_reports_still_ignores_the_last_prints_mapping() -> None:
    finish = {**X1_RUNNING, "gcode_state": "FINISH", "layer_num": 50}
    prepare = {**finish, "gcode_state": "PREPARE"}
    event = started(events_between(None, finish, prepare))
    assert event.mapping == {} and event.reported == {}
    # Also when picked up in PREPARE: the printer may not have replaced the last print's mapping yet.
    assert started(events_between(None, prepare, prepare)).reported == {}


def test_a_stated_mapping_wins_over_the_reported_one() -> None:
    job = JobCheckpoint(printer="x1", key=JobKey("Cube"), lifecycle="parsing", mapping={0: 4, 1: 5, 3: 6},
                        reported={0: 0, 1: 1, 3: 2}, last_layer=3)
    step = with_analysis(job, ANALYSIS)
    assert step.job is not None and step.job.mapping == {0: 4, 1: 5, 3: 6}


def test_reported_and_person_stated_trays_survive_the_checkpoint() -> None:
    job = JobCheckpoint(printer="x1", key=JobKey("Cube"), reported={0: 0, 3: 2}, manual={1: 7})
    again = JobCheckpoint.from_dict(job.to_dict())
    assert again.reported == {0: 0, 3: 2} and again.manual == {1: 7}
    assert again.tray_for(1) == 7
    # A person's word wins over the printer's and the learner's.
    assert JobCheckpoint(printer="x1", key=JobKey("Cube"), mapping={1: 3}, manual={1: 7}).tray_for(1) == 7
    # Old checkpoints without the new fields still load.
    data = job.to_dict()
    del data["reported"], data["manual"]
    assert JobCheckpoint.from_dict(data).manual == {}


# ---- item 10: identity ----------------------------------------------------------------------------------

LAN_RUNNING = {"gcode_state": "RUNNING", "layer_num": 20, "mc_percent": 40, "subtask_name": "Cube.3mf",
               "gcode_file": "Cube.3mf", "task_id": "0", "subtask_id": "0", "print_error": 0}


CUBE = JobKey("Cube")


def open_job(key: JobKey = CUBE, **changes: Any) -> JobCheckpoint:
    return JobCheckpoint(printer="a1", key=key, lifecycle="running", last_layer=20, last_percent=40, **changes)


def test_a_subtask_renamed_mid_print_is_the_same_job() -> None:
    renamed = {**LAN_RUNNING, "subtask_name": "Cube (copy)", "layer_num": 21, "mc_percent": 42}
    assert events_between(open_job(), LAN_RUNNING, renamed) == [LayerReached(21, 42)]
    x1 = {**LAN_RUNNING, "gcode_file": "/data/Metadata/plate_1.gcode"}
    assert events_between(open_job(), x1, {**x1, "subtask_name": "Renamed", "layer_num": 21}) == [
        LayerReached(21, 40)]


def test_a_renamed_subtask_whose_print_started_over_is_another_print() -> None:
    # An X1 LAN print: gcode_file names only the plate, so a new name with progress back at the start
    # is what shows another print (its end and start were not seen).
    x1 = {**LAN_RUNNING, "gcode_file": "/data/Metadata/plate_1.gcode"}
    other = {**x1, "subtask_name": "Vase", "layer_num": 2, "mc_percent": 3}
    events = events_between(open_job(), x1, other)
    assert isinstance(events[0], JobChanged) and started(events).key.name == "Vase"


def test_another_file_or_task_is_another_print() -> None:
    other_file = {**LAN_RUNNING, "subtask_name": "Vase.3mf", "gcode_file": "Vase.3mf", "layer_num": 21}
    assert isinstance(events_between(open_job(), LAN_RUNNING, other_file)[0], JobChanged)
    cloud = {**LAN_RUNNING, "task_id": "11", "subtask_id": "12"}
    job = open_job(key=JobKey("Cube", None, "11", "12"))
    other_task = {**cloud, "subtask_name": "Cube", "task_id": "13", "subtask_id": "14", "layer_num": 21}
    assert isinstance(events_between(job, cloud, other_task)[0], JobChanged)
    # The same task renamed is the same print.
    renamed = {**cloud, "subtask_name": "Renamed", "layer_num": 21}
    assert events_between(job, cloud, renamed) == [LayerReached(21, 40)]


WRONG = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
                  st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                  st.just("plate_" + "9" * 5000 + ".gcode"))


def test_wrong_types_are_missing_values() -> None:
    assert job_name(5) == "" and job_name(["a"]) == "" and job_name(None) == ""
    assert plate_of(7) is None and plate_of({"a": 1}) is None
    assert plate_of("Metadata/plate_" + "1" * 5000 + ".gcode") is None  # no ValueError from int()
    key = key_of({"subtask_name": 5, "gcode_file": ["x"], "task_id": {"a": 1}, "subtask_id": 2.5})
    assert key == JobKey("", None, None, None)
    assert key_of_echo({"subtask_name": None, "file": 3, "url": [], "param": 4, "task_id": [1]}) == JobKey("")


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(["subtask_name", "gcode_file", "task_id", "subtask_id", "mapping", "layer_num",
                              "mc_percent", "print_error", "gcode_state"]),
       value=WRONG, layer=st.integers(21, 30))
def test_any_report_value_never_raises_and_a_renamed_subtask_keeps_the_job(field: str, value: Any,
                                                                        layer: int) -> None:
    job = open_job()
    current = {**LAN_RUNNING, field: value, "layer_num": layer if field != "layer_num" else value}
    events = events_between(job, LAN_RUNNING, current)
    events_between(None, LAN_RUNNING, current)
    events_between(None, {}, current)
    events_between(job, current, LAN_RUNNING)
    events_between(job, LAN_RUNNING, LAN_RUNNING, {"command": "project_file", field: value})
    resume(job, current)
    key_of(current)
    if field == "subtask_name":
        # Whatever the name becomes (text, a number, null, a list), the job goes on.
        assert not any(isinstance(e, JobChanged | JobStarted) for e in events)
        assert LayerReached(layer, 40) in events
    if field in ("subtask_name", "mapping"):
        assert all(isinstance(e, LayerReached | MappingStated) for e in events)


def test_a_cloud_task_renamed_is_the_same_print_even_without_a_subtask_id() -> None:
    cloud = {**LAN_RUNNING, "task_id": "11"}
    job = open_job(key=JobKey("Cube", None, "11", None))
    assert events_between(job, cloud, {**cloud, "subtask_name": "Renamed", "layer_num": 21}) == [LayerReached(21, 40)]
    assert isinstance(events_between(job, cloud, {**cloud, "task_id": "12", "layer_num": 21})[0], JobChanged)


# ---- item 1: what a step makes known ---------------------------------------------------------------------


def test_a_mapping_stated_after_the_start_makes_its_trays_known_for_release() -> None:
    from server.jobs.checkpoint import newly_known

    job = open_job()
    (event,) = events_between(job, LAN_RUNNING, {**LAN_RUNNING, "mapping": [256, 257]})  # AMS 1, slots 0 and 1
    assert event == MappingStated({0: 4, 1: 5})
    after = apply_event(job, event, ANALYSIS, printer="a1", at=AT).job
    assert after is not None
    assert newly_known(job, after) == dict(after.mapping) and after.mapping
    assert newly_known(after, after) == {}
    assert newly_known(None, replace(job, manual={3: 9})) == {3: 9}
    # A stated tray that replaces a learned one is news too; the same tray again is not.
    learned = replace(job, mapping={0: 1})
    assert newly_known(learned, replace(learned, manual={0: 1})) == {}
    assert newly_known(learned, replace(learned, manual={0: 2})) == {0: 2}


def test_a_rename_while_layerwise_was_down_resumes_the_same_job() -> None:
    from server.jobs.checkpoint import CloseAndStartNew, ContinueSameJob

    job = open_job(file_url="Cube.3mf")
    renamed = {**LAN_RUNNING, "subtask_name": "Cube v2", "layer_num": 25}
    assert resume(job, renamed) == ContinueSameJob(25, 40)
    # Another file is another print; on an X1 the file names only the plate, so a new name is too.
    assert resume(job, {**renamed, "gcode_file": "Vase.3mf"}) == CloseAndStartNew(start_new=True)
    x1 = open_job(file_url="/data/Metadata/plate_1.gcode")
    assert resume(x1, {**renamed, "gcode_file": "/data/Metadata/plate_1.gcode"}) == CloseAndStartNew(True)


@settings(max_examples=100, deadline=None)
@given(names=st.lists(WRONG, min_size=1, max_size=12))
def test_a_print_whose_name_keeps_changing_stays_one_job_billed_through_its_layers(names: list[Any]) -> None:
    """Pure replay: start from the reports, then one layer per report with whatever `subtask_name`."""
    analysis = FakeAnalysis({n: {0: 1.0} for n in range(0, 20)})
    idle = {**LAN_RUNNING, "gcode_state": "IDLE", "layer_num": 0, "mc_percent": 0}
    states = [idle, {**idle, "gcode_state": "PREPARE"}, {**idle, "gcode_state": "RUNNING"}]
    for layer, name in enumerate(names, start=1):
        states.append({**states[-1], "layer_num": layer, "mc_percent": layer, "subtask_name": name})
    job: JobCheckpoint | None = None
    started_jobs = 0
    billed = 0.0
    for previous, current in itertools.pairwise(states):
        for event in events_between(job, previous, current):
            started_jobs += isinstance(event, JobStarted)
            step = apply_event(job, event, analysis, printer="a1", at=AT)
            job = step.job
            billed += sum(line.mm for line in step.bills)
    assert started_jobs == 1 and job is not None and job.open
    assert job.last_layer == len(names) and job.billing.billed_through == len(names) - 1
    assert billed == pytest.approx(len(names))  # the prelude and layers 1..n-1, 1 mm each


CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mqtt-captures"


@pytest.mark.parametrize("name", ["push_status_full_H2D_RUNNING_local_rfid_vir_slot.json",
                                  "push_status_full_H2S_RUNNING_cloud.json",
                                  "push_status_full_P2S_RUNNING_local_rfid.json",
                                  "push_status_full_H2D_RUNNING_cloud_extspool_active_AMSHT128_129.json"])
def test_real_printers_joined_mid_print_report_their_mapping(name: str) -> None:
    state = json.loads((CAPTURES / name).read_text("utf-8"))
    event = started(events_between(None, state, state))
    assert set(event.reported) == {0} and event.reported[0] is not None
    job = apply_event(None, event, None, printer="p", at=AT).job
    assert job is not None
    one_filament = FakeAnalysis({0: {0: 1.0}, 1: {0: 2.0}})
    step = with_analysis(job.seen(1, 10), one_filament)
    assert step.job is not None and step.job.mapping == event.reported


def test_an_a2l_mapping_report_with_nothing_mapped_states_nothing() -> None:
    state = json.loads((CAPTURES / "push_status_full_A2L_IDLE_amslite_id16.json").read_text("utf-8"))
    running = {"print": {**state["print"], "gcode_state": "RUNNING", "subtask_name": "Cube", "layer_num": 3}}
    assert started(events_between(None, running, running)).reported == {}
