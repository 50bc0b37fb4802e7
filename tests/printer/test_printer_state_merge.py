"""Merging full and delta push_status reports into one state."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from printer_captures import CAPTURES, load_capture

from server.printer.state import STATE_FIELDS, merge_report
from server.printer.trays import mapping_from, printer_view
from server.printer.values import OnceLog, StateReader, as_int

SEQUENCE = CAPTURES / "sequences" / "a1-fw01.07-Testqube_Multicolor_cloud.log"


def _messages() -> list[dict]:
    out = []
    for line in SEQUENCE.read_text("utf-8").splitlines():
        _, _, payload = line.partition(" :: ")
        out.append(json.loads(payload))
    return out


def test_delta_changes_only_what_it_names() -> None:
    full = load_capture("push_status_full_P1P_msg0_FAILED_amsstatus_vt_tray.json")
    state = merge_report({}, full)
    delta = {"print": {"command": "push_status", "msg": 1, "sequence_id": "694", "mc_percent": 42,
                       "bed_temper": 17.40625}}
    after = merge_report(state, delta)
    assert after["mc_percent"] == 42
    assert after["layer_num"] == 1 and after["gcode_state"] == "FAILED"  # untouched, not zeroed
    assert after["ams"] == state["ams"]
    assert "bed_temper" not in after  # nothing Layerwise reads: not kept (issue 9, item 12)
    assert state["mc_percent"] != 42  # the input state is not modified


def test_nested_delta_keeps_siblings() -> None:
    state = merge_report({}, load_capture("push_status_full_H2D_diag.json"))
    partial = load_capture("push_status_delta_examples.json")[
        "ha_bambulab_H2D_json_partial_messages (stored without command/msg keys in the fixture)"]
    after = merge_report(state, partial["push_left_extruder"])
    assert after["device"]["extruder"]["state"] == 274
    assert after["device"]["extruder"]["info"] == state["device"]["extruder"]["info"]
    after = merge_report(after, {"print": {"device": {"extruder": {"info": [{"id": 1, "snow": 258}]}}}})
    assert [e["snow"] for e in after["device"]["extruder"]["info"]] == [
        e["snow"] if e["id"] != 1 else 258 for e in state["device"]["extruder"]["info"]]
    after = merge_report(after, partial["push_alt_nozzle_info"])  # nothing read: no change
    assert after["device"] == merge_report(after, {"print": {}})["device"]


def test_trays_merge_by_id_and_a_bare_id_empties_the_slot() -> None:
    state = merge_report({}, {"print": {"msg": 0, "ams": {"tray_now": "1", "ams": [
        {"id": "0", "humidity": "3", "tray": [
            {"id": "0", "tray_type": "PLA", "tray_color": "FF0000FF", "remain": 80},
            {"id": "1", "tray_type": "PETG", "tray_color": "00FF00FF"}]}]}}})
    state = merge_report(state, {"print": {"msg": 1, "ams": {"ams": [
        {"id": "0", "tray": [{"id": "0", "remain": 79}, {"id": "1"}]}]}}})
    trays = state["ams"]["ams"][0]["tray"]
    assert trays[0] == {"id": "0", "tray_type": "PLA", "tray_color": "FF0000FF", "remain": 79}
    assert trays[1] == {"id": "1"}
    assert state["ams"]["tray_now"] == "1" and state["ams"]["ams"][0]["humidity"] == "3"


def test_full_report_drops_units_it_no_longer_lists() -> None:
    two = {"print": {"msg": 0, "ams": {"ams": [{"id": "0", "tray": []}, {"id": "128", "tray": []}]}}}
    one = {"print": {"msg": 0, "ams": {"ams": [{"id": "0", "tray": []}]}}}
    assert [u["id"] for u in merge_report(merge_report({}, two), one)["ams"]["ams"]] == ["0"]
    delta = {"print": {"msg": 1, "ams": {"ams": [{"id": "0", "humidity": "2"}]}}}
    assert [u["id"] for u in merge_report(merge_report({}, two), delta)["ams"]["ams"]] == ["0", "128"]


def test_unknown_fields_are_dropped_and_odd_types_are_missing(caplog: pytest.LogCaptureFixture) -> None:
    state = merge_report({}, {"print": {"msg": 0, "layer_num": 3, "future_field": {"x": [1, 2]}}})
    assert "future_field" not in state
    state = merge_report(state, {"print": {"msg": 1, "layer_num": "abc", "ams": "garbage"}})
    assert state["layer_num"] == 3  # a wrong type is treated as missing: the last value stays
    reader = StateReader(OnceLog("P1"))
    odd = {"layer_num": "abc"}  # states built elsewhere may still hold odd values: read as None
    with caplog.at_level(logging.WARNING):
        assert reader.int_at(odd, "layer_num") is None
        assert reader.int_at(odd, "layer_num") is None
        assert reader.int_at(odd, "missing") is None
    assert sum("layer_num" in r.getMessage() for r in caplog.records) == 1
    view = printer_view(state)
    assert view.units == [] and view.layer_num == 3


def test_real_a1_sequence_keeps_a_complete_state() -> None:
    messages = _messages()
    state: dict = {}
    saw_print_fields = set()
    active_trays = set()
    for message in messages:
        body = message.get("print", {})
        if body.get("command") != "push_status":
            continue
        state = merge_report(state, message)
        saw_print_fields |= set(body)
        view = printer_view(state)
        if view.gcode_state == "RUNNING" and view.active_tray is not None:
            active_trays.add(view.active_tray)
    # Every field Layerwise reads that was ever reported is still there: deltas never removed anything.
    assert saw_print_fields & set(STATE_FIELDS) <= set(state)
    view = printer_view(state)
    assert [t.global_index for t in view.units[0].trays if t.present] == [0, 1, 2, 3]
    assert view.gcode_state == "FINISH" and view.layer_num == view.total_layer_num
    project = next(m for m in messages if m.get("print", {}).get("command") == "project_file")
    expected = json.loads((CAPTURES / "sequences" / "a1-fw01.07-Testqube_Multicolor_cloud.expected.json")
                          .read_text("utf-8"))["expected_assignments"]
    mapping = printer_view(state, project_file=project).job_mapping
    assert {str(i): str(tray) for i, tray in enumerate(mapping)} == expected
    assert active_trays <= set(mapping)


def test_mapping_sources() -> None:
    assert mapping_from(ams_mapping=[3, 0, -1, 254, 128, 25]) == [3, 0, None, 254, 128, 25]
    assert mapping_from(ams_mapping=[-1, 7], ams_mapping2=[
        {"ams_id": 255, "slot_id": 0}, {"ams_id": 1, "slot_id": 3}, {"ams_id": 255, "slot_id": 255},
        {"ams_id": 129, "slot_id": 0}, {"ams_id": 16, "slot_id": 2}]) == [255, 7, None, 129, 26]
    assert mapping_from(mapping=[258, 32768, 65280, 65024, 65535, 0x10 << 8 | 1]) == [6, 128, 255, 254, None, 25]
    assert mapping_from(ams_mapping="", mapping=None) == []


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["id", "ams", "tray", "msg", "layer_num", "vt_tray", "device"]),
                        inner, max_size=4), max_leaves=12))
def test_merge_and_view_never_crash_on_arbitrary_reports(report: object) -> None:
    state = merge_report({}, load_capture("push_status_full_H2S_RUNNING_cloud.json"))
    if isinstance(report, dict):
        state = merge_report(state, report)
    printer_view(state)


def test_as_int() -> None:
    assert [as_int(v) for v in ("3", 3, 3.0, "x", None, True, 3.5)] == [3, 3, 3, None, None, None, None]
