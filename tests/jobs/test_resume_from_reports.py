"""Resuming an open job from the printer's deltas alone, for a printer that gives no full state (issue 10)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from snapshots import resume, resume_from_reports
from test_lifecycle_jobs import checkpoint

from server.jobs.checkpoint import (
    CloseAndStartNew,
    ContinueSameJob,
    SettleEndedJob,
)


def test_a_report_without_progress_decides_nothing_yet() -> None:
    assert resume_from_reports(checkpoint(), {}) is None
    assert resume_from_reports(checkpoint(), {"print_error": 0}) is None


def test_a_layer_alone_continues_the_job_and_says_where_it_is() -> None:
    assert resume_from_reports(checkpoint(), {"layer_num": 81}) == ContinueSameJob(81, None)
    assert resume_from_reports(checkpoint(), {"mc_percent": 60}) == ContinueSameJob(None, 60)
    assert resume_from_reports(checkpoint(), {"layer_num": 30, "mc_percent": 70}) == ContinueSameJob(30, 70)


def test_a_paused_printer_continues_paused() -> None:
    assert resume_from_reports(checkpoint(), {"gcode_state": "PAUSE"}) == ContinueSameJob(None, None, True)


def test_the_end_states_settle_the_job() -> None:
    assert resume_from_reports(checkpoint(), {"gcode_state": "FINISH"}) == SettleEndedJob("finished", None,
                                                                                                 None)
    failed = resume_from_reports(checkpoint(), {"gcode_state": "FAILED", "print_error": 50348044})
    assert failed == SettleEndedJob("cancelled", 20, 55)  # through the checkpoint's last layer
    assert resume_from_reports(checkpoint(), {"gcode_state": "IDLE"}) == CloseAndStartNew(start_new=False)


def test_an_end_state_never_settles_a_job_that_reached_no_layer() -> None:
    """It may be the previous print's FINISH: closing unbilled never bills twice."""
    job = checkpoint(last_layer=None, last_percent=None)
    assert resume_from_reports(job, {"gcode_state": "FINISH"}) == CloseAndStartNew(start_new=False)


def test_a_layer_behind_the_checkpoint_is_another_print() -> None:
    assert resume_from_reports(checkpoint(), {"layer_num": 3}) == CloseAndStartNew(start_new=True)


def test_reports_that_name_a_print_are_judged_by_name() -> None:
    other = {"gcode_state": "RUNNING", "subtask_name": "Other.3mf", "gcode_file": "Other.3mf", "layer_num": 40}
    assert resume_from_reports(checkpoint(), other) == CloseAndStartNew(start_new=True)
    same = {"subtask_name": "Cube.3mf", "layer_num": 40}
    assert resume_from_reports(checkpoint(), same) == ContinueSameJob(40, None)


reports = st.fixed_dictionaries({}, optional={
    "gcode_state": st.sampled_from(["RUNNING", "PAUSE", "FINISH", "FAILED", "IDLE", "PREPARE"]),
    "layer_num": st.integers(0, 300), "mc_percent": st.integers(0, 100),
    "print_error": st.sampled_from([0, 50348044, 83902478, 117]),
})


@settings(max_examples=200, deadline=None)
@given(reports, st.integers(0, 200))
def test_deltas_agree_with_a_full_state_of_the_same_print(report: dict[str, Any], last_layer: int) -> None:
    """What the deltas alone decide is what a full state of the same print (its name added) decides."""
    job = replace(checkpoint(), last_layer=last_layer)
    decision = resume_from_reports(job, report)
    if not any(k in report for k in ("gcode_state", "layer_num", "mc_percent")):
        assert decision is None
        return
    full = {"gcode_state": "RUNNING", **report, "subtask_name": "Cube.3mf", "gcode_file": "Cube.3mf"}
    assert decision == resume(job, full)
