"""The print lifecycle: the events derived from printer reports (the machine they drive:
test_machine.py)."""

from __future__ import annotations

from typing import Any

import pytest
from snapshots import events_between

from server.jobs.checkpoint import ENDED_OFFLINE, JobCheckpoint, JobKey
from server.jobs.lifecycle import (
    CancelConfirmed,
    Failed,
    Finished,
    JobChanged,
    JobStarted,
    LayerReached,
    MappingStated,
    Paused,
    Resumed,
)

# ---- events ---------------------------------------------------------------------------------------------

LAST_PRINT = {"gcode_state": "FINISH", "layer_num": 50, "mc_percent": 100, "subtask_name": "Old", "gcode_file": "",
              "task_id": "627521184", "subtask_id": "627521184", "print_error": 0}


def step(state: dict[str, Any], **delta: Any) -> dict[str, Any]:
    return {**state, **delta}


def open_job(name: str = "Cube", **changes: Any) -> JobCheckpoint:
    return JobCheckpoint(printer="a1", key=JobKey(name), lifecycle="running", **changes)


def test_a_lan_print_starts_on_leaving_idle_and_ignores_the_last_prints_layer() -> None:
    idle = step(LAST_PRINT, gcode_state="IDLE", subtask_name="Cube.3mf", gcode_file="Cube.3mf", task_id="0",
                subtask_id="0")
    assert events_between(None, LAST_PRINT, idle) == []
    prepare = step(idle, gcode_state="PREPARE")
    events = events_between(None, idle, prepare)
    assert events == [JobStarted(JobKey("Cube"), "Cube.3mf", "Cube.3mf", None, {}, announced=False)]
    job = open_job()
    running = step(prepare, gcode_state="RUNNING", layer_num=0, mc_percent=0)
    assert events_between(job, prepare, running) == [LayerReached(0, 0)]
    assert events_between(job, running, step(running, layer_num=1, mc_percent=37)) == [LayerReached(1, 37)]


def test_a_printer_that_already_showed_layer_0_still_tells_a_new_job_it_is_in_the_prelude() -> None:
    fresh = {"gcode_state": "IDLE", "layer_num": 0, "mc_percent": 0, "subtask_name": "Cube", "gcode_file": ""}
    prepare = step(fresh, gcode_state="PREPARE")
    assert [type(e) for e in events_between(None, fresh, prepare)] == [JobStarted]
    running = step(prepare, gcode_state="RUNNING")
    assert events_between(open_job(), prepare, running) == [LayerReached(0, 0)]
    assert events_between(open_job(last_layer=0), running, step(running, mc_percent=3)) == []


def test_a_job_picked_up_while_printing_takes_the_printers_layer_even_unchanged() -> None:
    # Layerwise restarted without a checkpoint; the persisted state already showed layer 20.
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=20, mc_percent=55, subtask_name="Cube")
    events = events_between(None, running, step(running, mc_percent=56))
    assert [type(e) for e in events] == [JobStarted, LayerReached]
    assert events[1] == LayerReached(20, 56)


def test_the_same_state_again_says_nothing() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=7, subtask_name="Cube")
    assert events_between(open_job(), running, dict(running)) == []


def test_a_cloud_print_starts_on_its_echo_with_the_mapping() -> None:
    echo = {"command": "project_file", "param": "Metadata/plate_2.gcode", "url": "https://cloud/x.3mf",
            "subtask_name": "Cube", "task_id": "7", "subtask_id": "8", "ams_mapping": [3, 0],
            "ams_mapping2": [{"ams_id": 0, "slot_id": 3}, {"ams_id": 0, "slot_id": 0}]}
    events = events_between(None, LAST_PRINT, LAST_PRINT, echo)
    assert events == [JobStarted(JobKey("Cube", 2, "7", "8"), "https://cloud/x.3mf", "Cube", 2, {0: 3, 1: 0},
                                 announced=True)]
    job = JobCheckpoint(printer="a1", key=JobKey("Cube", 2, "7", "8"), mapping={0: 3, 1: 0}, announced=True)
    # The echo again, and the printer's own reports of the same job, start nothing.
    assert events_between(job, LAST_PRINT, LAST_PRINT, echo) == []
    assert events_between(job, LAST_PRINT, step(LAST_PRINT, msg=1)) == []
    prepare = step(LAST_PRINT, gcode_state="PREPARE", subtask_name="Cube", gcode_file="Cube.3mf", task_id="7",
                   subtask_id="8")
    assert events_between(job, LAST_PRINT, prepare) == []


