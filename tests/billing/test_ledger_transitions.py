"""A person's repairs on the ledger (reject, repoint, send again) change exactly the entries they name,
in the states they name, and leave them clean: no stale error, no old delivery, a fresh ``updated_at``.
Written for mutants that survived bench.mutation (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ledger_helpers import PRINTER, Line, assign, new_job, open_db
from ledger_rows import ledger_deliveries, ledger_entries
from sqlmodel import Session, select

from server.billing import attention, deliveries, ledger
from server.billing.attention import Selector
from server.billing.settlement import READY, REJECTED, SENDING, WAITING_SPOOL, SpoolReading
from server.db import Database, repo
from server.db.ledger_tables import LedgerEntry

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def age_all(db: Database) -> None:
    """Every entry's ``updated_at`` set long ago (what a change then touches shows)."""
    with db.session() as session:
        for row in session.exec(select(LedgerEntry)):
            row.updated_at = LONG_AGO
            session.add(row)
        session.commit()


def entries_in_states(db: Database) -> dict[str, list[int]]:
    """Five entries of one job: two ready (tray 0 has spool 7), two waiting for a spool (tray 1 has none),
    one rejected; every ``updated_at`` set long ago."""
    assign(db, 0, 7)
    job = new_job(db)
    made = ledger.record_bills(db, job, [Line(n, 0, 1.0) for n in range(3)] + [Line(n, 1, 2.0) for n in range(2)],
                               {0: 0, 1: 1})
    ready = [e.id for e in made if e.state == READY]
    waiting = [e.id for e in made if e.state == WAITING_SPOOL]
    assert len(ready) == 3 and len(waiting) == 2
    assert ledger.reject(db, ready[2:], "Spoolman has no spool 7") == 1
    age_all(db)
    return {"ready": ready[:2], "waiting": waiting, "rejected": ready[2:]}


def rows(db: Database) -> dict[int, LedgerEntry]:
    with db.session() as session:
        return {row.id: row for row in session.exec(select(LedgerEntry)) if row.id is not None}


def touched(db: Database) -> set[int]:
    return {i for i, row in rows(db).items() if row.updated_at.replace(tzinfo=UTC) != LONG_AGO}


def test_reject_takes_only_ready_entries_and_says_why(tmp_path) -> None:
    db = open_db(tmp_path)
    ids = entries_in_states(db)
    asked = ids["ready"][:1] + ids["waiting"] + ids["rejected"]
    assert ledger.reject(db, asked, "the spool is gone") == 1  # only the ready one
    now = rows(db)
    assert now[ids["ready"][0]].state == REJECTED and now[ids["ready"][0]].error == "the spool is gone"
    assert now[ids["ready"][1]].state == READY  # not named
    assert all(now[i].state == WAITING_SPOOL for i in ids["waiting"])
    assert now[ids["rejected"][0]].error == "Spoolman has no spool 7"  # already rejected: unchanged
    assert touched(db) == {ids["ready"][0]}


def test_repoint_moves_rejected_and_waiting_entries_cleanly(tmp_path) -> None:
    db = open_db(tmp_path)
    ids = entries_in_states(db)
    asked = ids["rejected"] + ids["waiting"][:1] + ids["ready"][:1]
    assert ledger.repoint(db, asked, 9) == 2  # not the ready one
    now = rows(db)
    for i in ids["rejected"] + ids["waiting"][:1]:
        assert (now[i].spool_id, now[i].state, now[i].error, now[i].delivery_id) == (9, READY, None, None)
    assert now[ids["waiting"][1]].state == WAITING_SPOOL  # not named
    assert now[ids["ready"][0]].spool_id == 7
    assert touched(db) == {*ids["rejected"], ids["waiting"][0]}


def test_send_again_requeues_only_the_groups_rejected_entries_to_their_spool(tmp_path) -> None:
    """The web's "Send again" on a rejected group (``attention.retry``: ``repoint`` to the group's own spool)."""
    db = open_db(tmp_path)
    ids = entries_in_states(db)
    job = rows(db)[ids["rejected"][0]].job_id
    (other,) = ledger.record_bills(db, new_job(db, key="other.gcode.3mf#1"), [Line(0, 0, 1.0)], {0: 0})
    assert ledger.reject(db, [other.id], "refused") == 1
    age_all(db)
    assert attention.retry(db, Selector(job, REJECTED, spool_id=7)) == 1
    now = rows(db)
    (sent,) = ids["rejected"]
    assert (now[sent].spool_id, now[sent].state, now[sent].error, now[sent].delivery_id) == (7, READY, None, None)
    assert (now[other.id].state, now[other.id].error) == (REJECTED, "refused")  # rejected too, another job's
    assert all(now[i].state == WAITING_SPOOL for i in ids["waiting"])
    assert touched(db) == {sent}


