"""The ledger: every bill is written here first, then delivered to Spoolman by the outbox.

Synchronous repository functions, one transaction each (async callers use
``asyncio.to_thread``). The state rules are in ``settlement.py``; this module only
applies them to rows. The outbox's side (deliveries, a deleted spool) is in ``deliveries.py``, the
summary of what waits in ``backlog.py``.

Spool resolution: the spool billed is the one assigned to the filament's tray *when the
layer is billed*, recorded on the entry at once. An entry whose tray is not known yet
waits for :func:`on_mapping_learned`; one whose tray has no spool waits for
:func:`on_assignment`. A later reassignment never touches entries already resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select, update

from server.billing.settlement import (
    READY,
    REJECTED,
    WAITING_SPOOL,
    WAITING_TRAY,
    SpoolReading,
    initial_state,
    resolve_tray,
)
from server.db import Database, repo
from server.db.ledger_tables import JobRow, LedgerEntry, SpoolDelivery
from server.db.models import SlotAssignment, utcnow

# The hot writes (a farm bills a layer, begins and finishes a delivery many times a second) use Core
# statements built once, on the tables: no ORM objects, flushes or identity map, and no statement built
# and cache-keyed per call (that was most of their CPU, bench.farm). Same statements, same transactions.
ENTRIES: Table = LedgerEntry.__table__  # type: ignore[attr-defined]
DELIVERIES: Table = SpoolDelivery.__table__  # type: ignore[attr-defined]
JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
_ASSIGNMENTS: Table = SlotAssignment.__table__  # type: ignore[attr-defined]
_JOB_PRINTER = core_select(JOBS.c.printer).where(JOBS.c.id == bindparam("job_id"))
_TRAY_SPOOLS = core_select(_ASSIGNMENTS.c.tray, _ASSIGNMENTS.c.spool_id).where(
    _ASSIGNMENTS.c.printer == bindparam("printer"), _ASSIGNMENTS.c.tray.in_(bindparam("trays", expanding=True)))
_ADD_ENTRIES = ENTRIES.insert().returning(ENTRIES.c.id, sort_by_parameter_order=True)


class BillLine(Protocol):
    """What the billing rules hand over for one (layer, filament)."""

    @property
    def layer(self) -> int: ...
    @property
    def filament_index(self) -> int: ...
    @property
    def mm(self) -> float: ...
    @property
    def grams(self) -> float: ...
    @property
    def estimate(self) -> bool: ...


@dataclass(frozen=True)
class EntryData:
    id: int
    job_id: int
    printer: str
    layer: int
    filament_index: int
    tray: int | None
    spool_id: int | None
    mm: float
    grams: float
    estimate: bool
    state: str
    delivery_id: int | None
    error: str | None
    created_at: datetime


@dataclass(frozen=True)
class DeliveryData:
    id: int
    spool_id: int
    expected_g: float
    before: SpoolReading
    state: str
    sent_at: datetime
    entry_ids: tuple[int, ...]
    note: str | None = None  # how it was settled, or a fact such as "spool #7 is archived in Spoolman"


def entry_data(row: Any) -> EntryData:
    """From a ``LedgerEntry`` or a Core row of the entries table (the same names)."""
    assert row.id is not None
    return EntryData(
        row.id,
        row.job_id,
        row.printer,
        row.layer,
        row.filament_index,
        row.tray,
        row.spool_id,
        row.mm,
        row.grams,
        row.estimate,
        row.state,
        row.delivery_id,
        row.error,
        row.created_at,
    )


def delivery_data(row: Any, entry_ids: Iterable[int]) -> DeliveryData:
    """From a ``SpoolDelivery`` or a Core row of the deliveries table (the same names)."""
    assert row.id is not None
    before = SpoolReading(row.before_used_weight, row.before_last_used)
    return DeliveryData(
        row.id,
        row.spool_id,
        row.expected_g,
        before,
        row.state,
        row.sent_at,
        tuple(entry_ids),
        row.note,
    )


def assigned_spool(session: Session, printer: str, tray: int | None) -> int | None:
    if tray is None:
        return None
    statement = select(SlotAssignment.spool_id).where(SlotAssignment.printer == printer, SlotAssignment.tray == tray)
    return session.exec(statement).first()


def assigned_spools(session: Session, printer: str, trays: Iterable[int | None]) -> dict[int, int]:
    """The spool in each of the printer's ``trays`` that has one, in one query (a layer bills each tray)."""
    wanted = sorted({tray for tray in trays if tray is not None})
    if not wanted:
        return {}
    rows = session.connection().execute(_TRAY_SPOOLS, {"printer": printer, "trays": wanted})
    return {tray: spool_id for tray, spool_id in rows}


