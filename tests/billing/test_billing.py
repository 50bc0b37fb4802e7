"""The billing rule: what is billed when, never twice, and the sum is what was printed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_helpers import grams_by_hand
from test_billing_fake_analysis import FakeAnalysis, FakeFilament

from server.billing.rules import (
    BillingCheckpoint,
    BillLine,
    bill_finish,
    bill_progress,
    bill_stop,
    billed_total,
)

FOUR_LAYERS = FakeAnalysis(
    {0: {0: 10.0}, 1: {0: 4.0}, 2: {0: 2.0, 1: 3.0}, 3: {1: 5.0}, 4: {1: 1.0}},
    marks={2: [(50, {0: 1.0}), (60, {0: 2.0, 1: 1.0}), (70, {0: 2.0, 1: 3.0})], 0: [(5, {0: 4.0})]},
)


def layers_of(lines: tuple[BillLine, ...]) -> list[int]:
    return sorted({line.layer for line in lines})


def test_nothing_is_billed_before_layer_one_starts() -> None:
    lines, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 0)
    assert lines == ()
    assert checkpoint == BillingCheckpoint()


def test_the_prelude_is_billed_when_layer_one_starts() -> None:
    lines, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 1)
    assert lines == (BillLine(0, 0, 10.0, grams_by_hand(10.0, 1.75, 1.24), False),)
    assert checkpoint.billed_through == 0


def test_a_layer_is_billed_when_a_higher_one_is_reported() -> None:
    _, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 2)
    lines, checkpoint = bill_progress(FOUR_LAYERS, checkpoint, 3)
    assert [(line.layer, line.filament_index, line.mm) for line in lines] == [(2, 0, 2.0), (2, 1, 3.0)]
    assert checkpoint.billed_through == 2


def test_skipped_layers_are_all_billed() -> None:
    lines, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 4)
    assert layers_of(lines) == [0, 1, 2, 3]
    assert checkpoint.billed_through == 3


def test_layers_going_backwards_never_unbill_nor_rebill() -> None:
    _, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 3)
    for layer in (1, 2, 3, 0):
        lines, after = bill_progress(FOUR_LAYERS, checkpoint, layer)
        assert lines == ()
        assert after == checkpoint


def test_finish_bills_every_remaining_layer_once() -> None:
    _, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 2)
    lines, checkpoint = bill_finish(FOUR_LAYERS, checkpoint)
    assert layers_of(lines) == [2, 3, 4]
    assert checkpoint.billed_through == 4 and checkpoint.settled
    again, _ = bill_finish(FOUR_LAYERS, checkpoint)
    assert again == ()


def test_a_cancel_bills_the_current_layer_pro_rata_and_nothing_after() -> None:
    _, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 2)
    lines, checkpoint = bill_stop(FOUR_LAYERS, checkpoint, 2, 65)
    assert [(line.layer, line.filament_index, line.mm, line.estimate) for line in lines] == [
        (2, 0, 2.0, True),
        (2, 1, 1.0, True),
    ]
    assert checkpoint == BillingCheckpoint(billed_through=1, partial_layer=2, settled=True)
    assert bill_progress(FOUR_LAYERS, checkpoint, 4)[0] == ()
    assert bill_finish(FOUR_LAYERS, checkpoint)[0] == ()
    assert bill_stop(FOUR_LAYERS, checkpoint, 3, 90)[0] == ()


def test_a_cancel_in_the_prelude_bills_the_prelude_up_to_the_mark() -> None:
    lines, checkpoint = bill_stop(FOUR_LAYERS, BillingCheckpoint(), 0, 7)
    assert [(line.layer, line.mm, line.estimate) for line in lines] == [(0, 4.0, True)]
    assert checkpoint.partial_layer == 0


def test_a_failure_reported_on_a_later_layer_bills_the_skipped_ones_whole() -> None:
    lines, checkpoint = bill_stop(FOUR_LAYERS, BillingCheckpoint(), 2, 10)
    assert [(line.layer, line.estimate) for line in lines] == [(0, False), (1, False)]
    assert checkpoint.billed_through == 1 and checkpoint.settled and checkpoint.partial_layer == 2


def test_a_stop_without_a_known_layer_only_settles() -> None:
    _, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 2)
    lines, after = bill_stop(FOUR_LAYERS, checkpoint, None, None)
    assert lines == () and after.settled and after.billed_through == 1


def test_a_stop_reported_on_a_layer_already_billed_whole_bills_nothing_more() -> None:
    """The stop message names layer 2 after the printer had reported layer 3 (layers up to 2 billed whole):
    layer 2 is not billed a second time, pro rata."""
    _, checkpoint = bill_progress(FOUR_LAYERS, BillingCheckpoint(), 3)
    for stale in (2, 1):
        lines, after = bill_stop(FOUR_LAYERS, checkpoint, stale, 65)
        assert lines == ()
        assert after == BillingCheckpoint(billed_through=2, partial_layer=None, settled=True)


def test_a_stop_without_a_progress_figure_bills_the_layers_before_it_and_nothing_of_its_own() -> None:
    lines, after = bill_stop(FOUR_LAYERS, BillingCheckpoint(), 2, None)
    assert [(line.layer, line.estimate) for line in lines] == [(0, False), (1, False)]
    assert after == BillingCheckpoint(billed_through=1, partial_layer=None, settled=True)


def test_the_pro_rata_part_is_the_analysis_prefix_even_above_the_layers_net_use() -> None:
    # The layer ends with a 1.2 mm retraction before an unload: 5.0 up to the mark, 3.8 net.
    unload = FakeAnalysis({0: {}, 1: {0: 3.8}}, marks={1: [(10, {0: 5.0})]})
    lines, _ = bill_stop(unload, BillingCheckpoint(), 1, 50)
    assert [line.mm for line in lines] == [5.0]


def test_grams_come_from_density_and_diameter() -> None:
    pla = FakeAnalysis({0: {}, 1: {0: 1000.0}}, filaments={0: FakeFilament(0, density=1.24, diameter=1.75)})
    lines, _ = bill_finish(pla, BillingCheckpoint())
    assert lines[0].grams == pytest.approx(math.pi * 0.875**2 * 1000.0 * 1.24 / 1000.0)
    assert lines[0].grams == pytest.approx(2.982, abs=1e-3)


def test_checkpoint_round_trips_through_a_dict() -> None:
    checkpoint = BillingCheckpoint(billed_through=7, partial_layer=8, settled=True)
    assert BillingCheckpoint.from_dict(checkpoint.to_dict()) == checkpoint
    assert BillingCheckpoint.from_dict({}) == BillingCheckpoint()


# ---- properties --------------------------------------------------------------------------------------


@st.composite
def analyses(draw: st.DrawFn) -> FakeAnalysis:
    count = draw(st.integers(1, 8))
    filaments = st.integers(0, 2)
    # Negative net use happens (a retraction before an unload); it must add up too.
    amounts = st.one_of(st.floats(0.0, 50.0), st.floats(-2.0, 0.0))
    layers = {n: draw(st.dictionaries(filaments, amounts, max_size=3)) for n in range(count + 1)}
    marks: dict[int, list[tuple[int, dict[int, float]]]] = {}
    for n, usage in layers.items():
        percents = sorted(draw(st.sets(st.integers(0, 100), max_size=3)))
        fractions = sorted(draw(st.lists(st.floats(0.0, 1.0), min_size=len(percents), max_size=len(percents))))
        marks[n] = [(p, {f: mm * fr for f, mm in usage.items()}) for p, fr in zip(percents, fractions, strict=True)]
    return FakeAnalysis(layers, marks=marks)


operation = st.one_of(
    st.tuples(st.just("layer"), st.integers(-1, 11)),
    st.tuples(st.just("finish")),
    st.tuples(st.just("stop"), st.one_of(st.none(), st.integers(0, 11)), st.one_of(st.none(), st.integers(0, 100))),
)


def expected_total(analysis: FakeAnalysis, operations: list[tuple]) -> dict[int, float]:
    """The rule stated directly: what was printed, by the first terminal report."""

    def used_through(n: int) -> dict[int, float]:
        return analysis.used_through(n) if n >= 0 else {}

    through = -1
    for op in operations:
        if op[0] == "layer":
            through = max(through, min(op[1] - 1, analysis.layer_count))
        elif op[0] == "finish":
            return used_through(analysis.layer_count)
        else:
            _, layer, percent = op
            if layer is None:
                return used_through(through)
            layer = min(layer, analysis.layer_count)
            if layer <= through:
                return used_through(through)
            total = used_through(layer - 1)
            if percent is not None:
                for f, mm in analysis.layer_at_percent(layer, percent).items():
                    total[f] = total.get(f, 0.0) + mm
            return total
    return used_through(through)


@settings(max_examples=300, deadline=None)
@given(analyses(), st.lists(operation, max_size=12))
def test_any_report_sequence_bills_what_was_printed_exactly_once(analysis: FakeAnalysis, operations: list) -> None:
    checkpoint = BillingCheckpoint()
    billed: list[BillLine] = []
    for op in operations:
        before = checkpoint
        if op[0] == "layer":
            lines, checkpoint = bill_progress(analysis, checkpoint, op[1])
        elif op[0] == "finish":
            lines, checkpoint = bill_finish(analysis, checkpoint)
        else:
            lines, checkpoint = bill_stop(analysis, checkpoint, op[1], op[2])
        assert checkpoint.billed_through >= before.billed_through
        billed.extend(lines)

    pairs = [(line.layer, line.filament_index) for line in billed]
    assert len(pairs) == len(set(pairs)), "a (layer, filament) pair was billed twice"
    total = billed_total(billed)
    expected = expected_total(analysis, operations)
    for f in set(total) | set(expected):
        assert total.get(f, 0.0) == pytest.approx(expected.get(f, 0.0), abs=1e-9)