def test_a_request_carries_exactly_its_own_entries(tmp_path) -> None:
    """Two requests begun on two spools: each links the entries it was given, no more (a settlement moves
    exactly those), and leaves the rest of the spool's queue ready."""
    db = open_db(tmp_path)
    assign(db, 0, 7)
    assign(db, 1, 8)
    job = new_job(db)
    made = ledger.record_bills(db, job, [Line(n, 0, 1.0) for n in range(3)] + [Line(n, 1, 2.0) for n in range(2)],
                               {0: 0, 1: 1})
    on_7 = [e.id for e in made if e.spool_id == 7]
    on_8 = [e.id for e in made if e.spool_id == 8]
    first = deliveries.begin_delivery(db, 8, on_8, mm=4.0, expected_g=0.01, before=SpoolReading(0.0, None))
    second = deliveries.begin_delivery(db, 7, on_7[:2], mm=2.0, expected_g=0.01, before=SpoolReading(0.0, None))
    now = rows(db)
    assert {i: (now[i].delivery_id, now[i].state) for i in on_8 + on_7} == {
        **{i: (first.id, SENDING) for i in on_8}, **{i: (second.id, SENDING) for i in on_7[:2]},
        on_7[2]: (None, READY)}
    assert [(d.id, d.spool_id, d.state) for d in ledger_deliveries(db)] == [(first.id, 8, SENDING),
                                                                           (second.id, 7, SENDING)]


def test_assign_and_release_answers_the_assignment_it_stored(tmp_path) -> None:
    db = open_db(tmp_path)
    ids = entries_in_states(db)
    assignment, released = ledger.assign_and_release(db, PRINTER, 1, 9, "manual")
    assert released == len(ids["waiting"])  # tray 1's waiting bills now go to spool 9
    (stored,) = [a for a in repo.list_assignments(db, PRINTER) if a.tray == 1]
    assert assignment == stored and (assignment.printer, assignment.tray, assignment.spool_id) == (PRINTER, 1, 9)


def test_a_spool_put_in_a_tray_takes_only_that_trays_waiting_bills(tmp_path) -> None:
    db = open_db(tmp_path)
    ids = entries_in_states(db)  # tray 1: two bills waiting for a spool
    other_tray = ledger.record_bills(db, new_job(db, key="vase.gcode.3mf#1"), [Line(1, 0, 3.0)], {0: 2})
    assert [e.state for e in other_tray] == [WAITING_SPOOL]
    age_all(db)
    _assignment, released = ledger.assign_and_release(db, PRINTER, 1, 9)
    assert released == 2
    now = rows(db)
    assert [(now[i].spool_id, now[i].state) for i in ids["waiting"]] == [(9, READY)] * 2
    assert (now[other_tray[0].id].spool_id, now[other_tray[0].id].state) == (None, WAITING_SPOOL)  # tray 2
    assert touched(db) == set(ids["waiting"])


def test_a_learned_tray_takes_the_spool_of_the_jobs_own_printer(tmp_path) -> None:
    """Both printers have a spool in tray 1: each job's bills go to its own printer's."""
    db = open_db(tmp_path)
    assign(db, 1, 7)
    assign(db, 1, 8, printer="p2")
    jobs = {printer: new_job(db, printer) for printer in (PRINTER, "p2")}
    waiting = {printer: ledger.record_bills(db, job, [Line(1, 0, 1.0)], {}) for printer, job in jobs.items()}
    age_all(db)
    for printer in ("p2", PRINTER):
        assert ledger.on_mapping_learned(db, jobs[printer], 0, 1) == 1
    now = rows(db)
    assert {printer: (now[e.id].spool_id, now[e.id].state) for printer, (e,) in waiting.items()} == {
        PRINTER: (7, READY), "p2": (8, READY)}
    assert touched(db) == {e.id for (e,) in waiting.values()}


