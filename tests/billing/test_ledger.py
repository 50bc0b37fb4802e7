"""The ledger on a real SQLite file: spool resolution, waiting bills, checkpoints, job history, backlog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_helpers import PRINTER, Line, assign, new_job, open_db
from ledger_rows import ledger_entries

from server.billing import backlog, deliveries, errors, ledger
from server.billing.rules import BillLine
from server.billing.settlement import DELIVERED, READY, REJECTED, WAITING_SPOOL, WAITING_TRAY, SpoolReading
from server.db import Database, repo
from server.jobs import billed
from server.jobs import store as job_store


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = open_db(tmp_path, database_url)  # both backends: SQLite, PostgreSQL
    yield database
    database.close()


def states(db: Database) -> list[tuple[int, int | None, int | None, str]]:
    return [(e.filament_index, e.tray, e.spool_id, e.state) for e in ledger_entries(db)]


def test_spool_is_resolved_when_the_layer_is_billed(db: Database) -> None:
    assign(db, 0, 11)
    assign(db, 254, 12)
    job = new_job(db)
    written = ledger.record_bills(db, job, [Line(1, 0, 5.0, 0.015), Line(1, 1, 2.0, 0.006)], {0: 0, 1: 254})
    assert [(e.tray, e.spool_id, e.state) for e in written] == [(0, 11, READY), (254, 12, READY)]
    assert written[0].printer == PRINTER


def test_takes_the_billing_rules_lines(db: Database) -> None:
    assign(db, 0, 11)
    job = new_job(db)
    (entry,) = ledger.record_bills(db, job, [BillLine(0, 0, 1.5, 0.0045, False)], {0: 0})
    assert (entry.layer, entry.mm, entry.grams, entry.estimate, entry.state) == (0, 1.5, 0.0045, False, READY)


def test_reassignment_mid_print_applies_from_the_next_layer(db: Database) -> None:
    assign(db, 0, 11)
    job = new_job(db)
    ledger.record_bills(db, job, [Line(1, 0, 5.0)], {0: 0})
    assign(db, 0, 21)  # the spool ran out and was swapped during layer 2
    ledger.record_bills(db, job, [Line(2, 0, 5.0)], {0: 0})
    assert [(e.layer, e.spool_id) for e in ledger_entries(db)] == [(1, 11), (2, 21)]


def test_tray_without_spool_waits_and_a_later_assignment_releases_its_bills(db: Database) -> None:
    job = new_job(db)
    ledger.record_bills(db, job, [Line(1, 0, 5.0), Line(2, 0, 4.0)], {0: 3})
    assert states(db) == [(0, 3, None, WAITING_SPOOL)] * 2
    waiting = backlog.backlog(db).waiting
    assert [(w.printer, w.tray, w.state, w.count, w.mm) for w in waiting] == [(PRINTER, 3, WAITING_SPOOL, 2, 9.0)]

    assert ledger.on_assignment(db, "another printer", 3, 40) == 0
    assert ledger.on_assignment(db, PRINTER, 3, 40) == 2
    assert states(db) == [(0, 3, 40, READY)] * 2
    assert ledger.on_assignment(db, PRINTER, 3, 41) == 0  # already resolved: a new spool does not take them


def test_unknown_tray_waits_until_the_mapping_is_learned(db: Database) -> None:
    assign(db, 2, 30)
    job = new_job(db)
    other_job = new_job(db, key="other")
    # Filament 1's tray is not known yet (-1 or absent both mean "not known").
    ledger.record_bills(db, job, [Line(1, 0, 1.0), Line(1, 1, 2.0)], {0: -1})
    ledger.record_bills(db, other_job, [Line(1, 1, 3.0)], {})
    assert states(db) == [(0, None, None, WAITING_TRAY)] * 1 + [(1, None, None, WAITING_TRAY)] * 2

    assert ledger.on_mapping_learned(db, job, 1, 2) == 1  # tray 2 holds spool 30
    assert ledger.on_mapping_learned(db, job, 0, 5) == 1  # tray 5 has no spool yet
    assert states(db) == [(0, 5, None, WAITING_SPOOL), (1, 2, 30, READY), (1, None, None, WAITING_TRAY)]
    assert ledger.on_mapping_learned(db, job, 1, 255) == 0  # nothing left waiting for filament 1


def test_unmapped_marker_is_not_a_tray(db: Database) -> None:
    job = new_job(db)
    assert ledger.on_mapping_learned(db, job, 0, 65535) == 0
    ledger.record_bills(db, job, [Line(1, 0, 1.0)], {0: 65535})
    assert states(db) == [(0, None, None, WAITING_TRAY)]


def test_bills_and_checkpoint_commit_together(db: Database) -> None:
    job = new_job(db)
    billed.record_bills(db, job, [Line(3, 0, 1.0)], {0: 0}, checkpoint={"billed_through": 3}, state="printing")
    assert job_store.get_job(db, job).checkpoint == {"billed_through": 3}  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        # A bad checkpoint change aborts the whole transaction: the bill is not written either.
        billed.record_bills(db, job, [Line(4, 0, 1.0)], {0: 0}, checkpoint={"billed_through": 4}, color="red")
    assert [e.layer for e in ledger_entries(db)] == [3]
    assert job_store.get_job(db, job).checkpoint == {"billed_through": 3}  # type: ignore[union-attr]


def test_open_job_is_the_latest_not_final(db: Database) -> None:
    first = new_job(db, key="a")
    job_store.save_checkpoint(db, first, {"billed_through": 10}, state="finished", final=True)
    assert job_store.open_job(db, PRINTER) is None
    second = new_job(db, key="b")
    found = job_store.open_job(db, PRINTER)
    assert found is not None and found.id == second
    assert job_store.open_job(db, "other") is None


def test_job_history_sums_grams_and_mm_per_spool(db: Database) -> None:
    assign(db, 0, 11)
    older = new_job(db, key="older")
    ledger.record_bills(db, older, [Line(1, 0, 1.0, 0.1)], {0: 0})
    job = new_job(db, key="newer")
    ledger.record_bills(
        db,
        job,
        [Line(1, 0, 10.0, 1.0), Line(1, 1, 4.0, 0.4), Line(2, 0, 6.0, 0.6), Line(3, 0, 2.5, 0.25, True)],
        {0: 0, 1: 7},
    )
    # Deliver layer 1 and 2 of spool 11 for the newer job.
    delivered = [e.id for e in ledger_entries(db, job_id=job) if e.spool_id == 11 and e.layer < 3]
    delivery = deliveries.begin_delivery(db, 11, delivered, mm=16.0, expected_g=1.6, before=SpoolReading(0, None))
    deliveries.finish_delivery(db, delivery.id, DELIVERED, after_used_weight=1.6)
    job_store.save_checkpoint(db, job, state="cancelled", final=True, reason=None)

    history = job_store.list_jobs(db, printer=PRINTER, limit=10)
    assert [s.job.id for s in history] == [job, older]
    newest = history[0]
    assert newest.job.state == "cancelled" and newest.job.file_name == "cube.gcode.3mf" and newest.job.plate == 1
    by_spool = {(u.spool_id, u.tray): u for u in newest.usage}
    spool = by_spool[(11, 0)]
    assert (spool.mm_delivered, spool.mm_pending) == pytest.approx((16.0, 2.5))
    assert (spool.grams_delivered, spool.grams_pending) == pytest.approx((1.6, 0.25))
    assert spool.estimate  # the pro-rata layer 3
    unassigned = by_spool[(None, 7)]
    assert (unassigned.mm_pending, unassigned.estimate) == (4.0, False)
    assert newest.mm == pytest.approx(22.5)
    assert newest.grams == pytest.approx(2.25)
    assert [s.job.id for s in job_store.list_jobs(db, limit=1, offset=1)] == [older]
    as_json = json.loads(json.dumps(newest.to_dict()))
    assert as_json["state"] == "cancelled" and as_json["grams"] == pytest.approx(2.25)
    assert as_json["usage"][0]["spool_id"] == 11 and as_json["usage"][0]["mm"] == pytest.approx(18.5)
    assert "checkpoint" not in as_json
    assert job_store.list_jobs(db, printer="nobody") == []


def test_rejected_entries_are_counted_apart_and_can_be_repointed(db: Database) -> None:
    assign(db, 0, 11)
    job = new_job(db)
    (entry,) = ledger.record_bills(db, job, [Line(1, 0, 3.0, 0.3)], {0: 0})
    assert ledger.reject(db, [entry.id], "Spoolman has no spool 11") == 1
    (summary,) = job_store.list_jobs(db)
    assert (summary.usage[0].mm_rejected, summary.mm) == (3.0, 0.0)
    assert backlog.backlog(db).rejected == 1
    assert ledger.repoint(db, [entry.id], 12) == 1
    assert states(db) == [(0, 0, 12, READY)]
    assert ledger_entries(db, states=[REJECTED]) == []


def test_only_one_request_in_flight_per_spool(db: Database) -> None:
    assign(db, 0, 11)
    job = new_job(db)
    first, second = ledger.record_bills(db, job, [Line(1, 0, 1.0), Line(2, 0, 1.0)], {0: 0})
    reading = SpoolReading(0.0, None)
    deliveries.begin_delivery(db, 11, [first.id], mm=1.0, expected_g=0.003, before=reading)
    with pytest.raises(errors.LedgerConflict):
        deliveries.begin_delivery(db, 11, [second.id], mm=1.0, expected_g=0.003, before=reading)
    assert repo.get_assignment(db, PRINTER, 0) is not None
    in_flight = deliveries.open_delivery(db, 11)
    assert in_flight is not None and in_flight.entry_ids == (first.id,)
    assert [s.sending for s in backlog.backlog(db).spools] == [True]


def test_the_outboxs_read_of_all_work_is_each_spools_own(db: Database) -> None:
    """``all_work`` (one read per outbox pass) says what the per-spool reads say: the spool waiting
    longest first, its request in flight with its entries, else its first ``limit`` ready entries."""
    for tray, spool in ((0, 11), (1, 12), (2, 13)):
        assign(db, tray, spool)
    job = new_job(db)
    lines = [Line(layer, filament, 1.0) for layer in range(3) for filament in (2, 0, 1)]
    made = ledger.record_bills(db, job, lines, {0: 0, 1: 1, 2: 2})
    to_12 = [entry.id for entry in made if entry.spool_id == 12]
    deliveries.begin_delivery(db, 12, to_12[:2], mm=2.0, expected_g=0.006, before=SpoolReading(0.0, None))
    assert deliveries.all_work(db, 2) == {
        spool: (deliveries.open_delivery(db, spool),
                [] if deliveries.open_delivery(db, spool) else deliveries.ready_entries(db, spool, 2))
        for spool in deliveries.spools_with_work(db)}
    work = deliveries.all_work(db, 2)
    assert list(work) == [13, 11, 12]  # filament 2's bill (spool 13) was written first
    delivery, ready = work[12]
    assert delivery is not None and delivery.entry_ids == tuple(to_12[:2]) and ready == []
    assert [entry.layer for entry in work[11][1]] == [0, 1] and work[11][0] is None
    assert [len(entries) for _, entries in deliveries.all_work(db, None).values()] == [3, 3, 0]
