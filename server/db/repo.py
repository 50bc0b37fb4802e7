"""Repository functions: plain values in, plain values out, one transaction each.

Synchronous on purpose; async callers use ``asyncio.to_thread(repo.fn, db, ...)``.
Upserts use ``INSERT ... ON CONFLICT`` (SQLite and PostgreSQL both have it, ``Database.insert``) so two
writers never race on a row.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, delete, select

from server.db.engine import Database
from server.db.models import Meta, PrinterRow, SlotAssignment, utcnow

SOURCES = ("manual", "rfid", "env")
MAX_TRAY = 255


@dataclass(frozen=True)
class SlotAssignmentData:
    printer: str
    tray: int
    spool_id: int
    source: str
    assigned_at: datetime


def _data(row: SlotAssignment) -> SlotAssignmentData:
    return SlotAssignmentData(row.printer, row.tray, row.spool_id, row.source, row.assigned_at)


# --- printers ---------------------------------------------------------------------------------


def upsert_printer(db: Database, name: str, serial: str, model: str | None) -> None:
    now = utcnow()
    statement = db.insert(PrinterRow).values(name=name, serial=serial, model=model, updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=["name"], set_={"serial": serial, "model": model, "updated_at": now}
    )
    with db.session() as session:
        session.exec(statement)  # type: ignore[call-overload]
        session.commit()


_SAVE_STATE: dict[str, Any] = {}  # per dialect: the upsert below, built once


def _save_state_statement(db: Database) -> Any:
    """``INSERT ... ON CONFLICT (name) DO UPDATE`` of a printer's state, its values the execution's.

    Built once: every printer saves its state every few seconds (a farm: many a second), and building
    and cache-keying the statement on each save was most of its CPU."""
    statement = _SAVE_STATE.get(db.dialect)
    if statement is None:
        insert = db.insert(PrinterRow)
        statement = insert.on_conflict_do_update(index_elements=["name"], set_={
            name: insert.excluded[name] for name in ("state_json", "online", "last_seen", "updated_at")})
        _SAVE_STATE[db.dialect] = statement
    return statement


def save_printer_state(
    db: Database, name: str, state: dict[str, Any], online: bool, last_seen: datetime | None
) -> None:
    """Store the last known merged state; creates the row (serial unknown) if need be."""
    values = {
        "name": name,
        "serial": "",
        "state_json": json.dumps(state, separators=(",", ":")),
        "online": online,
        "last_seen": last_seen,
        "updated_at": utcnow(),
    }
    with db.session() as session:
        session.connection().execute(_save_state_statement(db), values)
        session.commit()


def load_printer_state(db: Database, name: str) -> tuple[dict[str, Any], bool, datetime | None]:
    """``(state, online, last_seen)``; ``({}, False, None)`` for a printer never seen."""
    with db.session() as session:
        row = session.get(PrinterRow, name)
    if row is None:
        return {}, False, None
    return json.loads(row.state_json or "{}"), row.online, row.last_seen


# --- slot assignments -------------------------------------------------------------------------


def _check_assignment(tray: int, spool_id: int, source: str) -> None:
    if not 0 <= tray <= MAX_TRAY:
        raise ValueError(f"tray {tray} is not a global tray index 0-{MAX_TRAY}")
    if spool_id < 1:
        raise ValueError(f"spool id {spool_id} is not a positive integer")
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")


def list_assignments(db: Database, printer: str | None = None) -> list[SlotAssignmentData]:
    statement = select(SlotAssignment).order_by(col(SlotAssignment.printer), col(SlotAssignment.tray))
    if printer is not None:
        statement = statement.where(SlotAssignment.printer == printer)
    with db.session() as session:
        return [_data(row) for row in session.exec(statement)]


def assignments_of(db: Database, printers: Collection[str]) -> dict[str, list[SlotAssignmentData]]:
    """The assignments of each of ``printers`` (every one of them a key), in one query of plain columns.

    For the farm page's row asks (~80 printers a second): ``list_assignments`` loaded the whole farm's
    assignments as row objects each time, the larger part of an ask's cost."""
    out: dict[str, list[SlotAssignmentData]] = {printer: [] for printer in printers}
    if not out:
        return out
    statement = select(SlotAssignment.printer, SlotAssignment.tray, SlotAssignment.spool_id, SlotAssignment.source,
                       SlotAssignment.assigned_at).where(col(SlotAssignment.printer).in_(list(out))).order_by(
        col(SlotAssignment.printer), col(SlotAssignment.tray))
    with db.session() as session:
        for printer, tray, spool_id, source, assigned_at in session.exec(statement):
            out[printer].append(SlotAssignmentData(printer, tray, spool_id, source, assigned_at))
    return out


