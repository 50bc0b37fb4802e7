"""Slicer filament → tray: stated by the echo or the printer, else learned from tray reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from snapshots import snap

from server.jobs.lifecycle import reported_mapping
from server.jobs.mapping import MappingLearner
from server.printer.snapshot import project_file
from tests.billing.test_billing_fake_analysis import FakeToolChange

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mqtt-captures"


def capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text(encoding="utf-8"))["print"]


def known_mapping(echo: dict[str, Any] | None, state: dict[str, Any] | None) -> dict[int, int]:
    """The mapping stated outright: the echo's (``ProjectFile.mapping``), else the printer's report."""
    if echo is not None:
        stated = project_file(echo, state)
        assert stated is not None
        return stated.mapping
    return reported_mapping(snap(state))


def active_trays(state: dict[str, Any]) -> tuple[int | None, int | None]:
    shot = snap(state)
    return shot.active_tray, shot.loading_tray


# ---- stated mappings -----------------------------------------------------------------------------------


def test_ams_mapping_of_the_echo() -> None:
    echo = {"command": "project_file", "ams_mapping": [-1, 7, 1], "use_ams": True}
    assert known_mapping(echo, None) == {1: 7, 2: 1}


def test_ams_mapping2_wins_and_names_the_external_spool() -> None:
    echo = {
        "ams_mapping": [3, -1, 255],
        "ams_mapping2": [{"ams_id": 0, "slot_id": 3}, {"ams_id": 255, "slot_id": 0}, {"ams_id": 255, "slot_id": 255}],
    }
    assert known_mapping(echo, None) == {0: 3, 1: 255}


def test_ams_ht_units_are_their_own_tray() -> None:
    assert known_mapping({"ams_mapping2": [{"ams_id": 128, "slot_id": 0}]}, None) == {0: 128}


def test_an_echo_wrapped_in_print_is_read_too() -> None:
    assert known_mapping({"print": {"command": "project_file", "ams_mapping": [2]}}, None) == {0: 2}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("push_status_full_H2D_RUNNING_local_rfid_vir_slot.json", {0: 7}),  # 259 = unit 1, slot 3
        ("push_status_full_H2D_diag.json", {0: 128}),  # 0x8000 = AMS HT 128
        ("push_status_full_H2D_RUNNING_cloud_extspool_active_AMSHT128_129.json", {0: 255}),  # 0xFF00
        ("push_status_full_P2S_RUNNING_local_rfid.json", {0: 3}),
        ("push_status_full_A2L_IDLE_amslite_id16.json", {}),  # all 65535: nothing mapped
        ("push_status_full_A1_IDLE_amslite_vt_tray254.json", {}),  # no report at all
    ],
)
def test_the_printers_own_mapping_report(name: str, expected: dict[int, int]) -> None:
    assert known_mapping(None, capture(name)) == expected


def test_the_external_spool_is_named_as_the_printers_tray_model_names_it() -> None:
    a1 = capture("push_status_full_A1_IDLE_amslite_vt_tray254.json")  # its only holder is 254
    echo = {"ams_mapping2": [{"ams_id": 255, "slot_id": 0}, {"ams_id": 0, "slot_id": 1}]}
    assert known_mapping(echo, a1) == {0: 254, 1: 1}
    assert active_trays({**a1, "ams": {**a1["ams"], "tray_now": "255", "tray_tar": "255"}}) == (None, None)


def test_an_echo_without_a_mapping_states_none_even_if_the_printer_kept_one() -> None:
    assert known_mapping({"command": "project_file", "use_ams": False}, {"mapping": [3]}) == {}


def test_the_echo_wins_over_the_printer_report() -> None:
    assert known_mapping({"ams_mapping": [1]}, {"mapping": [3]}) == {0: 1}


# ---- active tray --------------------------------------------------------------------------------------


def test_active_trays_of_an_a1_mid_change() -> None:
    assert active_trays({"ams": {"tray_now": "255", "tray_tar": "2"}}) == (None, 2)
    assert active_trays({"ams": {"tray_now": "2", "tray_tar": "2"}}) == (2, 2)
    assert active_trays({"ams": {"tray_now": "255", "tray_tar": "255"}}) == (None, None)


def test_active_trays_external_and_ams_ht() -> None:
    assert active_trays(capture("push_status_full_P1P_noAMS_FINISH_tray_now254.json"))[0] == 254
    assert active_trays(capture("push_status_full_MISC_RUNNING_AMSHT_only_tray_now128.json")) == (128, 128)


def test_active_trays_from_the_extruder_on_dual_nozzle_printers() -> None:
    # ams.tray_now says 0 here, but the active extruder feeds from unit 1 slot 3.
    assert active_trays(capture("push_status_full_H2D_RUNNING_local_rfid_vir_slot.json")) == (7, None)


# ---- learning -------------------------------------------------------------------------------------------


def changes(*pairs: tuple[int, int]) -> MappingLearner:
    return MappingLearner.for_changes([FakeToolChange(layer, filament) for layer, filament in pairs])


def feed(learner: MappingLearner, *observations: tuple[int | None, int | None, int | None]) -> MappingLearner:
    for layer, now, tar in observations:
        learner = learner.observe(layer, now, tar)
    return learner


# What the A1 sends for a change from tray 3 to tray 0 at layer 8: target first,
# then "nothing loaded" while it unloads, then the new tray.
A1_PRELUDE_LOAD = [(None, None, None), (0, None, 3), (0, 3, 3)]
A1_CHANGE_AT_8 = [(8, 3, 0), (8, None, 0), (8, 0, 0), (9, 0, 0)]


def test_the_first_filament_is_learned_from_the_prelude_load() -> None:
    learner = feed(changes((0, 0), (8, 1)), *A1_PRELUDE_LOAD)
    assert learner.mapping() == {0: 3}


def test_each_change_teaches_its_filament_once() -> None:
    learner = feed(changes((0, 0), (8, 1), (13, 0)), *A1_PRELUDE_LOAD, *A1_CHANGE_AT_8, (13, 0, 3), (13, 3, 3))
    assert learner.mapping() == {0: 3, 1: 0}
    assert learner.conflicts == ()


def test_a_change_reported_one_layer_early_or_late_still_matches() -> None:
    learner = feed(changes((0, 0), (8, 1)), *A1_PRELUDE_LOAD, (7, 3, 0))
    assert learner.mapping() == {0: 3, 1: 0}
    learner = feed(changes((0, 0), (8, 1)), *A1_PRELUDE_LOAD, (9, 3, 0))
    assert learner.mapping() == {0: 3, 1: 0}


def test_the_end_of_print_unload_teaches_nothing() -> None:
    learner = feed(changes((0, 0)), *A1_PRELUDE_LOAD, (50, 3, None), (50, None, None))
    assert learner.mapping() == {0: 3}


def test_the_tray_loaded_when_the_job_starts_is_not_evidence() -> None:
    # An X1 keeps the last print's filament loaded; the new print's own load follows.
    learner = feed(changes((0, 0)), (None, 6, 6), (0, 6, 6), (0, 6, 2), (0, 2, 2))
    assert learner.mapping() == {0: 2}


def test_a_single_filament_print_learns_its_tray_without_a_layer() -> None:
    learner = feed(changes((0, 0)), (None, None, None), (None, None, 3))
    assert learner.mapping() == {0: 3}


def test_a_single_filament_print_picked_up_mid_print_learns_its_loaded_tray() -> None:
    learner = feed(changes((0, 0)), (12, 3, 3), (13, 3, 3))
    assert learner.mapping() == {0: 3}
    # Right at the load the tray may still be the last print's: no conclusion yet.
    assert feed(changes((0, 0)), (None, 6, 6), (1, 6, 6)).mapping() == {}


def test_a_multi_filament_print_picked_up_mid_print_waits_for_a_change() -> None:
    learner = feed(changes((0, 0), (8, 1)), (12, 0, 0), (13, 0, 0))
    assert learner.mapping() == {}
    assert feed(learner, (13, 0, 3), (13, 3, 3)).mapping() == {}  # no change of the analysis at 13
    assert feed(changes((0, 0), (8, 1), (14, 0)), (12, 0, 0), (14, 0, 3), (14, 3, 3)).mapping() == {0: 3}


def test_a_print_picked_up_mid_print_learns_from_changes_in_consecutive_layers() -> None:
    # Found by bench.faults (seed 1, run 14): Layerwise killed as the 4-colour print started and back
    # at layer 62; from layer 84 the file changes filament every layer, so each load fits two changes
    # of the one-layer window and the whole print stayed waiting for its trays. The changes before the
    # job was picked up are history: the first load seen is the next change in print order.
    alternating = [(0, 0), *((layer, (layer - 83) % 2) for layer in range(84, 100))]
    learner = feed(changes(*alternating), (62, 0, 0), (63, 0, 0), (84, 0, 1), (84, 1, 1), (85, 1, 0), (85, 0, 0))
    assert learner.mapping() == {1: 1, 0: 0}
    assert learner.conflicts == ()
    # The same when the file is analysed only after the first loads were seen.
    pending = feed(MappingLearner(), (62, 0, 0), (84, 0, 1), (84, 1, 1), (85, 1, 0), (85, 0, 0))
    late = pending.with_changes([FakeToolChange(layer, filament) for layer, filament in alternating])
    assert late.mapping() == {1: 1, 0: 0}


def test_after_a_restart_the_learner_takes_a_new_baseline() -> None:
    # The tray loaded when Layerwise is back feeds the filament printing (loads while it was down went
    # unseen): it is no change. Away from any change the next loads teach in print order; amid
    # changes in consecutive layers nothing is learned rather than guessed (a person picks the tray).
    plan = [(0, 0), (84, 1), (85, 0), (140, 2), (141, 9), (142, 2), (143, 9)]
    learner = feed(changes(*plan), (62, 0, 0), (84, 0, 1), (84, 1, 1), (85, 1, 0), (85, 0, 0))
    assert learner.mapping() == {1: 1, 0: 0}
    back = feed(learner.after_gap(), (120, 0, 0), (140, 0, 2), (140, 2, 2), (141, 2, 3), (141, 3, 3))
    assert back.mapping() == {1: 1, 0: 0, 2: 2, 9: 3}
    assert back.conflicts == ()
    assert feed(learner.after_gap(), (141, 3, 3), (142, 3, 2), (142, 2, 2)).mapping() == {1: 1, 0: 0}
    # Without a new baseline the tray loaded at the restart would read as a change.
    assert feed(learner, (140, 3, 3)).mapping() == {1: 1, 0: 0, 2: 3}


def test_a_multi_filament_print_learns_nothing_without_a_layer() -> None:
    learner = feed(changes((0, 0), (8, 1)), (None, None, None), (None, None, 3))
    assert learner.mapping() == {}


def test_a_tray_move_away_from_any_change_teaches_nothing() -> None:
    learner = feed(changes((0, 0), (20, 1)), *A1_PRELUDE_LOAD, (10, 3, 1), (10, 1, 1))
    assert learner.mapping() == {0: 3}


def test_a_lost_change_is_skipped_not_misattributed() -> None:
    # The change at 8 was never seen; the one at 26 must still go to filament 3.
    learner = feed(changes((0, 0), (8, 1), (26, 3)), *A1_PRELUDE_LOAD, (26, 3, 1), (26, 1, 1))
    assert learner.mapping() == {0: 3, 3: 1}


def test_two_changes_in_one_layer_are_told_apart_by_order() -> None:
    learner = feed(changes((0, 0), (5, 1), (5, 2)), *A1_PRELUDE_LOAD, (5, 3, 0), (5, 0, 0), (5, 0, 6), (5, 6, 6))
    assert learner.mapping() == {0: 3, 1: 0, 2: 6}


def test_a_second_tray_for_a_filament_is_kept_as_a_conflict() -> None:
    learner = feed(changes((0, 0), (8, 1), (13, 0)), *A1_PRELUDE_LOAD, *A1_CHANGE_AT_8, (13, 0, 5), (13, 5, 5))
    assert learner.mapping() == {0: 3, 1: 0}
    assert learner.conflicts == ((0, 3, 5),)


def test_a_change_to_the_filament_already_loaded_is_no_change() -> None:
    learner = changes((0, 0), (0, 0), (8, 1))
    assert learner.changes == ((0, 0), (8, 1))


def test_loads_seen_while_the_file_downloads_are_matched_once_the_analysis_is_known() -> None:
    early = feed(MappingLearner(), *A1_PRELUDE_LOAD, *A1_CHANGE_AT_8)
    assert early.mapping() == {} and len(early.pending) == 2
    learner = early.with_changes([FakeToolChange(0, 0), FakeToolChange(8, 1), FakeToolChange(13, 0)])
    assert learner.mapping() == {0: 3, 1: 0}
    assert learner.pending == ()
    assert feed(learner, (13, 0, 3), (13, 3, 3)).next_change == 3
    assert learner.with_changes([FakeToolChange(0, 5)]) == learner  # known once, kept


@pytest.mark.parametrize("known", [True, False])
def test_the_learner_round_trips_through_a_dict(known: bool) -> None:
    start = changes((0, 0), (8, 1), (13, 0)) if known else MappingLearner()
    learner = feed(start, *A1_PRELUDE_LOAD, *A1_CHANGE_AT_8)
    assert MappingLearner.from_dict(json.loads(json.dumps(learner.to_dict()))) == learner


def test_a_first_filament_left_loaded_by_the_last_print_is_learned_at_the_next_change() -> None:
    # The job starts with tray 2 already loaded, so its first load moves nothing; at the change in
    # layer 10 the tray that fed layers 1-9 is known to be the first filament's.
    learner = feed(changes((0, 0), (10, 1)), (None, 2, 2), (1, 2, 2), (5, 2, 2), (10, 2, 5), (10, 5, 5))
    assert learner.mapping() == {0: 2, 1: 5}
    # Picked up mid-print (the baseline is past the first change), the loaded tray proves nothing.
    picked_up = feed(changes((0, 0), (10, 1)), (6, 2, 2), (7, 2, 2), (10, 2, 5), (10, 5, 5))
    assert picked_up.mapping() == {1: 5}
