"""What needs a person: grouping and reasons (pure), selection of a group's bills again (real SQLite),
and the refund limit that keeps a corrected spool at or above zero used."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import delete

from server.billing import attention, errors, statements
from server.billing.corrections import MM_STEP, refund_limit
from server.billing.settlement import DELIVERED, DOUBTFUL, READY, REJECTED, WAITING_SPOOL, WAITING_TRAY, tolerance
from server.db import Database
from server.db.ledger_tables import JobRow, LedgerEntry, SpoolDelivery
from tests.billing.ledger_helpers import open_db

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
JOB = JobRow(id=1, printer="P1S", job_key="benchy|1", file_name="Benchy.gcode.3mf", plate=1, state="finished",
             final=True)


def entry(state: str, *, filament: int = 0, tray: int | None = 2, spool: int | None = None, error: str | None = None,
          delivery: int | None = None, mm: float = 10.0, kind: str = "bill", layer: int = 1) -> LedgerEntry:
    return LedgerEntry(id=None, job_id=1, printer="P1S", layer=layer, filament_index=filament, tray=tray,
                       spool_id=spool, mm=mm, grams=mm * 0.003, state=state, error=error, delivery_id=delivery,
                       kind=kind, created_at=NOW, updated_at=NOW)


def test_each_reason_in_words_with_its_actions() -> None:
    rows = [
        entry(WAITING_TRAY, filament=1, tray=None),
        entry(WAITING_TRAY, filament=1, tray=None, layer=2),
        entry(WAITING_SPOOL, tray=2),
        entry(WAITING_SPOOL, tray=2, error="spool #7 was deleted in Spoolman"),
        entry(REJECTED, spool=9, error="Spoolman refused spool 9: No spool with ID 9 found."),
        entry(DOUBTFUL, spool=4, delivery=12),
        entry(READY, spool=4, error="net retraction carried to the next bill"),  # goes out by itself
        entry(DELIVERED, spool=4),
    ]
    groups = {g.reason: g for g in attention.group_entries([(r, JOB) for r in rows])}
    assert set(groups) == {WAITING_TRAY, WAITING_SPOOL, REJECTED, DOUBTFUL}
    tray = groups[WAITING_TRAY]
    assert tray.message == "Which tray fed filament 2 of Benchy? Its bills wait until you say; Layerwise never guesses."
    assert (tray.count, tray.mm, tray.actions) == (2, 20.0, ("pick_tray",))
    spool = groups[WAITING_SPOOL]
    assert spool.count == 2 and spool.tray_label == "A3"
    assert spool.message == "Spool #7 was deleted in Spoolman. Waiting for a spool in tray A3 of P1S."
    assert spool.actions == ("assign_spool", "repoint")
    assert groups[REJECTED].message == "Spoolman rejected it: Spoolman refused spool 9: No spool with ID 9 found."
    assert "someone else changed spool #4" in groups[DOUBTFUL].message
    assert groups[DOUBTFUL].selector.delivery_id == 12


def test_a_correction_waiting_for_another_spool_has_no_tray() -> None:
    [group] = attention.group_entries([(entry(WAITING_SPOOL, tray=None, spool=7, kind="refund",
                                              error="spool #7 was deleted in Spoolman"), JOB)])
    assert group.selector.spool_id == 7 and group.kinds == ("refund",)
    assert group.message.endswith("Waiting for another spool: pick the spool to send it to.")


def test_tray_labels_are_the_dashboards() -> None:
    assert [statements.tray_label(t) for t in (0, 3, 4, 15, 128, 254, 255, None)] == [
        "A1", "A4", "B1", "D4", "HT1", "External L", "External", None]


def test_job_parts_sum_per_spool_and_hold_unresolved_apart() -> None:
    rows = [entry(DELIVERED, spool=3, tray=0, layer=n) for n in range(3)] + [
        entry(READY, spool=3, tray=0, layer=3),
        entry(WAITING_TRAY, filament=1, tray=None),
        entry(DELIVERED, spool=3, tray=None, kind="refund", mm=-5.0),
    ]
    first, waiting = statements.job_parts(rows)
    assert (first.spool_id, first.count, first.first_layer, first.last_layer) == (3, 5, 0, 3)
    assert (first.mm_delivered, first.mm_pending, first.mm_corrected) == (25.0, 10.0, -5.0)
    assert (waiting.spool_id, waiting.filaments, waiting.mm_stuck) == (None, [2], 10.0)


states = st.sampled_from([WAITING_TRAY, WAITING_SPOOL, REJECTED, DOUBTFUL, READY, DELIVERED])
rows_strategy = st.lists(
    st.tuples(states, st.integers(0, 2), st.sampled_from([None, 0, 1, 2]), st.sampled_from([None, 3, 4]),
              st.sampled_from([None, 1, 2])),
    max_size=25,
)


_DB: dict[str, Database] = {}


def _shared_db() -> Database:
    """One SQLite file for every example (opening and migrating a new one per example is slow)."""
    if "db" not in _DB:
        folder = tempfile.mkdtemp(prefix="attention-")
        atexit.register(shutil.rmtree, folder, True)
        _DB["db"] = open_db(Path(folder))
        with _DB["db"].session() as session:
            session.add(JobRow(id=1, printer="P1S", job_key="benchy", state="printing"))
            for delivery_id in (1, 2):
                session.add(SpoolDelivery(id=delivery_id, spool_id=3, mm=1.0, expected_g=0.1, before_used_weight=0.0,
                                          state=DOUBTFUL))
            session.commit()
    return _DB["db"]


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy)
def test_every_bill_that_needs_a_person_is_in_exactly_one_group_and_selected_again(rows: list[tuple]) -> None:
    db = _shared_db()
    with db.session() as session:
        session.execute(delete(LedgerEntry))
        for state, filament, tray, spool, delivery in rows:
            session.add(entry(state, filament=filament, tray=tray, spool=spool, delivery=delivery))
        session.commit()
    found = attention.attention(db)
    needing = sum(1 for r in rows if r[0] in attention.ATTENTION_STATES)
    assert found.count == needing
    assert attention.attention_groups_count(db) == len(found.groups)
    seen: set[int] = set()
    for group in found.groups:
        ids = {r.id for r in attention.selected(db, group.selector)}
        assert len(ids) == group.count and not ids & seen
        seen |= {i for i in ids if i is not None}
    assert len(seen) == needing


@settings(max_examples=200)
@given(mm=st.floats(0, 1e6), used=st.floats(0, 5000), per_mm=st.floats(1e-4, 0.1))
def test_a_refund_never_takes_the_spool_below_zero(mm: float, used: float, per_mm: float) -> None:
    refund, floored = refund_limit(mm, used, per_mm)
    assert 0 <= refund <= mm
    assert refund * per_mm <= used + tolerance(used)
    if not floored:
        assert refund == mm
    else:
        assert mm * per_mm > used and refund * per_mm > used - (MM_STEP * 1.0001 + 1e-9) * per_mm


def test_a_correction_is_written_once_even_when_confirmed_twice(tmp_path: Path) -> None:
    from server.billing import corrections, ledger
    from tests.billing.ledger_helpers import Line, new_job

    db = open_db(tmp_path)
    job = new_job(db)
    [row] = ledger.record_bills(db, job, [Line(1, 0, 40.0, 0.12)], {})
    ledger.on_mapping_learned(db, job, 0, 0)
    with db.session() as session:  # as if delivered to spool 3
        stored = session.get(LedgerEntry, row.id)
        assert stored is not None
        stored.spool_id, stored.state = 3, DELIVERED
        session.add(stored)
        session.commit()
    refund, charge = corrections.record(db, job, 3, 4, 40.0, 0.12, 40.0, 0.12)
    assert refund is not None and charge > refund
    try:
        corrections.record(db, job, 3, 4, 40.0, 0.12, 40.0, 0.12)
    except errors.CorrectionConflict as conflict:
        assert "changed meanwhile" in str(conflict)
    else:
        raise AssertionError("the second correction was written")
    kinds = [(e.kind, e.spool_id, e.mm) for e in statements.spool_log(db, 3).items]
    assert kinds == [("refund", 3, -40.0), ("bill", 3, 40.0)]
    db.close()
