"""Job checkpoints and the resume decision after a restart."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from snapshots import key_of, key_of_echo, resume

from server.billing.rules import BillingCheckpoint
from server.jobs.checkpoint import (
    CloseAndStartNew,
    ContinueSameJob,
    JobCheckpoint,
    JobKey,
    SettleEndedJob,
    job_name,
)
from server.jobs.mapping import MappingLearner
from server.printer.snapshot import plate_of


def checkpoint(**changes: Any) -> JobCheckpoint:
    base = JobCheckpoint(
        printer="a1",
        key=JobKey("Cube", None, None, None),
        lifecycle="running",
        file_url="ftp:///Cube.3mf",
        mapping={0: 3},
        learner=MappingLearner(learned={1: 0}),
        billing=BillingCheckpoint(billed_through=19),
        last_layer=20,
        last_percent=55,
    )
    return replace(base, **changes)


def printer(**fields: Any) -> dict[str, Any]:
    state = {"gcode_state": "RUNNING", "subtask_name": "Cube.3mf", "gcode_file": "Cube.3mf", "layer_num": 24,
             "mc_percent": 61, "task_id": "0", "subtask_id": "0", "print_error": 0}
    return {**state, **fields}


# ---- identity ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Cube.3mf", "Cube"), ("Cube.gcode.3mf", "Cube"), ("/sdcard/cache/Cube.gcode.3mf", "Cube"), ("Cube", "Cube"),
     ("Würfel.3mf", "Würfel"), ("", ""), (None, ""), ("https://s3/u/models/Cube_1.3mf?X-Amz-Date=1&a=/b", "Cube_1")],
)
def test_job_names_compare_without_suffix_and_folder(name: str | None, expected: str) -> None:
    assert job_name(name) == expected


def test_plate_numbers() -> None:
    assert plate_of("Metadata/plate_2.gcode") == 2
    assert plate_of("/data/Metadata/plate_11.gcode") == 11
    assert plate_of("Cube.3mf") is None


def test_keys_of_the_same_print_match_across_echo_and_reports() -> None:
    echo = {"subtask_name": "Testqube_Mulitcolor", "param": "Metadata/plate_1.gcode", "task_id": "627521184",
            "subtask_id": "627521184"}
    from_echo = key_of_echo(echo)
    from_report = key_of({"subtask_name": "Testqube_Mulitcolor", "gcode_file": "Testqube_Mulitcolor.3mf",
                                     "task_id": "627521184", "subtask_id": "627521184"})
    assert from_echo == JobKey("Testqube_Mulitcolor", 1, "627521184", "627521184")
    assert from_echo.same_print(from_report)
    assert not from_echo.same_print(JobKey("Testqube_Mulitcolor", 1, "1", "2"))
    assert not JobKey("Cube", 1).same_print(JobKey("Cube", 2))
    assert not JobKey("Cube").same_print(JobKey("Vase"))
    assert JobKey("Cube").same_print(JobKey("Cube", 3))


def test_an_echo_names_its_print_by_its_own_fields_only() -> None:
    echo = {"command": "project_file", "param": "Metadata/plate_1.gcode", "file": "MyModel.3mf",
            "url": "ftp:///MyModel.3mf"}
    assert key_of_echo(echo) == JobKey("MyModel", 1)
    assert key_of_echo({"url": "file:///sdcard/cache/Vase.gcode.3mf"}) == JobKey("Vase")


# ---- the checkpoint ------------------------------------------------------------------------------------------


def test_a_checkpoint_round_trips_through_json() -> None:
    original = checkpoint(
        key=JobKey("Cube", 2, "7", "8"),
        file_path="/data/jobs/1/Cube.3mf",
        sha256="ab" * 32,
        billing=BillingCheckpoint(billed_through=3, partial_layer=4, settled=True),
        announced=True,
        started_at=datetime(2026, 11, 21, 18, 24, tzinfo=UTC),
        ended_at=datetime(2026, 11, 21, 18, 48, tzinfo=UTC),
        final_state="cancelled",
        end_reason="task cancelled",
        untracked_reason=None,
        learner=MappingLearner(changes=((0, 0), (8, 1)), learned={0: 3}, next_change=1, primed=True),
    )
    assert JobCheckpoint.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_a_stated_mapping_wins_over_a_learned_one() -> None:
    job = checkpoint(mapping={0: 3}, learner=MappingLearner(learned={0: 5, 1: 0}))
    assert job.tray_for(0) == 3
    assert job.tray_for(1) == 0
    assert job.tray_for(2) is None


def test_progress_never_moves_backwards_in_the_checkpoint() -> None:
    job = checkpoint(last_layer=20, last_percent=55)
    assert job.seen(21, 57).last_layer == 21
    assert job.seen(3, 10) == job
    assert job.seen(None, 99) == job


# ---- resume --------------------------------------------------------------------------------------------------


def test_the_same_print_still_running_continues() -> None:
    assert resume(checkpoint(), printer()) == ContinueSameJob(24, 61)
    assert resume(checkpoint(), printer(layer_num=20)) == ContinueSameJob(20, 61)
    assert resume(checkpoint(), printer(gcode_state="PAUSE")) == ContinueSameJob(24, 61, paused=True)


def test_a_job_still_preparing_takes_no_layer_from_the_last_print() -> None:
    job = checkpoint(last_layer=None, last_percent=None, billing=BillingCheckpoint())
    assert resume(job, printer(gcode_state="PREPARE", layer_num=50, mc_percent=100)) == (
        ContinueSameJob(None, None)
    )


def test_an_ended_print_that_only_the_name_ties_to_an_unstarted_job_is_not_settled() -> None:
    # Announced, then Layerwise went down before the first layer; the printer shows a
    # FINISH of the same file: maybe the previous print. Never risk billing twice.
    job = checkpoint(last_layer=None, last_percent=None, billing=BillingCheckpoint())
    assert resume(job, printer(gcode_state="FINISH", layer_num=50)) == CloseAndStartNew(start_new=False)
    cloud = replace(job, key=JobKey("Cube", 1, "7", "8"))
    assert resume(cloud, printer(gcode_state="FINISH", layer_num=50, task_id="7", subtask_id="8")) == (
        SettleEndedJob("finished", 50, 61)
    )


def test_the_same_file_behind_the_checkpoint_is_a_new_print() -> None:
    assert resume(checkpoint(), printer(layer_num=2)) == CloseAndStartNew(start_new=True)


def test_a_print_that_finished_while_down_bills_all() -> None:
    assert resume(checkpoint(), printer(gcode_state="FINISH", layer_num=50, mc_percent=100)) == (
        SettleEndedJob("finished", 50, 100)
    )


def test_a_print_that_failed_while_down_bills_through_the_last_known_layer() -> None:
    assert resume(checkpoint(), printer(gcode_state="FAILED", layer_num=31, mc_percent=70)) == (
        SettleEndedJob("failed", 31, 70)
    )
    cancelled = printer(gcode_state="FAILED", layer_num=31, mc_percent=70, print_error=50348044)
    assert resume(checkpoint(), cancelled) == SettleEndedJob("cancelled", 31, 70)
    # The printer's layer went away (or back): what the checkpoint knows stands.
    assert resume(checkpoint(), printer(gcode_state="FAILED", layer_num=0)) == (
        SettleEndedJob("failed", 20, 55)
    )


def test_another_print_closes_the_old_job_and_starts_the_new_one() -> None:
    other = printer(subtask_name="Vase.3mf", gcode_file="Vase.3mf", layer_num=4)
    assert resume(checkpoint(), other) == CloseAndStartNew(start_new=True)
    assert resume(checkpoint(), printer(subtask_name="Vase.3mf", gcode_state="FINISH")) == (
        CloseAndStartNew(start_new=False)
    )


def test_a_rebooted_printer_closes_the_job_as_ended_while_offline() -> None:
    decision = resume(checkpoint(), printer(gcode_state="IDLE", subtask_name="", gcode_file="", layer_num=0))
    assert decision == CloseAndStartNew(start_new=False)
    assert decision.reason == "ended while offline"


def test_cloud_task_ids_decide_identity() -> None:
    job = checkpoint(key=JobKey("Cube", 1, "7", "8"))
    assert resume(job, printer(task_id="7", subtask_id="8")) == ContinueSameJob(24, 61)
    assert resume(job, printer(task_id="9", subtask_id="10")) == CloseAndStartNew(start_new=True)
