"""The fault campaign's judge: what a print owes, and how lost and doubled layers are counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults.accounting import Bill, count_layers, owed_layers, owed_per_spool, spool_differences
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
