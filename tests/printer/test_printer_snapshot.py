"""The printer snapshot: one typed reading of a merged state, made once per report.

Checked on every real capture, and on hand-written deltas for what the captures lack (a cloud task id,
an external spool loading, a print command's mapping).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from printer_captures import CAPTURES, load_capture

from server.printer.snapshot import BLANK, PrinterSnapshot, ProjectFile, Reported, project_file, snapshot
from server.printer.state import clean_report, merge_clean, report_body
from server.printer.trays import printer_view

FULL_REPORTS = sorted(p.name for p in Path(CAPTURES).glob("push_status_full_*.json"))


def _state(*reports: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for report in reports:
        body, problems = clean_report(report_body(report))
        state = merge_clean(state, body, problems)
    return state


@pytest.mark.parametrize("name", FULL_REPORTS)
def test_a_full_capture_reads_the_same_as_the_tray_view(name: str) -> None:
    capture = load_capture(name)
    state = _state(capture)
    shot = snapshot(state, report=report_body(capture))
    view = printer_view(state)
    assert shot.view == view
    assert shot.status.gcode_state == (view.gcode_state or "").upper()
    assert (shot.status.layer, shot.status.total_layers, shot.status.percent) == (
        view.layer_num, view.total_layer_num, view.mc_percent)
    assert shot.status.print_error == view.print_error
    assert shot.active_tray == view.active_tray
    # A full report carries every print field it has: each is "reported".
    assert {"gcode_state", "layer_num", "mc_percent"} <= shot.reported


def test_a_delta_reports_only_its_own_fields_and_keeps_the_rest() -> None:
    state = _state(load_capture("push_status_full_X1C_3xAMS_1xAMSHT_rfid_FINISH.json"))
    delta = {"print": {"command": "push_status", "msg": 1, "layer_num": 7, "mc_percent": 12}}
    body, problems = clean_report(report_body(delta))
    merged = merge_clean(state, body, problems)
    shot = snapshot(merged, report=body)
    assert shot.reported == {"layer_num", "mc_percent"}
    assert (shot.status.layer, shot.status.percent) == (7, 12)
    assert shot.status.gcode_state == "FINISH"  # from the state, not news


def test_lan_task_ids_identify_nothing_and_cloud_ones_do() -> None:
    lan = snapshot({"gcode_state": "running", "task_id": "0", "subtask_id": 0, "gcode_file": "Metadata/plate_3.gcode"})
    assert (lan.status.task_id, lan.status.subtask_id) == (None, None)
    assert lan.status.gcode_state == "RUNNING" and lan.status.active and lan.status.plate == 3
    cloud = snapshot({"gcode_state": "FINISH", "task_id": 123456, "subtask_id": "987"})
    assert (cloud.status.task_id, cloud.status.subtask_id) == ("123456", "987")
    assert not cloud.status.active


def test_the_tray_being_loaded_is_read_except_where_it_is_stale() -> None:
    ams = {"ams": [{"id": "0", "tray": [{"id": str(i), "tray_type": "PLA"} for i in range(4)]}],
           "tray_now": "1", "tray_tar": "2"}
    shot = snapshot({"ams": ams})
    assert (shot.active_tray, shot.loading_tray, shot.reports_extruders) == (1, 2, False)
    nothing = snapshot({"ams": {**ams, "tray_tar": "255"}})
    assert nothing.loading_tray is None
    extruder = {"state": 0x0, "info": [{"id": 0, "snow": 0x0001}]}
    h2 = snapshot({"ams": ams, "device": {"extruder": extruder}})
    assert h2.reports_extruders and h2.loading_tray is None


def test_the_lone_external_spool_is_named_the_same_by_every_id() -> None:
    # Older firmware ids the only external spool 254, newer 255; `mapping` packs unit << 8 | slot.
    state = {"vt_tray": {"id": "254", "tray_type": "PETG"}, "ams": {"tray_now": "255", "tray_tar": "255"},
             "mapping": [255 << 8]}
    shot = snapshot(state)
    external = shot.view.external[0].global_index
    assert shot.reported_mapping == (external,)
    loading = snapshot({**state, "ams": {"tray_now": "254", "tray_tar": "254"}})  # 255 in tray_tar: none
    assert loading.active_tray == loading.loading_tray == external


def test_the_print_command_states_its_mapping_apart_from_the_printers_report() -> None:
    state = {"mapping": [3, 2]}
    echo = {"print": {"command": "project_file", "url": "ftp:///cube.gcode.3mf", "param": "Metadata/plate_2.gcode",
                      "subtask_name": "cube", "task_id": "0", "ams_mapping": [0, 1]}}
    job = project_file(echo, state)
    assert job == ProjectFile(file="ftp:///cube.gcode.3mf", subtask_name="cube", plate=2, task_id=None,
                              subtask_id=None, mapping={0: 0, 1: 1}, name="cube")
    shot = snapshot(state, echo=report_body(echo))
    assert shot.view.job_mapping == [0, 1]  # the job's, for the pages
    assert shot.reported_mapping == (3, 2)  # the printer's own
    assert project_file({"print": {"command": "pushall"}}) is None
    assert project_file({"print": {"command": "project_file", "file": "a.3mf"}}).mapping == {}  # type: ignore[union-attr]


def test_reported_gathers_what_deltas_named_with_their_latest_values() -> None:
    first = {"gcode_state": "RUNNING", "layer_num": 12}
    second = {"layer_num": 13, "subtask_name": "Cube", "task_id": "0"}  # "0": a LAN print, no task id
    state = _state(first)
    seen = Reported().add(snapshot(state, report=first))
    seen = seen.add(snapshot(_state(first, second), report=second))
    seen = seen.add(snapshot(_state(first, second)))  # an echo's snapshot reports nothing of its own
    assert seen.fields == {"gcode_state", "layer_num", "subtask_name", "task_id"}
    assert (seen.status.gcode_state, seen.status.layer, seen.status.subtask_name) == ("RUNNING", 13, "Cube")
    assert seen.status.task_id is None and seen.status.percent is None  # never reported: unset
    assert BLANK.reported == frozenset() and BLANK.status.gcode_state == "" and BLANK.trays == []


def test_a_snapshot_is_immutable() -> None:
    shot = snapshot({})
    assert isinstance(shot, PrinterSnapshot) and shot.status.gcode_state == "" and shot.reported == frozenset()
    with pytest.raises(dataclasses.FrozenInstanceError):
        shot.loading_tray = 3  # type: ignore[misc]


_JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3), max_leaves=12)


@given(st.dictionaries(st.sampled_from(["gcode_state", "layer_num", "mc_percent", "task_id", "subtask_name",
                                        "gcode_file", "print_error", "mapping", "ams", "vt_tray", "device"]),
                       _JUNK, max_size=8))
def test_any_cleaned_report_makes_a_snapshot(report: dict[str, Any]) -> None:
    body, problems = clean_report(report)
    shot = snapshot(merge_clean({}, body, problems), report=body)
    assert shot.reported <= set(report)
    assert shot.status.layer is None or isinstance(shot.status.layer, int)


def test_auto_refill_is_bit_10_of_home_flag() -> None:
    """The AMS backup setting ("auto refill"), as Bambu Studio reads it (``ams_auto_switch_filament_flag``)."""
    capture = load_capture("push_status_full_X1C_3xAMS_1xAMSHT_rfid_FINISH.json")  # home_flag -1067070064
    state = _state(capture)
    assert snapshot(state).auto_refill is True
    assert snapshot({**state, "home_flag": -1067070064 & ~(1 << 10)}).auto_refill is False
    assert snapshot({k: v for k, v in state.items() if k != "home_flag"}).auto_refill is None
