"""The tray model derived from every real capture, with expected values read from each file."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from printer_captures import CAPTURES, load_capture

from server.printer.state import merge_report
from server.printer.trays import PrinterView, printer_view


@dataclass
class Expected:
    units: dict[int, str]  # unit id -> kind
    present: list[int]  # global indexes of occupied AMS slots
    empty: list[int]
    external: dict[int, str | None]  # external id -> material (None when empty)
    active: int | None
    mapping: list[int | None]
    tags: dict[int, str] = field(default_factory=dict)  # global index -> tag_uid
    gcode_state: str | None = None
    layers: tuple[int, int] | None = None


EXPECTED: dict[str, Expected] = {
    # A1, AMS Lite (ams_f1/0), no info bits, no tray state; vt_tray id 254; idle.
    "A1_IDLE_amslite_vt_tray254": Expected(
        units={0: "ams_lite"}, present=[0, 1, 2, 3], empty=[], external={254: "PLA"}, active=None,
        mapping=[], gcode_state="IDLE", layers=(0, 0)),
    # A2L: AMS Lite reported as unit 16 (info 30001005); only slot 1 loaded (state 3, exist bit 25);
    # 32 unmapped entries in `mapping`.
    "A2L_IDLE_amslite_id16": Expected(
        units={16: "ams_lite"}, present=[25], empty=[24, 26, 27], external={255: None}, active=None,
        mapping=[None] * 32, gcode_state="IDLE"),
    # H2D: AMS 2 Pro 0 and 3, AMS 1 and 2, AMS HT 128 and 129; the right external spool (snow 0xFF00) feeds.
    "H2D_RUNNING_cloud_extspool_active_AMSHT128_129": Expected(
        units={0: "ams_2_pro", 1: "ams", 2: "ams", 3: "ams_2_pro", 128: "ams_ht", 129: "ams_ht"},
        present=[0, 2, 3, 5, 6, 7, 8, 9, 11, 12, 13, 15, 128, 129], empty=[1, 4, 10, 14],
        external={254: "PLA", 255: "TPU"}, active=255, mapping=[255],
        tags={5: "1C247B9600000100", 7: "B09FAC2E00000100", 9: "527C4B7400000100", 12: "A0C9C95D00000100"},
        gcode_state="RUNNING", layers=(983, 1525)),
    # H2D with two AMS 2 Pro and RFID everywhere; snow 259 = unit 1 slot 3 (tray_now "3" is per extruder).
    "H2D_RUNNING_local_rfid_vir_slot": Expected(
        units={0: "ams_2_pro", 1: "ams_2_pro"}, present=list(range(8)), empty=[],
        external={254: None, 255: None}, active=7, mapping=[7],
        tags={0: "0C047A9600000100", 7: "0A4670E100000100"}, gcode_state="RUNNING", layers=(1, 200)),
    # H2D: AMS 0 and AMS HT 128 feeding (snow 0x8000, mapping 32768).
    "H2D_diag": Expected(
        units={0: "ams", 128: "ams_ht"}, present=[0, 1, 2, 3, 128], empty=[], external={254: None, 255: None},
        active=128, mapping=[128], tags={128: "F4F3460100000100"}, gcode_state="RUNNING", layers=(0, 26)),
    # H2S: one AMS 2 Pro, slot 0 loaded (state 11), slot 1 state 8 and slots 2-3 state 0 sent as {id, state}.
    "H2S_RUNNING_cloud": Expected(
        units={0: "ams_2_pro"}, present=[0], empty=[1, 2, 3], external={255: None}, active=0, mapping=[0],
        gcode_state="RUNNING", layers=(24, 75)),
    # Only an AMS HT (id 128, no info bits, exist bits by list position); tray_now 128.
    "MISC_RUNNING_AMSHT_only_tray_now128": Expected(
        units={128: "ams_ht"}, present=[128], empty=[], external={254: "PLA"}, active=128, mapping=[],
        tags={128: "DAE3707400000100"}, gcode_state="RUNNING", layers=(2, 37)),
    # P1P with an AMS (ams/0 from get_version), trays without state; tray_now 0.
    "P1P_msg0_FAILED_amsstatus_vt_tray": Expected(
        units={0: "ams"}, present=[0, 1, 2, 3], empty=[], external={254: "PLA"}, active=0, mapping=[],
        gcode_state="FAILED", layers=(1, 70)),
    # P1P without AMS printing from the external spool (tray_now 254).
    "P1P_noAMS_FINISH_tray_now254": Expected(
        units={}, present=[], empty=[], external={254: "PETG"}, active=254, mapping=[],
        gcode_state="FINISH", layers=(124, 124)),
    # P2S: AMS 2 Pro (info 1003), snow 3.
    "P2S_RUNNING_local_rfid": Expected(
        units={0: "ams_2_pro"}, present=[0, 1, 2, 3], empty=[], external={255: None}, active=3, mapping=[3],
        tags={0: "8A41A5A600000100", 1: "6AB846EA00000100"}, gcode_state="RUNNING", layers=(170, 305)),
    # X1C: AMS 0-1, AMS 2 Pro 2 (slot 0 empty), AMS HT 128; idle after the print; mapping 258 = unit 1 slot 2.
    "X1C_2xAMS_1xAMS2Pro_1xAMSHT_tray_state": Expected(
        units={0: "ams", 1: "ams", 2: "ams_2_pro", 128: "ams_ht"},
        present=[0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 128], empty=[8], external={255: None}, active=None,
        mapping=[6], tags={0: "DE6CF07300000100", 128: "9A7233A600000100"},
        gcode_state="FINISH", layers=(480, 480)),
    "X1C_3xAMS_1xAMSHT_rfid_FINISH": Expected(
        units={0: "ams", 1: "ams", 2: "ams_2_pro", 128: "ams_ht"},
        present=[0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 128], empty=[8], external={255: None}, active=None,
        mapping=[6], tags={4: "5336A73600000100", 11: "B5D2D50C00000100"},
        gcode_state="FINISH", layers=(480, 480)),
}


def test_every_capture_has_expectations() -> None:
    names = {p.name.removeprefix("push_status_full_").removesuffix(".json")
             for p in CAPTURES.glob("push_status_full_*.json")}
    assert names == set(EXPECTED)


def _view(name: str, with_version: bool = True) -> PrinterView:
    state = merge_report({}, load_capture(f"push_status_full_{name}.json"))
    version = load_capture(f"get_version_{name}.json") if with_version else None
    return printer_view(state, version)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_tray_model(name: str) -> None:
    expected = EXPECTED[name]
    view = _view(name)
    assert {u.id: u.kind for u in view.units} == expected.units
    ams_trays = {t.global_index: t for u in view.units for t in u.trays}
    assert sorted(i for i, t in ams_trays.items() if t.present) == expected.present
    assert sorted(i for i, t in ams_trays.items() if not t.present) == expected.empty
    assert {t.global_index: t.material for t in view.external} == expected.external
    assert view.active_tray == expected.active
    assert [t.global_index for t in view.trays if t.active] == ([] if expected.active is None else [expected.active])
    assert view.job_mapping == expected.mapping
    for index, tag in expected.tags.items():
        tray = view.tray(index)
        assert tray is not None and tray.tag_uid == tag and tray.tray_uuid is not None
    assert view.gcode_state == expected.gcode_state
    if expected.layers is not None:
        assert (view.layer_num, view.total_layer_num) == expected.layers


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_empty_slots_carry_no_filament_data(name: str) -> None:
    for tray in _view(name).trays:
        if not tray.present:
            assert (tray.material, tray.color_hex, tray.tag_uid, tray.remain_percent) == (None, None, None, None)


def test_untagged_trays_have_no_identity_and_unknown_remain() -> None:
    view = _view("H2D_RUNNING_cloud_extspool_active_AMSHT128_129")
    plain = view.tray(0)
    assert plain is not None and plain.tag_uid is None and plain.tray_uuid is None
    assert plain.remain_percent is None  # remain -1
    assert plain.weight_g is None and plain.diameter == 1.75 and plain.info_idx == "Pf13038b"
    tagged = view.tray(5)
    assert tagged is not None and tagged.remain_percent == 93 and tagged.weight_g == 1000
    assert tagged.name == "PLA Basic" and tagged.color_hex == "FF6A13FF"
    assert tagged.tray_uuid == "80D85868328144E287A60C1E3A28467E"


def test_units_report_environment_and_serial() -> None:
    view = _view("X1C_3xAMS_1xAMSHT_rfid_FINISH")
    pro = next(u for u in view.units if u.id == 2)
    assert (pro.humidity, pro.humidity_level, pro.temperature) == (9, 4, 65.0)
    assert pro.serial == "MOCK-X1CMULTIAMS-AMS2"
    lite = _view("A1_IDLE_amslite_vt_tray254").units[0]
    assert lite.temperature is None  # the AMS Lite has no sensor and reports 0.0


def test_kind_without_get_version_falls_back_to_info_bits_then_id() -> None:
    assert {u.id: u.kind for u in _view("H2D_diag", with_version=False).units} == {0: "ams", 128: "ams_ht"}
    # A1's AMS Lite sends no info bits in this capture: without get_version its kind is unknown.
    assert [u.kind for u in _view("A1_IDLE_amslite_vt_tray254", with_version=False).units] == ["unknown"]
    assert [u.kind for u in _view("A2L_IDLE_amslite_id16", with_version=False).units] == ["ams_lite"]