@contextmanager
def write_session(db: Database) -> Iterator[Session]:
    """A session whose transaction is the only ledger writer from before its first read.

    pysqlite opens a transaction only at the first INSERT/UPDATE, and PostgreSQL's READ COMMITTED
    reads what others commit meanwhile, so a read-then-write (the tray's spool, then the bills) would
    not be one step: an assignment committed in between would leave a bill waiting for a spool the
    tray has. ``Database.lock_for_writing`` (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's advisory
    lock) makes the pair one step; other writers wait until it commits. The caller commits.
    """
    with db.session() as session:
        db.lock_for_writing(session)
        yield session


def rows_changed(db: Database, statement: Any) -> int:
    with write_session(db) as session:
        result = session.exec(statement)
        session.commit()
    return int(result.rowcount)


# --- writing bills -----------------------------------------------------------------------------


def trays_of(lines: Sequence[BillLine], mapping: Mapping[int, int]) -> list[int | None]:
    """The global tray each line's filament was loaded in, by the job's mapping (None: not known yet)."""
    return [resolve_tray(dict(mapping), line.filament_index) for line in lines]


def add_bills(session: Session, job_id: int, lines: Sequence[BillLine],
              trays: Sequence[int | None]) -> list[EntryData]:
    """Add the bill lines of one job inside the caller's transaction (see :func:`write_session`), with the
    tray of each line (``trays``, one per line), resolving the spool now: the caller commits, with
    whatever else must be committed together (the job's checkpoint: ``server.jobs.billed``)."""
    now = utcnow()
    connection = session.connection()
    printer = connection.execute(_JOB_PRINTER, {"job_id": job_id}).scalar()
    if printer is None:
        raise LookupError(f"no job {job_id}")
    if not lines:
        return []
    spools = assigned_spools(session, printer, trays)
    values = []
    for line, tray in zip(lines, trays, strict=True):
        spool_id = spools.get(tray) if tray is not None else None
        values.append({
            "job_id": job_id, "printer": printer, "layer": line.layer, "filament_index": line.filament_index,
            "tray": tray, "spool_id": spool_id, "mm": line.mm, "grams": line.grams, "estimate": line.estimate,
            "state": initial_state(tray, spool_id), "delivery_id": None, "error": None, "created_at": now,
        })
    ids = connection.execute(_ADD_ENTRIES, [{**row, "updated_at": now, "kind": "bill", "pair_id": None}
                                            for row in values]).scalars().all()
    return [EntryData(id=entry_id, **row) for entry_id, row in zip(ids, values, strict=True)]


def fence(db: Database, session: Session, rows: Sequence[EntryData]) -> None:
    """Several instances on PostgreSQL: refuse bills for a printer this instance no longer holds."""
    if db.fence is not None and rows:
        db.fence(session, rows[0].printer)


def record_bills(db: Database, job_id: int, lines: Sequence[BillLine], mapping: Mapping[int, int]) -> list[EntryData]:
    """Write the bill lines of one job, resolving tray and spool now, in a transaction of their own.

    ``mapping`` is the job's slicer filament index → global tray as known at this moment.
    """
    with write_session(db) as session:
        rows = add_bills(session, job_id, lines, trays_of(lines, mapping))
        fence(db, session, rows)
        session.commit()
        return rows