def test_pause_and_resume() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=13, subtask_name="Cube")
    paused = step(running, gcode_state="PAUSE", print_error=302022662)
    assert events_between(open_job(), running, paused) == [Paused(302022662)]
    assert events_between(open_job(), paused, step(paused, gcode_state="RUNNING", print_error=0)) == [Resumed()]


def test_finish() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=50, subtask_name="Cube")
    assert events_between(open_job(), running, step(running, gcode_state="FINISH")) == [Finished()]


@pytest.mark.parametrize(
    ("error", "cancelled"), [(50348044, True), (0x0500400E, True), (0x07008011, False), (0, False)]
)
def test_failed_or_cancelled(error: int, cancelled: bool) -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=12, mc_percent=40, subtask_name="Cube")
    failed = step(running, gcode_state="FAILED", print_error=error)
    job = open_job(last_layer=12, last_percent=35)
    assert events_between(job, running, failed) == [Failed(cancelled, 12, 40, error)]


def test_a_stop_reported_with_a_reset_layer_uses_what_the_job_saw() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=12, mc_percent=40, subtask_name="Cube")
    failed = step(running, gcode_state="FAILED", layer_num=0, mc_percent=0, print_error=50348044)
    assert events_between(open_job(last_layer=12, last_percent=35), running, failed) == [
        Failed(True, 12, 35, 50348044)
    ]


def test_a_stop_before_any_layer_trusts_no_stale_layer() -> None:
    # Started in PREPARE; the last print's layer 50 is still in the merged state.
    prepare = step(LAST_PRINT, gcode_state="PREPARE", subtask_name="Cube")
    failed = step(prepare, gcode_state="FAILED")
    assert events_between(open_job(), prepare, failed) == [Failed(False, None, None, 0)]


def test_an_announced_job_failing_before_it_began_ends() -> None:
    job = JobCheckpoint(printer="a1", key=JobKey("Cube", 1, "7", "8"), announced=True)
    failed = step(LAST_PRINT, gcode_state="FAILED", print_error=0x0500C010)
    assert events_between(job, LAST_PRINT, failed) == [Failed(False, None, None, 0x0500C010)]
    # The A1 may pass IDLE on the way to PREPARE: that is no end.
    assert events_between(job, LAST_PRINT, step(LAST_PRINT, gcode_state="IDLE")) == []


def test_a_cancel_code_sent_just_before_failed_counts() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=12, mc_percent=40, subtask_name="Cube",
                   print_error=50348044)
    failed = step(running, gcode_state="FAILED", print_error=0)
    assert events_between(open_job(last_layer=12), running, failed) == [Failed(True, 12, 40, 50348044)]


def test_a_cancel_code_arriving_after_failed_confirms_a_cancel() -> None:
    failed = step(LAST_PRINT, gcode_state="FAILED", layer_num=12, subtask_name="Cube", print_error=0)
    job = open_job(final_state="failed")
    assert events_between(job, failed, step(failed, print_error=50348044)) == [CancelConfirmed(50348044)]
    assert events_between(job, failed, step(failed, print_error=0x07008011)) == []
    assert events_between(open_job(final_state="finished"), failed, step(failed, print_error=50348044)) == []


def test_a_reboot_mid_job_ends_it_as_ended_while_offline() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=20, subtask_name="Cube")
    rebooted = step(running, gcode_state="IDLE", subtask_name="", layer_num=0)
    job = open_job(last_layer=20, last_percent=60)
    assert events_between(job, running, rebooted) == [Failed(False, 20, 60, None, ENDED_OFFLINE)]