def test_a_tray_learned_for_a_job_that_does_not_exist_is_refused_by_its_id(tmp_path) -> None:
    db = open_db(tmp_path)
    with pytest.raises(LookupError, match=r"^no job 999$"):
        ledger.on_mapping_learned(db, 999, 0, 1)


def test_a_bill_repointed_after_spoolman_refused_it_leaves_the_refused_request(tmp_path) -> None:
    db = open_db(tmp_path)
    assign(db, 0, 7)
    (entry,) = ledger.record_bills(db, new_job(db), [Line(1, 0, 1.0)], {0: 0})
    refused = deliveries.begin_delivery(db, 7, [entry.id], mm=1.0, expected_g=0.003, before=SpoolReading(0.0, None))
    deliveries.finish_delivery(db, refused.id, REJECTED, note="Spoolman refused the use: archived")
    assert (rows(db)[entry.id].state, rows(db)[entry.id].delivery_id) == (REJECTED, refused.id)
    assert ledger.repoint(db, [entry.id], 9) == 1
    row = rows(db)[entry.id]
    assert (row.spool_id, row.state, row.error, row.delivery_id) == (9, READY, None, None)


def test_another_spool_put_in_an_occupied_tray_replaces_the_first(db: Database) -> None:
    """On both backends (the ``db`` fixture): the upsert names the conflict and the columns it replaces."""
    first, _ = ledger.assign_and_release(db, PRINTER, 1, 7, "manual")
    (waiting,) = ledger.record_bills(db, new_job(db), [Line(1, 0, 1.0)], {0: 2})
    later, released = ledger.assign_and_release(db, PRINTER, 2, 8, "rfid")
    assert released == 1
    swapped, released = ledger.assign_and_release(db, PRINTER, 1, 9, "rfid")
    assert released == 0
    assert {a.tray: a for a in repo.list_assignments(db, PRINTER)} == {1: swapped, 2: later}
    assert (swapped.spool_id, swapped.source) == (9, "rfid") and swapped.assigned_at >= first.assigned_at
    assert [(e.id, e.spool_id, e.state) for e in ledger_entries(db)] == [(waiting.id, 8, READY)]


def test_a_bill_takes_the_spool_in_its_own_printers_tray(tmp_path) -> None:
    """Both printers have a spool in tray 1: each printer's bills go to its own."""
    db = open_db(tmp_path)
    assign(db, 1, 7)
    assign(db, 1, 8, printer="p2")
    billed = {printer: ledger.record_bills(db, new_job(db, printer), [Line(1, 0, 1.0)], {0: 1})
              for printer in ("p2", PRINTER)}
    assert {printer: [(e.spool_id, e.state) for e in rows] for printer, rows in billed.items()} == {
        PRINTER: [(7, READY)], "p2": [(8, READY)]}


def test_bills_for_a_job_that_does_not_exist_are_refused_by_its_id(tmp_path) -> None:
    db = open_db(tmp_path)
    with pytest.raises(LookupError, match=r"^no job 999$"):
        ledger.record_bills(db, 999, [Line(1, 0, 1.0)], {0: 0})


def test_bills_for_a_printer_the_fence_refuses_are_not_written(tmp_path) -> None:
    """Several instances (PostgreSQL): the fence is asked, inside the bills' own transaction, about the printer
    they are for; its refusal leaves nothing written. A stand-in fence on SQLite: it reads through the session."""
    db = open_db(tmp_path)
    assign(db, 0, 7)
    assign(db, 0, 8, printer="p2")
    asked: list[str] = []

    def fence(session: Session, printer: str) -> None:
        session.exec(select(LedgerEntry.id)).all()  # the caller's transaction, as the real fence's lease check
        asked.append(printer)
        if printer != PRINTER:
            raise RuntimeError(f"this instance no longer holds {printer}")

    db.fence = fence
    jobs = {printer: new_job(db, printer) for printer in (PRINTER, "p2")}
    assert [e.spool_id for e in ledger.record_bills(db, jobs[PRINTER], [Line(1, 0, 1.0)], {0: 0})] == [7]
    with pytest.raises(RuntimeError, match="no longer holds p2"):
        ledger.record_bills(db, jobs["p2"], [Line(1, 0, 1.0)], {0: 0})
    assert asked == [PRINTER, "p2"]
    assert [(e.printer, e.spool_id) for e in ledger_entries(db)] == [(PRINTER, 7)]
