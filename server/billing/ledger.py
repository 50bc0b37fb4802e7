"""The ledger: every bill is written here first, then delivered to Spoolman by the outbox.

Synchronous repository functions, one transaction each (async callers use
``asyncio.to_thread``). The state rules are in ``settlement.py``; this module only
applies them to rows.

Spool resolution: the spool billed is the one assigned to the filament's tray *when the
layer is billed*, recorded on the entry at once. An entry whose tray is not known yet
waits for :func:`on_mapping_learned`; one whose tray has no spool waits for
:func:`on_assignment`. A later reassignment never touches entries already resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import Session, col, delete, select, update

from server.billing.settlement import (
    DELIVERED,
    DOUBTFUL,
    READY,
    REJECTED,
    SENDING,
    WAITING_SPOOL,
    WAITING_TRAY,
    SpoolReading,
    initial_state,
    resolve_tray,
)
from server.db import Database, repo
from server.db.ledger_tables import JobRow, LedgerEntry, SpoolDelivery
from server.db.models import SlotAssignment, utcnow

# Delivery states (a delivery is one ``use`` request covering one or more entries).
NOT_SENT = "not_sent"  # certainly never reached Spoolman
NOT_APPLIED = "not_applied"  # reached or not, settlement proved Spoolman did not apply it


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
    mm: float
    expected_g: float
    before: SpoolReading
    state: str
    sent_at: datetime
    entry_ids: tuple[int, ...]
    note: str | None = None  # how it was settled, or a fact such as "spool #7 is archived in Spoolman"
    settled_at: datetime | None = None


def _entry(row: LedgerEntry) -> EntryData:
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


def _delivery(row: SpoolDelivery, entry_ids: Iterable[int]) -> DeliveryData:
    assert row.id is not None
    before = SpoolReading(row.before_used_weight, row.before_last_used)
    return DeliveryData(
        row.id,
        row.spool_id,
        row.mm,
        row.expected_g,
        before,
        row.state,
        row.sent_at,
        tuple(entry_ids),
        row.note,
        row.settled_at,
    )


def _assigned_spool(session: Session, printer: str, tray: int | None) -> int | None:
    if tray is None:
        return None
    statement = select(SlotAssignment.spool_id).where(SlotAssignment.printer == printer, SlotAssignment.tray == tray)
    return session.exec(statement).first()


@contextmanager
def write_session(db: Database) -> Iterator[Session]:
    """A session whose transaction takes SQLite's write lock before its first read.

    pysqlite opens a transaction only at the first INSERT/UPDATE, so a read-then-write (the tray's
    spool, then the bills) would read outside it: an assignment committed in between would leave
    a bill waiting for a spool the tray has. ``BEGIN IMMEDIATE`` makes the pair one step; other
    writers wait (busy timeout) until it commits. The caller commits.
    """
    with db.session() as session:
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session


def _rows_changed(db: Database, statement: Any) -> int:
    with write_session(db) as session:
        result = session.exec(statement)
        session.commit()
    return int(result.rowcount)


# --- writing bills -----------------------------------------------------------------------------


def trays_of(lines: Sequence[BillLine], mapping: Mapping[int, int]) -> list[int | None]:
    """The global tray each line's filament was loaded in, by the job's mapping (None: not known yet)."""
    return [resolve_tray(dict(mapping), line.filament_index) for line in lines]


def add_bills(session: Session, job_id: int, lines: Sequence[BillLine],
              trays: Sequence[int | None]) -> list[LedgerEntry]:
    """Add the bill lines of one job inside the caller's transaction (see :func:`write_session`), with the
    tray of each line (``trays``, one per line), resolving the spool now: the caller commits, with
    whatever else must be committed together (the job's checkpoint: ``server.jobs.billed``)."""
    now = utcnow()
    job = session.get(JobRow, job_id)
    if job is None:
        raise LookupError(f"no job {job_id}")
    rows = []
    for line, tray in zip(lines, trays, strict=True):
        spool_id = _assigned_spool(session, job.printer, tray)
        row = LedgerEntry(
            job_id=job_id,
            printer=job.printer,
            layer=line.layer,
            filament_index=line.filament_index,
            tray=tray,
            spool_id=spool_id,
            mm=line.mm,
            grams=line.grams,
            estimate=line.estimate,
            state=initial_state(tray, spool_id),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        rows.append(row)
    return rows


def record_bills(db: Database, job_id: int, lines: Sequence[BillLine], mapping: Mapping[int, int]) -> list[EntryData]:
    """Write the bill lines of one job, resolving tray and spool now, in a transaction of their own.

    ``mapping`` is the job's slicer filament index → global tray as known at this moment.
    """
    with write_session(db) as session:
        rows = add_bills(session, job_id, lines, trays_of(lines, mapping))
        session.commit()
        return [_entry(row) for row in rows]


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
    upsert = insert(SlotAssignment).values(**row)
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
        spool_id = _assigned_spool(session, job.printer, resolved)
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
    return _rows_changed(db, statement)


def deleted_note(spool_id: int) -> str:
    return f"spool #{spool_id} was deleted in Spoolman"


@dataclass(frozen=True)
class SpoolGone:
    """What :func:`spool_gone` did with a deleted spool's bills."""

    spool_id: int
    waiting: int  # back to waiting for their tray's next spool
    moved: dict[int, int]  # spool id -> bills sent on to the spool their tray holds now
    rejected: int  # no tray to wait on (spool-specific entries)
    cleared: list[tuple[str, int]]  # (printer, tray) assignments that pointed at the deleted spool


def spool_gone(db: Database, spool_id: int, *, delivery_id: int | None = None) -> SpoolGone:
    """Spoolman says the spool does not exist (404): its unsent bills wait for their tray's next spool.

    In one transaction: the request ``delivery_id`` (if any) is closed as rejected; every tray still
    assigned to the spool is emptied, so new bills wait instead of bouncing to it; each of the spool's
    ``ready`` entries goes to the spool its tray holds now, else back to ``waiting_spool`` (left by
    :func:`on_assignment`), both with the note. An entry without a tray (spool-specific) is rejected.
    """
    note = deleted_note(spool_id)
    now = utcnow()
    with write_session(db) as session:
        if delivery_id is not None:
            delivery = session.get(SpoolDelivery, delivery_id)
            if delivery is not None and delivery.state == SENDING:
                delivery.state, delivery.note, delivery.settled_at = REJECTED, note, now
                session.add(delivery)
                session.exec(  # type: ignore[call-overload]
                    update(LedgerEntry)
                    .where(col(LedgerEntry.delivery_id) == delivery_id)
                    .values(state=READY, delivery_id=None, updated_at=now)
                )
        cleared = [
            (row.printer, row.tray)
            for row in session.exec(select(SlotAssignment).where(SlotAssignment.spool_id == spool_id))
        ]
        session.exec(delete(SlotAssignment).where(col(SlotAssignment.spool_id) == spool_id))  # type: ignore[call-overload]
        ours = (col(LedgerEntry.spool_id) == spool_id, col(LedgerEntry.state) == READY)
        trays = session.exec(
            select(LedgerEntry.printer, LedgerEntry.tray).where(*ours).group_by(LedgerEntry.printer, LedgerEntry.tray)
        ).all()
        waiting, rejected, moved = 0, 0, {}
        for printer, tray in trays:
            if tray is None:
                statement = update(LedgerEntry).where(*ours, col(LedgerEntry.tray).is_(None))
                result = session.exec(statement.values(state=REJECTED, error=note, updated_at=now))  # type: ignore[call-overload]
                rejected += int(result.rowcount)
                continue
            current = _assigned_spool(session, printer, tray)
            same_tray = (col(LedgerEntry.printer) == printer, col(LedgerEntry.tray) == tray)
            statement = update(LedgerEntry).where(*ours, *same_tray)
            result = session.exec(  # type: ignore[call-overload]
                statement.values(spool_id=current, state=initial_state(tray, current), error=note, updated_at=now)
            )
            if current is None:
                waiting += int(result.rowcount)
            else:
                moved[current] = moved.get(current, 0) + int(result.rowcount)
        session.commit()
    return SpoolGone(spool_id, waiting, moved, rejected, cleared)


def requeue_rejected(db: Database, entry_ids: Iterable[int]) -> int:
    """A person's "send it again": rejected entries go back to the queue for the spool they name.

    A spool since deleted then takes the deleted-spool path (its tray's next spool).
    """
    statement = (
        update(LedgerEntry)
        .where(
            col(LedgerEntry.id).in_(list(entry_ids)),
            col(LedgerEntry.state) == REJECTED,
            col(LedgerEntry.spool_id).is_not(None),
        )
        .values(state=READY, error=None, delivery_id=None, updated_at=utcnow())
    )
    return _rows_changed(db, statement)


def reject(db: Database, entry_ids: Iterable[int], note: str) -> int:
    """Take ready entries out of the queue with a visible reason (e.g. Spoolman has no such spool)."""
    statement = (
        update(LedgerEntry)
        .where(col(LedgerEntry.id).in_(list(entry_ids)), col(LedgerEntry.state) == READY)
        .values(state=REJECTED, error=note, updated_at=utcnow())
    )
    return _rows_changed(db, statement)


def resolve_doubtful(db: Database, delivery_id: int, *, applied: bool) -> int:
    """A person settles a doubtful delivery: confirm it (delivered) or re-queue its entries."""
    with db.session() as session:
        delivery = session.get(SpoolDelivery, delivery_id)
        if delivery is None or delivery.state != DOUBTFUL:
            return 0
        count = _finish(session, delivery, DELIVERED if applied else NOT_APPLIED, note="settled by hand")
        session.commit()
    return count


def entries(
    db: Database,
    *,
    job_id: int | None = None,
    spool_id: int | None = None,
    states: Iterable[str] | None = None,
) -> list[EntryData]:
    statement = select(LedgerEntry).order_by(col(LedgerEntry.id))
    if job_id is not None:
        statement = statement.where(LedgerEntry.job_id == job_id)
    if spool_id is not None:
        statement = statement.where(LedgerEntry.spool_id == spool_id)
    if states is not None:
        statement = statement.where(col(LedgerEntry.state).in_(list(states)))
    with db.session() as session:
        return [_entry(row) for row in session.exec(statement)]


def deliveries(db: Database, *, spool_id: int | None = None) -> list[DeliveryData]:
    """Requests to Spoolman, oldest first, with their entries and note (the per-spool log shows them)."""
    statement = select(SpoolDelivery).order_by(col(SpoolDelivery.id))
    if spool_id is not None:
        statement = statement.where(SpoolDelivery.spool_id == spool_id)
    with db.session() as session:
        rows = session.exec(statement).all()
        ids: dict[int, list[int]] = {}
        links = select(LedgerEntry.delivery_id, LedgerEntry.id).where(col(LedgerEntry.delivery_id).is_not(None))
        for delivery_id, entry_id in session.exec(links):
            if delivery_id is not None and entry_id is not None:
                ids.setdefault(delivery_id, []).append(entry_id)
    return [_delivery(row, sorted(ids.get(row.id or 0, []))) for row in rows]


# --- the outbox's side ---------------------------------------------------------------------------


def spools_with_work(db: Database) -> list[int]:
    """Spools with entries to send or settle, the one waiting longest first."""
    statement = (
        select(LedgerEntry.spool_id, func.min(LedgerEntry.id))
        .where(col(LedgerEntry.state).in_((READY, SENDING)), col(LedgerEntry.spool_id).is_not(None))
        .group_by(LedgerEntry.spool_id)
        .order_by(func.min(LedgerEntry.id))
    )
    with db.session() as session:
        return [spool_id for spool_id, _first in session.exec(statement)]


def open_delivery(db: Database, spool_id: int) -> DeliveryData | None:
    """The spool's request whose outcome is not known yet (at most one by construction)."""
    with db.session() as session:
        row = session.exec(
            select(SpoolDelivery).where(SpoolDelivery.spool_id == spool_id, SpoolDelivery.state == SENDING)
        ).first()
        if row is None:
            return None
        ids = session.exec(select(LedgerEntry.id).where(LedgerEntry.delivery_id == row.id)).all()
        return _delivery(row, (i for i in ids if i is not None))


def ready_entries(db: Database, spool_id: int, limit: int | None) -> list[EntryData]:
    statement = (
        select(LedgerEntry)
        .where(LedgerEntry.spool_id == spool_id, LedgerEntry.state == READY)
        .order_by(col(LedgerEntry.id))
    )
    if limit is not None:
        statement = statement.limit(limit)
    with db.session() as session:
        return [_entry(row) for row in session.exec(statement)]


def note_held(db: Database, entry_ids: Iterable[int], note: str) -> int:
    """Say on queued entries why they are not sent yet (written once, not on every pass)."""
    statement = (
        update(LedgerEntry)
        .where(
            col(LedgerEntry.id).in_(list(entry_ids)),
            col(LedgerEntry.state) == READY,
            (col(LedgerEntry.error).is_(None)) | (col(LedgerEntry.error) != note),
        )
        .values(error=note, updated_at=utcnow())
    )
    return _rows_changed(db, statement)


class LedgerConflict(RuntimeError):
    """The entries changed under the outbox (another writer); nothing was sent."""


def begin_delivery(
    db: Database,
    spool_id: int,
    entry_ids: Sequence[int],
    *,
    mm: float,
    expected_g: float,
    before: SpoolReading,
    sent_at: datetime | None = None,
) -> DeliveryData:
    """Record a request *before* it leaves: the entries become ``sending`` with what settling needs."""
    with db.session() as session:
        if session.exec(
            select(SpoolDelivery.id).where(SpoolDelivery.spool_id == spool_id, SpoolDelivery.state == SENDING)
        ).first():
            raise LedgerConflict(f"spool {spool_id} already has a request in flight")
        row = SpoolDelivery(
            spool_id=spool_id,
            mm=mm,
            expected_g=expected_g,
            before_used_weight=before.used_weight,
            before_last_used=before.last_used,
            state=SENDING,
            sent_at=sent_at or utcnow(),
        )
        session.add(row)
        session.flush()
        result = session.exec(  # type: ignore[call-overload]
            update(LedgerEntry)
            .where(
                col(LedgerEntry.id).in_(list(entry_ids)),
                col(LedgerEntry.state) == READY,
                col(LedgerEntry.spool_id) == spool_id,
            )
            .values(state=SENDING, delivery_id=row.id, updated_at=utcnow())
        )
        if result.rowcount != len(entry_ids):
            session.rollback()
            raise LedgerConflict(f"entries of spool {spool_id} changed before sending")
        session.commit()
        return _delivery(row, entry_ids)


def finish_delivery(
    db: Database, delivery_id: int, state: str, *, after_used_weight: float | None = None, note: str | None = None
) -> int:
    """Record how a request ended: ``delivered``, ``doubtful``, ``rejected``, ``not_sent``, ``not_applied``."""
    with db.session() as session:
        delivery = session.get(SpoolDelivery, delivery_id)
        if delivery is None:
            raise LookupError(f"no delivery {delivery_id}")
        count = _finish(session, delivery, state, after_used_weight=after_used_weight, note=note)
        session.commit()
    return count


_ENTRY_STATE_AFTER = {
    DELIVERED: DELIVERED,
    DOUBTFUL: DOUBTFUL,
    REJECTED: REJECTED,
    NOT_SENT: READY,
    NOT_APPLIED: READY,
}


def _finish(
    session: Session,
    delivery: SpoolDelivery,
    state: str,
    *,
    after_used_weight: float | None = None,
    note: str | None = None,
) -> int:
    entry_state = _ENTRY_STATE_AFTER[state]
    now = utcnow()
    delivery.state = state
    delivery.after_used_weight = after_used_weight
    delivery.note = note
    delivery.settled_at = now
    session.add(delivery)
    values: dict[str, Any] = {"state": entry_state, "updated_at": now}
    if entry_state == READY:
        values["delivery_id"] = None  # free to join the next request; the delivery row stays as history
    if entry_state == REJECTED:
        values["error"] = note
    result = session.exec(  # type: ignore[call-overload]
        update(LedgerEntry).where(col(LedgerEntry.delivery_id) == delivery.id).values(**values)
    )
    return int(result.rowcount)


# --- the backlog -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpoolBacklog:
    spool_id: int
    count: int
    mm: float
    grams: float
    oldest: datetime
    sending: bool  # a request's outcome is still unknown (settled before anything else is sent)


@dataclass(frozen=True)
class WaitingBills:
    """Bills that cannot be sent yet: their tray is unknown or has no spool."""

    printer: str
    tray: int | None
    state: str
    count: int
    mm: float
    grams: float
    oldest: datetime


@dataclass(frozen=True)
class Backlog:
    spools: list[SpoolBacklog]
    waiting: list[WaitingBills]
    rejected: int
    doubtful: int

    @property
    def count(self) -> int:
        return sum(s.count for s in self.spools) + sum(w.count for w in self.waiting)


def backlog(db: Database) -> Backlog:
    sums = (func.count(), func.sum(LedgerEntry.mm), func.sum(LedgerEntry.grams), func.min(LedgerEntry.created_at))
    with db.session() as session:
        queued = session.exec(
            select(LedgerEntry.spool_id, *sums, func.max(LedgerEntry.state == SENDING))
            .where(col(LedgerEntry.state).in_((READY, SENDING)))
            .group_by(LedgerEntry.spool_id)
            .order_by(LedgerEntry.spool_id)
        ).all()
        waiting = session.exec(
            select(LedgerEntry.printer, LedgerEntry.tray, LedgerEntry.state, *sums)
            .where(col(LedgerEntry.state).in_((WAITING_TRAY, WAITING_SPOOL)))
            .group_by(LedgerEntry.printer, LedgerEntry.tray, LedgerEntry.state)
            .order_by(LedgerEntry.printer, LedgerEntry.tray)
        ).all()
        flagged = dict(
            session.exec(
                select(LedgerEntry.state, func.count())
                .where(col(LedgerEntry.state).in_((REJECTED, DOUBTFUL)))
                .group_by(LedgerEntry.state)
            ).all()
        )
    # SQLite hands back MIN() of a timestamp column as text; the type decorator is bypassed.
    return Backlog(
        spools=[
            SpoolBacklog(spool_id, count, mm, grams, _as_datetime(oldest), bool(sending))
            for spool_id, count, mm, grams, oldest, sending in queued
        ],
        waiting=[
            WaitingBills(printer, tray, state, count, mm, grams, _as_datetime(oldest))
            for printer, tray, state, count, mm, grams, oldest in waiting
        ],
        rejected=flagged.get(REJECTED, 0),
        doubtful=flagged.get(DOUBTFUL, 0),
    )


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
