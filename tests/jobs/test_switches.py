"""Mid-print tray switch detection (server.jobs.switches): hand-made report sequences and the real A1
four-colour sequences, whose normal filament changes must never look like switches."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from snapshots import snap

from server.analysis import analyze_file
from server.jobs.switches import TraySwitch, TraySwitchTracker
from server.printer.state import merge_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MAPPING = {0: 0, 1: 1}

Report = tuple[int, int | None, int | None]  # (layer, active tray, active filament)


def run(reports: Iterable[Report], mapping: dict[int, int] = MAPPING,
        tracker: TraySwitchTracker | None = None) -> tuple[TraySwitchTracker, list[TraySwitch]]:
    tracker = tracker or TraySwitchTracker.for_job(mapping.keys())
    found = []
    for layer, tray, filament in reports:
        tracker, switch = tracker.feed(layer, tray, mapping, filament)
        if switch is not None:
            found.append(switch)
    return tracker, found


def test_runout_to_an_unmapped_backup_tray_switches_from_the_layer_first_seen() -> None:
    reports = [(layer, 0, 0) for layer in range(1, 11)] + [(11, None, 0), (11, 2, 0), (11, 2, 0), (12, 2, 0)]
    tracker, found = run(reports)
    assert found == [TraySwitch(filament=0, old_tray=0, new_tray=2, from_layer=11)]
    assert tracker.mapping_at(10, MAPPING) == {0: 0, 1: 1}
    assert tracker.mapping_at(11, MAPPING) == {0: 2, 1: 1}
    assert tracker.current(MAPPING) == {0: 2, 1: 1}


def test_a_single_stray_report_is_not_a_switch() -> None:
    _, found = run([(5, 0, 0), (5, 2, 0), (5, 0, 0), (6, 2, 0), (6, None, 0), (6, 2, 0), (7, 0, 0)])
    assert found == []


def test_normal_filament_change_reported_before_the_analysis_moves_on_is_not_a_switch() -> None:
    # The printer loads tray 1 at the end of layer 7 and says so a few times while the analysis
    # (going by the reported layer) still names filament 0; from layer 8 it names filament 1.
    reports = [(7, 0, 0), (7, None, 0), (7, 1, 0), (7, 1, 0), (7, 1, 0), (8, 1, 1), (9, 1, 1),
               (12, 0, 1), (13, 0, 0)]  # and back, this time reported a layer early
    _, found = run(reports)
    assert found == []


def test_backup_spool_in_a_tray_mapped_to_another_filament_switches_after_the_slack() -> None:
    reports = [(9, 0, 0), (10, 1, 0), (10, 1, 0), (11, 1, 0), (12, 1, 0)]
    _, found = run(reports)
    assert found == [TraySwitch(0, 0, 1, from_layer=10)]


def test_incomplete_mapping_waits_for_the_slack_even_for_unmapped_trays() -> None:
    tracker = TraySwitchTracker.for_job({0, 1, 2})  # filament 2's tray is not known yet
    _, found = run([(7, 3, 1), (7, 3, 1), (7, 3, 1), (8, 3, 2), (9, 1, 1)], tracker=tracker)
    assert found == []
    _, found = run([(7, 3, 1), (8, 3, 1), (9, 3, 1)], tracker=tracker)
    assert found == [TraySwitch(1, 1, 3, from_layer=7)]


def test_user_swaps_back_to_the_first_tray() -> None:
    reports = [(1, 0, 0), (2, 2, 0), (2, 2, 0), (5, 0, 0), (5, 0, 0)]
    tracker, found = run(reports)
    assert found == [TraySwitch(0, 0, 2, 2), TraySwitch(0, 2, 0, 5)]
    assert [tracker.mapping_at(layer, MAPPING)[0] for layer in (1, 2, 4, 5)] == [0, 2, 2, 0]


def test_unknown_filament_or_tray_is_ignored_and_resets_the_count() -> None:
    _, found = run([(3, 2, 0), (3, 2, None), (3, 2, 0), (3, None, 0), (3, 2, 0), (4, 2, 5)])
    assert found == []


def test_the_tracker_is_frozen() -> None:
    tracker = TraySwitchTracker.for_job(MAPPING.keys())
    after, _ = tracker.feed(1, 2, MAPPING, 0)
    assert tracker.candidate is None and after.candidate is not None


@pytest.mark.parametrize("name", ["a1-fw01.07-Testqube_Multicolor_local", "a1-fw01.07-Testqube_Multicolor_cloud"])
def test_real_four_colour_sequences_have_no_switches(name: str) -> None:
    analysis = analyze_file(FIXTURES / "print-files" / "testqube-a1-4colour-bs2.04.gcode.3mf")
    changes = sorted((c.layer, c.filament) for c in analysis.tool_changes)
    doc = json.loads((FIXTURES / "sequences" / f"{name}.expected.json").read_text("utf-8"))
    mapping = {int(k): int(v) for k, v in doc["expected_assignments"].items()}
    tracker = TraySwitchTracker.for_job({f for _, f in changes})
    state: dict[str, object] = {}
    fed = 0
    for line in (FIXTURES / "sequences" / f"{name}.log").read_text("utf-8").splitlines():
        body = json.loads(line.partition(" :: ")[2]).get("print")
        if not isinstance(body, dict):
            continue
        state = merge_report(state, body)
        layer = state.get("layer_num")
        if state.get("gcode_state") != "RUNNING" or not isinstance(layer, int):
            continue
        filament = next((f for at, f in reversed(changes) if at <= layer), None)
        tracker, switch = tracker.feed(layer, snap(state).active_tray, mapping, filament)
        assert switch is None, (layer, switch)
        fed += 1
    assert fed > 50 and tracker.switches == ()