def test_another_print_while_a_job_is_open_closes_it_and_starts_the_new_one() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=20, subtask_name="Cube", task_id="0", subtask_id="0")
    other = step(running, subtask_name="Vase.3mf", gcode_file="Vase.3mf", layer_num=3)
    job = open_job(last_layer=20, last_percent=60)
    assert events_between(job, running, other) == [
        JobChanged(JobKey("Cube")),
        Failed(False, 20, 60, None, ENDED_OFFLINE),
        JobStarted(JobKey("Vase"), "Vase.3mf", "Vase.3mf", None, {}, announced=False),
    ]


def test_a_stale_name_in_the_merged_state_does_not_replace_an_announced_job() -> None:
    # The echo said "Cube"; the delta carrying the new name was lost, the state still
    # shows the last print's name when RUNNING arrives.
    job = JobCheckpoint(printer="a1", key=JobKey("Cube", 1, "7", "8"), announced=True)
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=0, mc_percent=0)
    assert events_between(job, LAST_PRINT, running) == [LayerReached(0, 0)]


def test_a_job_already_printing_when_layerwise_starts_is_picked_up() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=20, mc_percent=55, subtask_name="Cube",
                   gcode_file="/data/Metadata/plate_3.gcode", task_id="0", subtask_id="0")
    assert events_between(None, {}, running) == [
        JobStarted(JobKey("Cube", 3), "/data/Metadata/plate_3.gcode", "Cube", 3, {}, announced=False),
        LayerReached(20, 55),
    ]


def test_a_finished_printer_at_startup_starts_nothing() -> None:
    assert events_between(None, {}, LAST_PRINT) == []


def test_the_printers_mapping_report_is_passed_on() -> None:
    running = step(LAST_PRINT, gcode_state="RUNNING", layer_num=2, subtask_name="Cube")
    reported = step(running, mapping=[259, 65535])
    assert events_between(open_job(), running, reported) == [MappingStated({0: 7})]
    stated = open_job(mapping={0: 7})
    assert events_between(stated, running, reported) == []


def test_reports_wrapped_in_print_are_read_too() -> None:
    running = {"print": step(LAST_PRINT, gcode_state="RUNNING", layer_num=5, subtask_name="Cube")}
    later = {"print": step(running["print"], layer_num=6)}
    assert events_between(open_job(), running, later) == [LayerReached(6, 100)]


def test_an_echo_after_the_reports_started_the_job_adds_its_mapping() -> None:
    job = open_job("Cube")
    echo = {"command": "project_file", "param": "Metadata/plate_1.gcode", "subtask_name": "Cube.3mf",
            "ams_mapping": [4]}
    running = step(LAST_PRINT, gcode_state="RUNNING", subtask_name="Cube.3mf")
    assert events_between(job, running, running, echo) == [MappingStated({0: 4})]
    assert events_between(open_job("Cube", mapping={0: 4}), running, running, echo) == []


def test_an_echo_for_another_print_replaces_the_open_job() -> None:
    job = open_job("Cube", last_layer=4, last_percent=9)
    echo = {"command": "project_file", "param": "Metadata/plate_1.gcode", "subtask_name": "Vase", "url": "ftp:///Vase.3mf"}
    events = events_between(job, LAST_PRINT, LAST_PRINT, echo)
    assert events == [
        JobChanged(JobKey("Cube")),
        Failed(False, 4, 9, None, ENDED_OFFLINE),
        JobStarted(JobKey("Vase", 1), "ftp:///Vase.3mf", "Vase", 1, {}, announced=True),
    ]


def test_a_job_started_from_reports_does_not_take_the_last_prints_mapping_report() -> None:
    idle = step(LAST_PRINT, gcode_state="IDLE", subtask_name="Cube.3mf", mapping=[258])
    events = events_between(None, idle, step(idle, gcode_state="PREPARE"))
    assert len(events) == 1 and isinstance(events[0], JobStarted) and events[0].mapping == {}
