"""The usage reports' core, against hand-computed figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from ledger_helpers import new_job

from server.billing.settlement import DELIVERED, READY, REJECTED
from server.billing.usage import (
    Group,
    Period,
    SpoolInfo,
    UsageEntry,
    aggregate,
    period_start,
    periods,
    price_per_gram,
    usage_entries,
    window,
)
from server.db import Database
from server.db.ledger_tables import LedgerEntry
from server.spoolman import Spool

# Spool 1: PLA Black at 20.00 for 1000 g (0.02/g); spool 2: the same filament, unpriced; spool 3: PETG at 0.03/g.
SPOOLS = {
    1: SpoolInfo("ACME PLA Black", 10, "PLA Black", "PLA", 0.02),
    2: SpoolInfo("ACME PLA Black", 10, "PLA Black", "PLA", None),
    3: SpoolInfo("ACME PETG Red", 11, "PETG Red", "PETG", 0.03),
}


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)  # 2026-03-02 is a Monday


ENTRIES = [
    UsageEntry(1, "X1C", at(2), 10.0, True),
    UsageEntry(1, "X1C", at(3), 5.0, False),
    UsageEntry(2, "A1", at(4), 4.0, True),
    UsageEntry(3, "A1", at(9), 100.0, True),
    UsageEntry(None, "X1C", at(9), 1.5, False),
]


def test_period_starts() -> None:
    assert period_start(at(4), Period.DAY) == date(2026, 3, 4)
    assert period_start(at(8), Period.WEEK) == date(2026, 3, 2)  # Sunday belongs to the week from Monday
    assert period_start(at(9), Period.WEEK) == date(2026, 3, 9)
    assert period_start(at(31), Period.MONTH) == date(2026, 3, 1)
    # 23:30 at UTC-5 is the next UTC day
    assert period_start(datetime(2026, 3, 4, 23, 30, tzinfo=timezone(timedelta(hours=-5))), Period.DAY) \
        == date(2026, 3, 5)


def test_per_spool_and_week() -> None:
    rows = aggregate(ENTRIES, SPOOLS, Group.SPOOL, Period.WEEK)
    got = [(r.period.day, r.key, r.grams_delivered, r.grams_pending, r.cost_delivered, r.cost_pending,
            r.cost_complete) for r in rows]
    assert got == [
        (2, "1", 10.0, 5.0, pytest.approx(0.2), pytest.approx(0.1), True),
        (2, "2", 4.0, 0.0, 0.0, 0.0, False),
        (9, "3", 100.0, 0.0, pytest.approx(3.0), 0.0, True),
        (9, "none", 0.0, 1.5, 0.0, 0.0, False),
    ]
    assert rows[0].label == "#1 ACME PLA Black" and rows[3].label == "Not on a spool yet"


def test_per_filament_material_and_printer_per_month() -> None:
    by_filament = aggregate(ENTRIES, SPOOLS, Group.FILAMENT, Period.MONTH)
    assert [(r.key, r.grams, r.cost_complete) for r in by_filament] == [
        ("11", 100.0, True), ("10", 19.0, False), ("none", 1.5, False)]  # by label: ACME PETG < ACME PLA
    by_material = aggregate(ENTRIES, SPOOLS, Group.MATERIAL, Period.MONTH)
    assert [(r.key, r.grams) for r in by_material] == [("PETG", 100.0), ("PLA", 19.0), ("none", 1.5)]
    by_printer = aggregate(ENTRIES, SPOOLS, Group.PRINTER, Period.MONTH)
    assert [(r.key, r.grams_delivered, r.grams_pending, round(r.cost_delivered, 6)) for r in by_printer] == [
        ("A1", 104.0, 0.0, 3.0), ("X1C", 10.0, 6.5, 0.2)]


def test_spools_spoolman_did_not_describe() -> None:
    rows = aggregate([UsageEntry(7, "X1C", at(2), 2.0, True)], {}, Group.MATERIAL, Period.DAY)
    assert [(r.key, r.label, r.cost_complete) for r in rows] == [("unknown", "Unknown material", False)]


def test_price_rule() -> None:
    def spool(**values: object) -> Spool:
        filament = {"id": 1, "density": 1.24, "diameter": 1.75, "weight": 1000.0, "price": 25.0}
        return Spool.model_validate({"id": 1, "filament": {**filament, **values.pop("filament", {})}, **values})

    assert price_per_gram(spool()) == 0.025  # the filament's price over its weight
    assert price_per_gram(spool(price=10.0, initial_weight=500.0)) == 0.02  # the spool's own price and weight
    assert price_per_gram(spool(filament={"price": None})) is None
    assert price_per_gram(spool(filament={"weight": None})) is None


def test_default_windows() -> None:
    today = date(2026, 3, 18)  # a Wednesday
    assert window(None, None, Period.DAY, today) == (date(2026, 2, 16), today)
    assert window(None, None, Period.WEEK, today) == (date(2025, 12, 29), today)  # 12 weeks, from a Monday
    assert window(None, None, Period.MONTH, today) == (date(2025, 4, 1), today)
    assert window(date(2026, 1, 1), date(2026, 1, 31), Period.DAY, today) == (date(2026, 1, 1), date(2026, 1, 31))


def test_periods_cover_the_window() -> None:
    assert periods(date(2026, 1, 30), date(2026, 2, 2), Period.DAY) == [
        date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1), date(2026, 2, 2)]
    assert periods(date(2026, 3, 4), date(2026, 3, 16), Period.WEEK) == [
        date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)]
    assert periods(date(2025, 11, 15), date(2026, 2, 1), Period.MONTH) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


def test_ledger_read_per_job_unless_a_job_crosses_a_period(db: Database) -> None:
    """Two jobs: one inside 3 March, one from 22:00 on 3 March to 01:00 on 4 March."""
    inside, crossing = new_job(db, key="a#1"), new_job(db, key="b#1")
    rows = [(inside, 1, at(3, 10), 1.0, DELIVERED), (inside, 1, at(3, 11), 1.5, DELIVERED),
            (inside, 1, at(3, 12), 0.5, READY), (inside, 1, at(3, 13), 9.0, REJECTED),
            (crossing, 2, at(3, 23), 2.0, DELIVERED), (crossing, 2, datetime(2026, 3, 4, 1, tzinfo=UTC), 2.0,
                                                       DELIVERED),
            (crossing, 3, at(3, 22), 0.25, DELIVERED)]  # another spool of the crossing job, before midnight only
    with db.session() as session:
        for layer, (job, spool, when, grams, state) in enumerate(rows):
            session.add(LedgerEntry(job_id=job, printer="X1C", layer=layer, filament_index=0, tray=0, spool_id=spool,
                                    mm=grams * 300, grams=grams, state=state, created_at=when))
        session.commit()
    by_day = aggregate(usage_entries(db, date(2026, 3, 1), date(2026, 3, 31), Period.DAY), {}, Group.SPOOL,
                       Period.DAY)
    assert [(r.period.day, r.key, r.grams_delivered, r.grams_pending) for r in by_day] == [
        (3, "1", 2.5, 0.5), (3, "2", 2.0, 0.0), (3, "3", 0.25, 0.0), (4, "2", 2.0, 0.0)]
    by_week = usage_entries(db, date(2026, 3, 1), date(2026, 3, 31), Period.WEEK)
    assert len(by_week) == 4  # one per job, spool and state: nothing crosses a week
    assert usage_entries(db, date(2026, 3, 4), date(2026, 3, 4), Period.DAY) == [
        UsageEntry(2, "X1C", datetime(2026, 3, 4, 1, tzinfo=UTC), 2.0, True)]  # the window cuts the job
