"""Issue 9 item 4: a bill written while a spool is being assigned never ends waiting for a spool the tray has.

Two threads race on a real SQLite file, and on PostgreSQL. The interleaving is forced, not slept for: the biller stops
right after it read the tray's assignment and goes on only once the assigner has finished, or is
queued for the write lock (then the biller's transaction must hold it, so the assigner waits).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger_helpers import DENSITY, DIAMETER, PRINTER, Line, new_job, open_db
from ledger_rows import ledger_entries
from sqlalchemy import event

from server.billing import ledger
from server.billing.settlement import READY
from server.db import Database
from server.events import EventBus
from server.slots.service import SlotService
from server.spoolman import Filament, Spool
from server.spoolman.directory import SpoolDirectory

SPOOL = 40
TRAY = 3
GUARD = 30.0  # only against a hang; the outcome never depends on it


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = open_db(tmp_path, database_url)  # both backends: SQLite, PostgreSQL
    yield database
    database.close()


def slot_service(db: Database) -> SlotService:
    spools = SpoolDirectory(None)
    filament = Filament(id=1, density=DENSITY, diameter=DIAMETER)
    spools.put(Spool(id=SPOOL, filament=filament))  # "Spoolman knows this spool"
    return SlotService(db, spools, EventBus(), [PRINTER])


def race(db: Database, biller: Callable[[], Any], assigner: Callable[[], Any]) -> None:
    """Run ``biller`` in one thread; as soon as it has read the tray's assignment, run ``assigner`` in
    another and let the biller go on once the assigner is done or waits for the write lock."""
    assigner_moved = threading.Event()
    read_assignment = threading.Event()
    biller_thread: list[int] = []
    errors: list[BaseException] = []

    def after_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if (
            threading.get_ident() in biller_thread
            and not read_assignment.is_set()
            and statement.lstrip().upper().startswith("SELECT")
            and "slot_assignments" in statement
        ):
            read_assignment.set()
            assert assigner_moved.wait(GUARD), "the assigner neither finished nor waited for the lock"

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The assigner's calls run in worker threads (asyncio.to_thread): anything but the biller counts.
        # SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock: Database.lock_for_writing.
        locking = statement.strip().upper() == "BEGIN IMMEDIATE" or "pg_advisory_xact_lock" in statement
        if threading.get_ident() not in biller_thread and locking:
            assigner_moved.set()  # about to queue behind the biller's write lock

    def run_biller() -> None:
        biller_thread.append(threading.get_ident())
        try:
            biller()
        except BaseException as error:
            errors.append(error)
            read_assignment.set()

    def run_assigner() -> None:
        assert read_assignment.wait(GUARD)
        try:
            assigner()
        except BaseException as error:
            errors.append(error)
        finally:
            assigner_moved.set()

    event.listen(db.engine, "after_cursor_execute", after_execute)
    event.listen(db.engine, "before_cursor_execute", before_execute)
    try:
        threads = [threading.Thread(target=run_biller), threading.Thread(target=run_assigner)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(GUARD)
    finally:
        event.remove(db.engine, "after_cursor_execute", after_execute)
        event.remove(db.engine, "before_cursor_execute", before_execute)
    assert not errors, errors


def test_a_bill_written_during_an_assignment_goes_to_the_new_spool(db: Database) -> None:
    job = new_job(db)
    slots = slot_service(db)
    race(
        db,
        lambda: ledger.record_bills(db, job, [Line(1, 0, 5.0)], {0: TRAY}),
        lambda: asyncio.run(slots.assign(PRINTER, TRAY, SPOOL)),
    )
    assert [(e.spool_id, e.state) for e in ledger_entries(db)] == [(SPOOL, READY)]


def test_a_mapping_learned_during_an_assignment_goes_to_the_new_spool(db: Database) -> None:
    job = new_job(db)
    ledger.record_bills(db, job, [Line(1, 0, 5.0)], {})  # tray not known yet
    slots = slot_service(db)
    race(
        db,
        lambda: ledger.on_mapping_learned(db, job, 0, TRAY),
        lambda: asyncio.run(slots.assign(PRINTER, TRAY, SPOOL)),
    )
    assert [(e.tray, e.spool_id, e.state) for e in ledger_entries(db)] == [(TRAY, SPOOL, READY)]
