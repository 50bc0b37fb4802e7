"""Pure rules of the ledger: initial states and settlement of unknown outcomes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.analysis.filament import grams as weight_from_length
from server.billing.settlement import (
    ABS_TOLERANCE_G,
    READY,
    REL_TOLERANCE,
    SETTLE_MARGIN,
    WAITING_SPOOL,
    WAITING_TRAY,
    Outcome,
    SpoolReading,
    initial_state,
    resolve_tray,
    settle,
    settle_grace,
    tolerance,
)
from server.sim.spoolman import weight_from_length as standin_weight

T0 = "2026-11-21T19:00:00Z"
T1 = "2026-11-21T19:00:05Z"


@pytest.mark.parametrize(
    ("tray", "spool", "state"),
    [
        (None, None, WAITING_TRAY),
        (-1, 5, WAITING_TRAY),
        (65535, None, WAITING_TRAY),
        (3, None, WAITING_SPOOL),
        (254, 7, READY),
        (0, 1, READY),
    ],
)
def test_initial_state(tray: int | None, spool: int | None, state: str) -> None:
    assert initial_state(tray, spool) == state


def test_resolve_tray() -> None:
    mapping = {0: 4, 1: -1, 2: 255}
    assert [resolve_tray(mapping, i) for i in range(4)] == [4, None, 255, None]


def test_weight_matches_spoolman() -> None:
    assert weight_from_length(1000.0, diameter_mm=1.75, density=1.24) == pytest.approx(2.9825, abs=1e-4)
    assert weight_from_length(123.4, diameter_mm=2.85, density=1.27) == standin_weight(
        123.4, diameter_mm=2.85, density=1.27
    )


def test_moved_by_the_expected_weight_is_applied() -> None:
    verdict = settle(SpoolReading(100.0, T0), 2.5, SpoolReading(102.5, T1))
    assert verdict.outcome is Outcome.APPLIED


def test_unchanged_spool_is_not_applied() -> None:
    assert settle(SpoolReading(100.0, T0), 2.5, SpoolReading(100.0, T0)).outcome is Outcome.NOT_APPLIED
    assert settle(SpoolReading(0.0, None), 2.5, SpoolReading(0.0, None)).outcome is Outcome.NOT_APPLIED


@pytest.mark.parametrize(
    ("after", "last_used"),
    [
        (103.0, T1),  # ours and someone else's, or only someone else's: cannot tell
        (101.0, T1),  # someone used a little: ours not applied?
        (90.0, T0),  # someone corrected the weight by hand
        (100.0, T1),  # weight unchanged but the spool was used: a use and a correction
    ],
)
def test_anything_else_is_doubtful(after: float, last_used: str) -> None:
    verdict = settle(SpoolReading(100.0, T0), 2.5, SpoolReading(after, last_used))
    assert verdict.outcome is Outcome.DOUBTFUL
    assert "outside Layerwise" in verdict.reason


def test_amount_below_what_a_reading_resolves_counts_as_applied() -> None:
    assert settle(SpoolReading(5.0, T0), 1e-9, SpoolReading(5.0, T0)).outcome is Outcome.APPLIED


def test_negative_use_floored_at_zero_is_applied() -> None:
    """A net-negative layer (more retracted than extruded) can hit Spoolman's floor."""
    assert settle(SpoolReading(0.5, T0), -2.0, SpoolReading(0.0, T1)).outcome is Outcome.APPLIED
    assert settle(SpoolReading(5.0, T0), -2.0, SpoolReading(3.0, T1)).outcome is Outcome.APPLIED
    assert settle(SpoolReading(5.0, T0), -2.0, SpoolReading(5.0, T0)).outcome is Outcome.NOT_APPLIED
    assert settle(SpoolReading(0.0, T0), -2.0, SpoolReading(0.0, T1)).outcome is Outcome.APPLIED  # nothing at stake


weights = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)
uses = st.floats(min_value=3e-5, max_value=500.0, allow_nan=False)  # 0.01 mm of PLA and up


@given(before=weights, use=uses, applied=st.booleans())
def test_settlement_tells_applied_from_not_applied_whatever_the_numbers(
    before: float, use: float, applied: bool
) -> None:
    """With no one else touching the spool the answer is always right, in float arithmetic as Spoolman does it."""
    after = SpoolReading(before + use, T1) if applied else SpoolReading(before, T0)
    expected = Outcome.APPLIED if applied else Outcome.NOT_APPLIED
    assert settle(SpoolReading(before, T0), use, after).outcome is expected


@given(mm=st.floats(min_value=0.01, max_value=20000.0), before=weights)
def test_length_bills_are_settled_through_the_same_formula(mm: float, before: float) -> None:
    use = weight_from_length(mm, diameter_mm=1.75, density=1.24)
    applied = before + standin_weight(mm, diameter_mm=1.75, density=1.24)
    assert settle(SpoolReading(before, T0), use, SpoolReading(applied, T1)).outcome is Outcome.APPLIED


def test_each_verdict_gives_its_reason_in_words() -> None:
    """The reason is what a person reads on the needs-attention page: each outcome says its own."""
    tiny = settle(SpoolReading(100.0, T0), 1e-8, SpoolReading(100.0, T0))
    assert (tiny.outcome, tiny.reason) == (Outcome.APPLIED, "1e-08 g is below what a reading can tell; counted")
    moved = settle(SpoolReading(100.0, T0), 2.5, SpoolReading(102.5, T1))
    assert (moved.outcome, moved.reason) == (Outcome.APPLIED, "used_weight moved by 2.500000 g as expected")
    still = settle(SpoolReading(100.0, T0), 2.5, SpoolReading(100.0, T0))
    assert (still.outcome, still.reason) == (Outcome.NOT_APPLIED, "used_weight and last_used unchanged")
    other = settle(SpoolReading(100.0, T0), 2.5, SpoolReading(101.0, T1))
    assert other.outcome is Outcome.DOUBTFUL
    assert other.reason == ("used_weight moved by 1.000000 g, expected 2.500000 g or 0: "
                            "the spool was changed outside Layerwise meanwhile")


def test_tolerance_and_grace_figures() -> None:
    assert tolerance() == ABS_TOLERANCE_G  # nothing weighed: the absolute part alone
    assert tolerance(-2000.0, 10.0) == ABS_TOLERANCE_G + REL_TOLERANCE * 2000.0
    assert settle_grace(10.0) == 3 * 10.0 + SETTLE_MARGIN == 35.0