def trays_of(db: Database, printers: Collection[str]) -> dict[str, dict[int, int]]:
    """Tray -> spool id for each of ``printers`` (every one of them a key), in one query.

    For callers that read many printers at once (the runout forecast after a farm's burst of events):
    one thread hop and one statement instead of one per printer, and plain columns, no row objects."""
    out: dict[str, dict[int, int]] = {printer: {} for printer in printers}
    if not out:
        return out
    statement = select(SlotAssignment.printer, SlotAssignment.tray, SlotAssignment.spool_id).where(
        col(SlotAssignment.printer).in_(list(out)))
    with db.session() as session:
        for printer, tray, spool_id in session.exec(statement):
            out[printer][tray] = spool_id
    return out


def get_assignment(db: Database, printer: str, tray: int) -> SlotAssignmentData | None:
    statement = select(SlotAssignment).where(SlotAssignment.printer == printer, SlotAssignment.tray == tray)
    with db.session() as session:
        row = session.exec(statement).first()
    return _data(row) if row else None


def assign_spool(db: Database, printer: str, tray: int, spool_id: int, source: str) -> SlotAssignmentData:
    """Put ``spool_id`` in the tray, replacing whatever was assigned there."""
    _check_assignment(tray, spool_id, source)
    now = utcnow()
    statement = db.insert(SlotAssignment).values(
        printer=printer, tray=tray, spool_id=spool_id, source=source, assigned_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["printer", "tray"], set_={"spool_id": spool_id, "source": source, "assigned_at": now}
    )
    with db.session() as session:
        session.exec(statement)  # type: ignore[call-overload]
        session.commit()
    return SlotAssignmentData(printer, tray, spool_id, source, now)


def unassign(db: Database, printer: str, tray: int) -> bool:
    """Empty the tray's assignment; whether there was one."""
    statement = delete(SlotAssignment).where(
        col(SlotAssignment.printer) == printer, col(SlotAssignment.tray) == tray
    )
    with db.session() as session:
        result = session.exec(statement)  # type: ignore[call-overload]
        session.commit()
    return bool(result.rowcount)


def find_trays_with_spool(db: Database, spool_id: int) -> list[tuple[str, int]]:
    statement = (
        select(SlotAssignment.printer, SlotAssignment.tray)
        .where(SlotAssignment.spool_id == spool_id)
        .order_by(col(SlotAssignment.printer), col(SlotAssignment.tray))
    )
    with db.session() as session:
        return [(printer, tray) for printer, tray in session.exec(statement)]


# --- meta and seeding -------------------------------------------------------------------------


def get_meta(db: Database, key: str) -> str | None:
    with db.session() as session:
        row = session.get(Meta, key)
    return row.value if row else None


def set_meta(db: Database, key: str, value: str) -> None:
    statement = db.insert(Meta).values(key=key, value=value)
    statement = statement.on_conflict_do_update(index_elements=["key"], set_={"value": value})
    with db.session() as session:
        session.exec(statement)  # type: ignore[call-overload]
        session.commit()


def env_seed_key(printer: str) -> str:
    return f"env_mappings_seeded:{printer}"


def seed_env_mappings(db: Database, printer: str, mapping: dict[int, int]) -> bool:
    """Apply ``LAYERWISE_AMS_MAPPINGS`` the first time ever for this printer; whether it did.

    After that the web app owns the assignments, so the flag in ``meta`` keeps a restart
    from undoing what the user changed. Trays that already have an assignment keep it.
    An empty mapping seeds nothing and sets no flag.
    """
    if not mapping:
        return False
    for tray, spool_id in mapping.items():
        _check_assignment(tray, spool_id, "env")
    now = utcnow()
    with db.session() as session:
        flag = db.insert(Meta).values(key=env_seed_key(printer), value=now.isoformat())
        # The flag goes first and in the same transaction: whoever inserts it does the seeding.
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT through the ORM.
        inserted = session.exec(flag.on_conflict_do_nothing().returning(Meta.key)).first()  # type: ignore[call-overload]
        if inserted is None:
            return False
        for tray, spool_id in sorted(mapping.items()):
            row = db.insert(SlotAssignment).values(
                printer=printer, tray=tray, spool_id=spool_id, source="env", assigned_at=now
            )
            session.exec(row.on_conflict_do_nothing())  # type: ignore[call-overload]
        session.commit()
    return True
