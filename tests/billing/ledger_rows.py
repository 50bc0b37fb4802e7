"""The ledger's rows as stored, for tests to check: the product reads them only by purpose (the outbox's
work, a spool's log, the export), so no product function lists them all."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import col, select

from server.billing.ledger import EntryData, entry_data
from server.db import Database
from server.db.ledger_tables import LedgerEntry, SpoolDelivery


def ledger_entries(db: Database, *, job_id: int | None = None, spool_id: int | None = None,
                   states: Iterable[str] | None = None) -> list[EntryData]:
    """The entries, oldest first, of a job, a spool or in some states."""
    statement = select(LedgerEntry).order_by(col(LedgerEntry.id))
    if job_id is not None:
        statement = statement.where(LedgerEntry.job_id == job_id)
    if spool_id is not None:
        statement = statement.where(LedgerEntry.spool_id == spool_id)
    if states is not None:
        statement = statement.where(col(LedgerEntry.state).in_(list(states)))
    with db.session() as session:
        return [entry_data(row) for row in session.exec(statement)]


def ledger_deliveries(db: Database, *, spool_id: int | None = None) -> list[SpoolDelivery]:
    """The requests to Spoolman, oldest first, every column as stored (statements and export read them so)."""
    statement = select(SpoolDelivery).order_by(col(SpoolDelivery.id))
    if spool_id is not None:
        statement = statement.where(SpoolDelivery.spool_id == spool_id)
    with db.session() as session:
        return list(session.exec(statement))
