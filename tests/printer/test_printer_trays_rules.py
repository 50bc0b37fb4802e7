"""Tray-model rules beyond what the captures show: the largest setups, extruders, index arithmetic."""

from __future__ import annotations

from typing import Any

import pytest
from printer_captures import load_capture

from server.printer.state import merge_report
from server.printer.trays import (
    decode_legacy,
    decode_packed,
    exist_bit,
    global_index,
    locate,
    printer_view,
    unit_kind,
)


def _tray(slot: int, material: str = "PLA", **extra: Any) -> dict[str, Any]:
    return {"id": str(slot), "tray_type": material, "tray_color": "FFFFFFFF", **extra}


def test_four_ams_and_eight_ams_ht_have_distinct_indexes() -> None:
    units = [{"id": str(u), "info": "1103", "tray": [_tray(s) for s in range(4)]} for u in range(4)]
    units += [{"id": str(u), "info": "2004", "tray": [_tray(0, "PA-CF")]} for u in range(128, 136)]
    view = printer_view({"ams": {"ams": units, "tray_exist_bits": "ffffff"}})
    indexes = [t.global_index for u in view.units for t in u.trays]
    assert indexes == [*range(16), *range(128, 136)]
    assert all(t.present for u in view.units for t in u.trays)
    assert [u.kind for u in view.units] == ["ams_2_pro"] * 4 + ["ams_ht"] * 8


def test_index_arithmetic_round_trips() -> None:
    for unit, slots in [*((u, range(4)) for u in range(4)), (16, range(4)), *((u, [0]) for u in range(128, 136))]:
        for slot in slots:
            index = global_index(unit, slot)
            assert index is not None and locate(index) == (unit, slot)
    assert global_index(4, 0) is None and global_index(128, 1) is None and global_index(0, 4) is None
    assert [exist_bit(0, 0), exist_bit(3, 3), exist_bit(128, 0), exist_bit(135, 0), exist_bit(16, 1)] == [
        0, 15, 16, 23, 25]


def test_packed_and_legacy_codes() -> None:
    assert [decode_packed(v) for v in (0, 3, 259, 0x8000, 0x8700, 0xFF00, 0xFE00, 0xFEFF, 0xFFFF, 0x1002)] == [
        0, 3, 7, 128, 135, 255, 254, None, None, 26]
    assert [decode_legacy(v) for v in (-1, 0, 15, 16, 24, 128, 136, 254, 255)] == [
        None, 0, 15, None, 24, 128, None, 254, 255]


def test_kind_sources_in_order() -> None:
    assert unit_kind(0, "1002", None) == "ams_lite"  # the A1 sequence's AMS Lite
    assert unit_kind(0, None, "ams_2_pro") == "ams_2_pro"
    assert unit_kind(0, "zz", None) == "unknown"
    assert unit_kind(130, None, None) == "ams_ht"


def test_left_extruder_active_on_h2d() -> None:
    state = merge_report({}, load_capture("push_status_full_H2D_RUNNING_local_rfid_vir_slot.json"))
    assert printer_view(state).active_tray == 7
    left = {"print": {"device": {"extruder": {"state": 0x12, "info": [{"id": 1, "snow": 0xFE00}]}}}}
    state = merge_report(state, left)
    assert state["device"]["extruder"]["info"][0]["snow"] == 259  # merged by id, right extruder kept
    view = printer_view(state)
    assert view.active_tray == 254  # the left external spool
    assert [t.global_index for t in view.trays if t.active] == [254]
    nothing = merge_report(state, {"print": {"device": {"extruder": {"info": [{"id": 1, "snow": 0xFEFF}]}}}})
    assert printer_view(nothing).active_tray is None


def test_tray_now_external_resolves_to_the_printers_only_external_spool() -> None:
    state = {"ams": {"tray_now": "254", "ams": []}, "vir_slot": [_tray(255, "PETG") | {"id": "255"}]}
    view = printer_view(state)
    assert view.active_tray == 255 and view.external[0].active
    mapped = printer_view(state, project_file={"print": {"ams_mapping": [254, -1]}})
    assert mapped.job_mapping == [255, None]


def test_tray_state_beats_stale_filament_data() -> None:
    state = merge_report({}, {"print": {"msg": 0, "ams": {"tray_exist_bits": "3", "ams": [
        {"id": "0", "info": "1001", "tray": [_tray(0, state=11), _tray(1, state=11)]}]}}})
    state = merge_report(state, {"print": {"msg": 1, "ams": {"ams": [{"id": "0", "tray": [
        {"id": "1", "state": 10}]}]}}})
    trays = printer_view(state).units[0].trays
    assert [t.present for t in trays] == [True, False]
    assert trays[1].material is None


def test_unknown_unit_ids_are_ignored() -> None:
    view = printer_view({"ams": {"ams": [{"id": "7", "tray": [_tray(0)]}, {"id": "x"}, "junk"]}})
    assert view.units == []


@pytest.mark.parametrize("remain", [-1, "-1"])
def test_remain_unknown(remain: object) -> None:
    view = printer_view({"ams": {"ams": [{"id": "0", "tray": [_tray(0, remain=remain)]}]}})
    assert view.units[0].trays[0].remain_percent is None
