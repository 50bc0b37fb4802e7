"""RFID matching decisions (server.slots.rfid): hand-made trays and the real captures."""

from __future__ import annotations

import json
from pathlib import Path

from server.printer.trays import AmsUnitView, PrinterView, TrayView, printer_view
from server.slots import rfid
from server.slots.rfid import (
    Assign,
    Conflict,
    Create,
    Held,
    NoChange,
    Options,
    TrayTag,
    Unassign,
    decide,
    decide_tray,
)

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mqtt-captures"
UUID_A = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
UUID_B = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
ON = Options(auto_assign=True, create_spools=False)
CREATE = Options(auto_assign=True, create_spools=True)


def tray(index: int = 0, *, present: bool = True, uuid: str | None = None, tag_uid: str | None = None,
         material: str | None = "PLA", color: str | None = "000000FF") -> TrayView:
    return TrayView(index, 0, index % 4, present, material=material if present else None,
                    color_hex=color if present else None, name="PLA Basic" if present else None,
                    tray_uuid=uuid, tag_uid=tag_uid, remain_percent=80 if present else None,
                    weight_g=1000 if present else None, diameter=1.75 if present else None)


def view(*trays: TrayView) -> PrinterView:
    return PrinterView(units=[AmsUnitView(0, "ams", None, None, None, list(trays))], external=[], active_tray=None)


def capture_view(name: str) -> PrinterView:
    return printer_view(json.loads((CAPTURES / name).read_text("utf-8"))["print"])


# ----- the tag ----------------------------------------------------------------------------------------

def test_tag_prefers_tray_uuid_then_tag_uid_upper_case() -> None:
    assert rfid.tray_tag(tray(uuid=UUID_A.lower(), tag_uid="1C247B9600000100")) == UUID_A
    assert rfid.tray_tag(tray(tag_uid="1c247b9600000100")) == "1C247B9600000100"
    assert rfid.tray_tag(tray()) is None


def test_capture_tags_key_on_tray_uuid_and_zeros_mean_no_tag() -> None:
    x1c = rfid.tags_of(capture_view("push_status_full_X1C_3xAMS_1xAMSHT_rfid_FINISH.json"))
    assert x1c[0] == TrayTag(True, "5F3D8925633343C29FB9A97FA9125971")
    assert x1c[128] == TrayTag(True, "3912400D8BFC4A4D9578E9E643162E10")
    a1 = rfid.tags_of(capture_view("push_status_full_A1_IDLE_amslite_vt_tray254.json"))
    assert all(t.tag is None for t in a1.values())  # third-party spools: all-zero tags


def test_first_view_of_a_capture_assigns_every_known_tag_and_leaves_the_rest() -> None:
    v = capture_view("push_status_full_H2D_RUNNING_cloud_extspool_active_AMSHT128_129.json")
    lookup = {"80D85868328144E287A60C1E3A28467E": 11, "ADDE8E219AE74B73A815197653BAF5F3": None,
              "0E580E25C3234CC9A2153D51FEC60E38": 12}
    actions = decide({}, v, {}, lookup, ON)
    assigns = [a for a in actions if isinstance(a, Assign)]
    assert [(a.tray, a.spool_id) for a in assigns] == [(5, 11), (9, 12)]
    assert NoChange(7, "tag unknown") in actions
    assert NoChange(12, "tag lookup pending", retry=True) in actions  # not looked up: retried
    assert NoChange(0, "no tag") in actions


# ----- appearing, changing, disappearing ----------------------------------------------------------

def test_only_changed_trays_are_decided() -> None:
    before = rfid.tags_of(view(tray(0, uuid=UUID_A), tray(1)))
    assert decide(before, view(tray(0, uuid=UUID_A), tray(1)), {}, {}, ON) == []
    assert rfid.changed_trays(before, view(tray(0, uuid=UUID_B), tray(1))) == [0]


def test_tag_appearing_assigns_its_spool() -> None:
    assert decide_tray(tray(uuid=UUID_A), TrayTag(False, None), None, {UUID_A: 1}, ON) == [Assign(0, 1, UUID_A)]


def test_tag_changing_replaces_the_old_spool() -> None:
    actions = decide_tray(tray(uuid=UUID_B), TrayTag(True, UUID_A), Held(1, "rfid"), {UUID_B: 2}, ON)
    assert actions == [Unassign(0, "tag changed"), Assign(0, 2, UUID_B)]


def test_tag_changing_to_an_unknown_one_leaves_the_tray_unassigned() -> None:
    actions = decide_tray(tray(uuid=UUID_B), TrayTag(True, UUID_A), Held(1, "rfid"), {UUID_B: None}, ON)
    assert actions == [Unassign(0, "tag changed"), NoChange(0, "tag unknown")]