def on_assignment(db: Database, printer: str, tray: int, spool_id: int) -> int:
    """A spool was assigned to a tray: the tray's waiting bills go to it. Returns how many."""
    with write_session(db) as session:
        count = _release(session, printer, tray, spool_id)
        session.commit()
    return count


def _release(session: Session, printer: str, tray: int, spool_id: int) -> int:
    statement = (
        update(LedgerEntry)
        .where(
            col(LedgerEntry.printer) == printer,
            col(LedgerEntry.tray) == tray,
            col(LedgerEntry.state) == WAITING_SPOOL,
        )
        .values(spool_id=spool_id, state=READY, updated_at=utcnow())
    )
    return int(session.exec(statement).rowcount)  # type: ignore[call-overload]


def assign_and_release(
    db: Database, printer: str, tray: int, spool_id: int, source: str = "manual"
) -> tuple[repo.SlotAssignmentData, int]:
    """Put the spool in the tray and send the tray's waiting bills to it, in one transaction.

    Two steps would let a bill written between them wait for a spool the tray already has.
    Returns the assignment and how many bills were released.
    """
    repo._check_assignment(tray, spool_id, source)  # same rules as repo.assign_spool
    now = utcnow()
    row = {"printer": printer, "tray": tray, "spool_id": spool_id, "source": source, "assigned_at": now}
    upsert = db.insert(SlotAssignment).values(**row)
    upsert = upsert.on_conflict_do_update(
        index_elements=["printer", "tray"], set_={"spool_id": spool_id, "source": source, "assigned_at": now}
    )
    with write_session(db) as session:
        session.exec(upsert)  # type: ignore[call-overload]
        released = _release(session, printer, tray, spool_id)
        session.commit()
    return repo.SlotAssignmentData(printer, tray, spool_id, source, now), released


def on_mapping_learned(db: Database, job_id: int, filament_index: int, tray: int) -> int:
    """The job's tray for a filament became known: its waiting bills take that tray's current spool."""
    resolved = resolve_tray({filament_index: tray}, filament_index)
    if resolved is None:
        return 0
    with write_session(db) as session:
        job = session.get(JobRow, job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        spool_id = assigned_spool(session, job.printer, resolved)
        statement = (
            update(LedgerEntry)
            .where(
                col(LedgerEntry.job_id) == job_id,
                col(LedgerEntry.filament_index) == filament_index,
                col(LedgerEntry.state) == WAITING_TRAY,
            )
            .values(tray=resolved, spool_id=spool_id, state=initial_state(resolved, spool_id), updated_at=utcnow())
        )
        result = session.exec(statement)  # type: ignore[call-overload]
        session.commit()
    return int(result.rowcount)


def repoint(db: Database, entry_ids: Iterable[int], spool_id: int) -> int:
    """Send rejected (or still waiting) entries to another spool, e.g. after a spool was deleted."""
    statement = (
        update(LedgerEntry)
        .where(
            col(LedgerEntry.id).in_(list(entry_ids)),
            col(LedgerEntry.state).in_((REJECTED, WAITING_SPOOL)),
        )
        .values(spool_id=spool_id, state=READY, error=None, delivery_id=None, updated_at=utcnow())
    )
    return rows_changed(db, statement)


def reject(db: Database, entry_ids: Iterable[int], note: str) -> int:
    """Take ready entries out of the queue with a visible reason (e.g. Spoolman has no such spool)."""
    statement = (
        update(LedgerEntry)
        .where(col(LedgerEntry.id).in_(list(entry_ids)), col(LedgerEntry.state) == READY)
        .values(state=REJECTED, error=note, updated_at=utcnow())
    )
    return rows_changed(db, statement)
