"""The fault campaign's judge: what a print owes, and how lost, waiting and doubled layers are counted;
Spoolman against the ledger with foreign uses, and trays whose spool was deleted or reassigned."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.faults.accounting import (
    Bill,
    count_layers,
    owed_layers,
    owed_per_spool,
    owed_per_tray,
    per_tray,
    spool_differences,
    spoolman_vs_ledger,
)
from bench.faults.harness import ams_mapping
from server.analysis import PrintAnalysis, analyze_file

SAMPLE = Path(__file__).parents[1] / "fixtures" / "print-files" / "testqube-a1-4colour-bs2.04.gcode.3mf"


@pytest.fixture(scope="module")
def analysis() -> PrintAnalysis:
    return analyze_file(SAMPLE, 1)


def _bills(owed: dict[int, dict[int, float]]) -> list[Bill]:
    return [Bill(layer, f, mm, 1, "delivered") for layer, usage in owed.items() for f, mm in usage.items()]


def _total(owed: dict[int, dict[int, float]], filament: int) -> float:
    return sum(usage.get(filament, 0.0) for usage in owed.values())


def test_finished_print_owes_the_whole_analysis(analysis: PrintAnalysis) -> None:
    owed = owed_layers(analysis)
    assert sorted(owed) == list(range(analysis.layer_count + 1))
    for filament, mm in analysis.totals().items():
        assert _total(owed, filament) == pytest.approx(mm)


def test_cancel_owes_whole_layers_before_and_pro_rata_within(analysis: PrintAnalysis) -> None:
    layer, percent = 20, int(analysis.marks[20][-1][0]) if analysis.marks[20] else 50
    owed = owed_layers(analysis, (layer, percent))
    expected = analysis.used_through(layer - 1)
    for filament, mm in analysis.layer_at_percent(layer, percent).items():
        expected[filament] = expected.get(filament, 0.0) + mm
    for filament, mm in expected.items():
        assert _total(owed, filament) == pytest.approx(mm)


def test_exact_ledger_counts_every_layer_once(analysis: PrintAnalysis) -> None:
    owed = owed_layers(analysis)
    counts = count_layers(owed, _bills(owed))
    billed_keys = sum(1 for usage in owed.values() if usage)
    assert (counts.billed, counts.lost, counts.twice) == (billed_keys, 0, 0)


def test_missing_and_repeated_layers_are_counted(analysis: PrintAnalysis) -> None:
    owed = owed_layers(analysis)
    bills = [b for b in _bills(owed) if b.layer != 7]
    bills += [b for b in _bills(owed) if b.layer == 9]
    counts = count_layers(owed, bills)
    assert (counts.lost_keys, counts.twice_keys) == ([7], [9])


def test_spool_totals_follow_the_mapping(analysis: PrintAnalysis) -> None:
    owed = owed_layers(analysis)
    filaments = sorted(f for f, usage in analysis.filaments.items() if usage.mm > 0)
    mapping = ams_mapping(filaments)
    spool_for_tray = {0: 11, 1: 12, 2: 13, 3: 14}
    per_spool = owed_per_spool(owed, mapping, spool_for_tray)
    assert sum(per_spool.values()) == pytest.approx(sum(analysis.totals().values()))
    assert per_tray(per_spool, {11: 0, 12: 1, 13: 2, 14: 3}) == pytest.approx(owed_per_tray(owed, mapping))
    assert spool_differences(per_spool, dict(per_spool)) == {}
    off = {**per_spool, 12: per_spool[12] + 0.5}
    assert list(spool_differences(per_spool, off)) == [12]


def test_mapping_puts_used_filaments_on_trays_in_order() -> None:
    assert ams_mapping([0, 3]) == [0, -1, -1, 1]
    with pytest.raises(ValueError):
        ams_mapping([0, 1, 2, 3, 4])


def test_a_missing_layer_with_negative_net_use_is_lost_not_twice() -> None:
    owed = {0: {0: 5.0}, 1: {0: -2.0, 1: 3.0}}
    counts = count_layers(owed, [Bill(0, 0, 5.0, 1, "delivered")])
    assert (counts.lost_keys, counts.twice_keys) == ([1], [])


def test_a_waiting_bill_is_not_lost_and_says_why() -> None:
    """Undelivered with a visible reason is "waiting", apart from "lost" (no bill at all)."""
    owed = {0: {0: 5.0}, 1: {0: 4.0, 1: 3.0}, 2: {1: 2.0}, 3: {0: 1.0}}
    bills = [
        Bill(0, 0, 5.0, None, "waiting_tray"),
        Bill(1, 0, 4.0, 7, "delivered"),
        Bill(1, 1, 3.0, 8, "rejected", "Spoolman refused spool 8: No spool with ID 8 found."),
        Bill(2, 1, 2.0, None, "waiting_spool"),
    ]
    counts = count_layers(owed, bills)
    assert (counts.lost_keys, counts.waiting_keys, counts.twice_keys) == ([3], [0, 1, 2], [])
    assert counts.billed == 3
    assert counts.waiting_mm == {"waiting_tray": 5.0, "rejected: spool deleted": 3.0, "waiting_spool": 2.0}


def test_a_doubtful_bill_counts_as_delivered_and_a_queued_one_as_pending() -> None:
    owed = {0: {0: 5.0}, 1: {0: 4.0}}
    counts = count_layers(owed, [Bill(0, 0, 5.0, 1, "doubtful"), Bill(1, 0, 4.0, 1, "sending")])
    assert (counts.lost, counts.waiting, counts.pending, counts.twice) == (0, 0, 1, 0)


def test_a_bill_in_an_unknown_state_is_left_out_and_shown() -> None:
    """A ledger that supersedes a rejected bill by a new one must not make the layer count twice."""
    owed = {0: {0: 5.0}}
    bills = [Bill(0, 0, 5.0, 8, "superseded"), Bill(0, 0, 5.0, 9, "delivered")]
    counts = count_layers(owed, bills)
    assert (counts.lost, counts.twice, counts.other_states) == (0, 0, {"superseded": 1})


def test_a_rebilled_layer_is_billed_twice_whatever_its_state() -> None:
    owed = {0: {0: 5.0}}
    counts = count_layers(owed, [Bill(0, 0, 5.0, 8, "rejected", "gone"), Bill(0, 0, 5.0, 9, "delivered")])
    assert counts.twice_keys == [0]


def test_foreign_uses_are_subtracted_from_spoolman() -> None:
    shown = {1: 150.0, 2: 40.0, 3: 0.0}
    assert spoolman_vs_ledger(shown, {1: 100.0, 2: 40.0}, {1: 50.0}) == {}
    # A foreign use that settlement took for ours (item 3): Spoolman is short of ledger + foreign.
    assert spoolman_vs_ledger({1: 150.0}, {1: 120.0}, {1: 50.0}) == {1: pytest.approx(-20.0)}
    # Spoolman floored a negative use on a fresh spool: Spoolman is above the ledger.
    assert spoolman_vs_ledger({2: 0.0}, {2: -3.8}) == {2: pytest.approx(3.8)}


def test_a_deleted_spool_and_its_successor_make_up_the_tray() -> None:
    """Spool 2 in tray 1 is deleted after 100 mm, spool 5 assigned; the tray still gets all it owes."""
    owed = {0: {0: 30.0, 1: 60.0}, 1: {1: 90.0}}
    mapping = [0, 1]
    trays = owed_per_tray(owed, mapping)
    assert trays == {0: 30.0, 1: 150.0}
    shown = {1: 30.0, 2: 100.0, 5: 50.0 + 25.0}  # 2 as it was when deleted; 5 also used by someone else
    delivered = {1: 30.0, 2: 100.0, 5: 50.0}
    foreign = {5: 25.0}
    assert spoolman_vs_ledger(shown, delivered, foreign) == {}
    gained = {s: shown[s] - foreign.get(s, 0.0) for s in shown}
    tray_of_spool = {1: 0, 2: 1, 5: 1}
    assert spool_differences(trays, per_tray(gained, tray_of_spool)) == {}
    # The bills stranded on the deleted spool (rejected, never moved): the tray is short by them.
    stranded = {**gained, 5: 0.0}
    assert spool_differences(trays, per_tray(stranded, tray_of_spool)) == {1: pytest.approx(-50.0)}


@settings(max_examples=100, deadline=None)
@given(
    owed=st.dictionaries(
        st.integers(0, 6),
        st.dictionaries(st.integers(0, 2), st.floats(-5, 50, allow_nan=False).map(lambda x: round(x, 2)),
                        min_size=1, max_size=3),
        min_size=1, max_size=6,
    ),
    data=st.data(),
)
def test_every_layer_is_exactly_one_of_fine_lost_or_waiting(
    owed: dict[int, dict[int, float]], data: st.DataObject
) -> None:
    """Dropping some bills loses exactly their layers; marking some waiting makes exactly theirs waiting."""
    bills = [(layer, f, mm) for layer, usage in owed.items() for f, mm in usage.items()]
    fate = data.draw(st.lists(st.sampled_from(["delivered", "waiting_spool", "dropped"]),
                              min_size=len(bills), max_size=len(bills)))
    kept = [Bill(layer, f, mm, 1, state) for (layer, f, mm), state in zip(bills, fate, strict=True)
            if state != "dropped"]
    counts = count_layers(owed, kept)
    fates = list(zip(bills, fate, strict=True))
    dropped = {layer for (layer, _, mm), state in fates if state == "dropped" and abs(mm) > 0.01}
    waiting = {layer for (layer, _, _), state in fates if state == "waiting_spool"} - dropped
    assert set(counts.lost_keys) == dropped
    assert set(counts.waiting_keys) == waiting
    assert counts.twice == 0