def test_tag_changing_also_ends_a_manual_assignment_made_for_the_old_spool() -> None:
    actions = decide_tray(tray(uuid=UUID_B), TrayTag(True, UUID_A), Held(5, "manual"), {UUID_B: 2}, ON)
    assert actions == [Unassign(0, "tag changed"), Assign(0, 2, UUID_B)]


def test_untagged_spool_replacing_a_tagged_one_unassigns() -> None:
    actions = decide_tray(tray(), TrayTag(True, UUID_A), Held(1, "rfid"), {}, ON)
    assert actions == [Unassign(0, "tag changed")]


def test_emptied_tray_is_unassigned_whatever_the_source() -> None:
    for source in ("rfid", "manual", "env"):
        assert decide_tray(tray(present=False), TrayTag(True, UUID_A), Held(1, source), {}, ON) == [
            Unassign(0, "emptied")]
    assert decide_tray(tray(present=False), None, None, {}, ON) == [NoChange(0, "empty")]


def test_untagged_tray_keeps_its_manual_assignment() -> None:
    assert decide_tray(tray(), TrayTag(False, None), Held(3, "manual"), {}, ON) == [NoChange(0, "no tag")]


def test_rfid_assignment_without_its_tag_is_dropped_on_a_full_pass() -> None:
    assert decide_tray(tray(), None, Held(3, "rfid"), {}, ON) == [Unassign(0, "tag changed")]


def test_matched_tray_is_left_alone() -> None:
    assert decide_tray(tray(uuid=UUID_A), None, Held(1, "rfid"), {UUID_A: 1}, ON) == [NoChange(0, "matched")]
    assert decide_tray(tray(uuid=UUID_A), None, Held(1, "manual"), {UUID_A: 1}, ON) == [NoChange(0, "matched")]


def test_rfid_assignment_follows_a_tag_moved_to_another_spool() -> None:
    assert decide_tray(tray(uuid=UUID_A), None, Held(1, "rfid"), {UUID_A: 4}, ON) == [Assign(0, 4, UUID_A)]


# ----- manual assignments and conflicts -----------------------------------------------------------

def test_manual_assignment_is_never_overwritten_silently() -> None:
    for source in ("manual", "env"):
        actions = decide_tray(tray(uuid=UUID_A), TrayTag(True, None), Held(3, source), {UUID_A: 1}, ON)
        assert actions == [Conflict(0, UUID_A, 3, 1)]


def test_conflict_the_user_kept_is_not_raised_again() -> None:
    kept = {(0, UUID_A, 3)}
    assert decide_tray(tray(uuid=UUID_A), None, Held(3, "manual"), {UUID_A: 1}, ON, kept) == [
        NoChange(0, "user kept the manual assignment")]
    # ... but another spool assigned by hand, or another tag, is a new question
    assert decide_tray(tray(uuid=UUID_A), None, Held(4, "manual"), {UUID_A: 1}, ON, kept) == [
        Conflict(0, UUID_A, 4, 1)]


def test_unknown_tag_on_a_manual_assignment_is_left_for_tag_learning_not_creation() -> None:
    actions = decide_tray(tray(uuid=UUID_A), TrayTag(True, None), Held(3, "manual"), {UUID_A: None}, CREATE)
    assert actions == [NoChange(0, "tag unknown; assigned by hand")]


# ----- options --------------------------------------------------------------------------------------

def test_auto_assign_off_decides_nothing() -> None:
    off = Options(auto_assign=False, create_spools=True)
    assert decide_tray(tray(uuid=UUID_A), None, None, {UUID_A: 1}, off) == [NoChange(0, "auto-assign off")]


def test_create_spools_describes_the_filament_from_the_tray() -> None:
    [action] = decide_tray(tray(uuid=UUID_A, color="d3b7a7ff"), None, None, {UUID_A: None}, CREATE)
    assert isinstance(action, Create)
    assert action.tag == UUID_A
    assert action.spool == rfid.NewSpool("PLA", "D3B7A7", "PLA Basic", 1000.0, 1.75, 1.24)


def test_create_needs_a_material() -> None:
    assert decide_tray(tray(uuid=UUID_A, material=None), None, None, {UUID_A: None}, CREATE) == [
        NoChange(0, "tag unknown")]


def test_density_by_material_family() -> None:
    assert rfid.density_for("PETG") == 1.27
    assert rfid.density_for("PLA-S") == 1.24
    assert rfid.density_for("PA6-GF") == 1.14
    assert rfid.density_for("PAHT-CF") == 1.20
    assert rfid.density_for("PETG-CF") == 1.27
    assert rfid.density_for("UNOBTAINIUM") == rfid.DEFAULT_DENSITY
