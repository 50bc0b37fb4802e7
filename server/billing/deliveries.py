"""Deliveries: the outbox's side of the ledger. Which spools have work, the entries a ``use`` request
carries (one delivery), its outcome, and what happens to a deleted spool's bills.

Synchronous, one transaction each, like the ledger (``server.billing.ledger``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as core_select
from sqlmodel import Session, col, delete, select, update

from server.billing.errors import LedgerConflict
from server.billing.ledger import (
    DELIVERIES,
    ENTRIES,
    DeliveryData,
    EntryData,
    assigned_spool,
    delivery_data,
    entry_data,
    rows_changed,
    write_session,
)
from server.billing.settlement import (
    DELIVERED,
    DOUBTFUL,
    READY,
    REJECTED,
    SENDING,
    SpoolReading,
    initial_state,
)
from server.db import Database
from server.db.ledger_tables import LedgerEntry, SpoolDelivery
from server.db.models import SlotAssignment, utcnow

# Delivery states (a delivery is one ``use`` request covering one or more entries).
NOT_SENT = "not_sent"  # certainly never reached Spoolman
NOT_APPLIED = "not_applied"  # reached or not, settlement proved Spoolman did not apply it


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
            current = assigned_spool(session, printer, tray)
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


def resolve_doubtful(db: Database, delivery_id: int, *, applied: bool) -> int:
    """A person settles a doubtful delivery: confirm it (delivered) or re-queue its entries."""
    with write_session(db) as session:
        delivery = session.get(SpoolDelivery, delivery_id)
        if delivery is None or delivery.state != DOUBTFUL:
            return 0
        count = _finish(session, delivery_id, DELIVERED if applied else NOT_APPLIED, note="settled by hand")
        session.commit()
    return count


_WITH_WORK = (
    select(LedgerEntry.spool_id, func.min(LedgerEntry.id))
    .where(col(LedgerEntry.state).in_((READY, SENDING)), col(LedgerEntry.spool_id).is_not(None))
    .group_by(LedgerEntry.spool_id)
    .order_by(func.min(LedgerEntry.id))
)
# The outbox's reads and writes on every pass and request, built once (see ``ledger.ENTRIES``).
_IN_FLIGHT = core_select(DELIVERIES).where(
    DELIVERIES.c.spool_id.in_(bindparam("spools", expanding=True)), DELIVERIES.c.state == SENDING)
_CARRIED = core_select(ENTRIES.c.delivery_id, ENTRIES.c.id).where(
    ENTRIES.c.delivery_id.in_(bindparam("deliveries", expanding=True))).order_by(ENTRIES.c.id)
_RANKED = core_select(ENTRIES.c.id, func.row_number().over(
    partition_by=ENTRIES.c.spool_id, order_by=ENTRIES.c.id).label("place")).where(
    ENTRIES.c.spool_id.in_(bindparam("spools", expanding=True)), ENTRIES.c.state == READY).subquery()
_FIRST_READY = core_select(ENTRIES).join(_RANKED, ENTRIES.c.id == _RANKED.c.id).where(
    _RANKED.c.place <= bindparam("limit")).order_by(ENTRIES.c.id)
_ALL_READY = core_select(ENTRIES).join(_RANKED, ENTRIES.c.id == _RANKED.c.id).order_by(ENTRIES.c.id)


def spools_with_work(db: Database) -> list[int]:
    """Spools with entries to send or settle, the one waiting longest first."""
    with db.session() as session:
        return [spool_id for spool_id, _first in session.exec(_WITH_WORK)]


Work = dict[int, tuple[DeliveryData | None, list[EntryData]]]


def all_work(db: Database, limit: int | None) -> Work:
    """Per spool with work (the one waiting longest first): its request in flight, or else its first
    ``limit`` ready entries. The outbox's read on every pass: as :func:`spools_with_work`, then
    :func:`open_delivery` or :func:`ready_entries` per spool, in one session and four queries (were
    three per spool: a farm's outbox read dozens of spools on each of its many passes, bench.farm)."""
    with db.session() as session:
        connection = session.connection()
        spools = [spool_id for spool_id, _first in connection.execute(_WITH_WORK) if spool_id is not None]
        if not spools:
            return {}
        in_flight = {row.spool_id: row for row in connection.execute(_IN_FLIGHT, {"spools": spools})}
        carried: dict[int, list[int]] = {}
        if in_flight:
            for delivery_id, entry_id in connection.execute(
                    _CARRIED, {"deliveries": [row.id for row in in_flight.values()]}):
                carried.setdefault(delivery_id, []).append(entry_id)
        ready: dict[int, list[EntryData]] = {}
        idle = [spool_id for spool_id in spools if spool_id not in in_flight]
        if idle:
            rows = (connection.execute(_ALL_READY, {"spools": idle}) if limit is None
                    else connection.execute(_FIRST_READY, {"spools": idle, "limit": limit}))
            for row in rows:
                ready.setdefault(row.spool_id, []).append(entry_data(row))
    work: Work = {}
    for spool_id in spools:
        delivery = in_flight.get(spool_id)
        if delivery is not None:
            work[spool_id] = (delivery_data(delivery, carried.get(delivery.id, [])), [])
        else:
            work[spool_id] = (None, ready.get(spool_id, []))
    return work


def open_delivery(db: Database, spool_id: int) -> DeliveryData | None:
    """The spool's request whose outcome is not known yet (at most one by construction)."""
    with db.session() as session:
        row = session.exec(
            select(SpoolDelivery).where(SpoolDelivery.spool_id == spool_id, SpoolDelivery.state == SENDING)
        ).first()
        if row is None:
            return None
        ids = session.exec(select(LedgerEntry.id).where(LedgerEntry.delivery_id == row.id)).all()
        return delivery_data(row, (i for i in ids if i is not None))


def written_times(db: Database, delivery_id: int) -> list[datetime]:
    """When each of a delivery's entries was written (the latency metric, for a settled request)."""
    with db.session() as session:
        return list(session.exec(select(LedgerEntry.created_at).where(LedgerEntry.delivery_id == delivery_id)))


def ready_entries(db: Database, spool_id: int, limit: int | None) -> list[EntryData]:
    statement = (
        select(LedgerEntry)
        .where(LedgerEntry.spool_id == spool_id, LedgerEntry.state == READY)
        .order_by(col(LedgerEntry.id))
    )
    if limit is not None:
        statement = statement.limit(limit)
    with db.session() as session:
        return [entry_data(row) for row in session.exec(statement)]


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
    return rows_changed(db, statement)


_SENDING_OF = core_select(DELIVERIES.c.id).where(
    DELIVERIES.c.spool_id == bindparam("b_spool"), DELIVERIES.c.state == SENDING).limit(1)
_ADD_DELIVERY = DELIVERIES.insert()
_SEND_ENTRIES = ENTRIES.update().where(
    ENTRIES.c.id.in_(bindparam("b_ids", expanding=True)), ENTRIES.c.state == READY,
    ENTRIES.c.spool_id == bindparam("b_spool"))
# The columns set are the execution's parameters (they differ by outcome).
_SETTLE_DELIVERY = DELIVERIES.update().where(DELIVERIES.c.id == bindparam("b_delivery"))
_SETTLE_ENTRIES = ENTRIES.update().where(ENTRIES.c.delivery_id == bindparam("b_delivery"))


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
    # The write lock first: "no request in flight for this spool" is read, then written on.
    with write_session(db) as session:
        connection = session.connection()
        if connection.execute(_SENDING_OF, {"b_spool": spool_id}).first():
            raise LedgerConflict(f"spool {spool_id} already has a request in flight")
        sent_at = sent_at or utcnow()
        delivery_id = connection.execute(_ADD_DELIVERY, {
            "spool_id": spool_id, "mm": mm, "expected_g": expected_g, "before_used_weight": before.used_weight,
            "before_last_used": before.last_used, "state": SENDING, "after_used_weight": None, "note": None,
            "sent_at": sent_at, "settled_at": None,
        }).inserted_primary_key[0]
        result = connection.execute(_SEND_ENTRIES, {
            "b_ids": list(entry_ids), "b_spool": spool_id, "state": SENDING, "delivery_id": delivery_id,
            "updated_at": utcnow(),
        })
        if result.rowcount != len(entry_ids):
            session.rollback()
            raise LedgerConflict(f"entries of spool {spool_id} changed before sending")
        session.commit()
    return DeliveryData(delivery_id, spool_id, expected_g, before, SENDING, sent_at, tuple(entry_ids))


def finish_delivery(
    db: Database, delivery_id: int, state: str, *, after_used_weight: float | None = None, note: str | None = None
) -> int:
    """Record how a request ended: ``delivered``, ``doubtful``, ``rejected``, ``not_sent``, ``not_applied``."""
    with write_session(db) as session:
        count = _finish(session, delivery_id, state, after_used_weight=after_used_weight, note=note)
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
    delivery_id: int,
    state: str,
    *,
    after_used_weight: float | None = None,
    note: str | None = None,
) -> int:
    """Settle the delivery and its entries in the caller's transaction; ``LookupError`` if there is none."""
    entry_state = _ENTRY_STATE_AFTER[state]
    now = utcnow()
    connection = session.connection()
    settled = connection.execute(_SETTLE_DELIVERY, {
        "b_delivery": delivery_id, "state": state, "after_used_weight": after_used_weight, "note": note,
        "settled_at": now,
    })
    if settled.rowcount == 0:
        raise LookupError(f"no delivery {delivery_id}")
    values: dict[str, Any] = {"b_delivery": delivery_id, "state": entry_state, "updated_at": now}
    if entry_state == READY:
        values["delivery_id"] = None  # free to join the next request; the delivery row stays as history
    if entry_state == REJECTED:
        values["error"] = note
    return int(connection.execute(_SETTLE_ENTRIES, values).rowcount)
