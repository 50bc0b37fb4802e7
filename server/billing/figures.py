"""The ledger's figures for the metrics endpoint: counts per printer and state, grams per spool.

Read at scrape time (a few grouped queries over indexed columns), so nothing on the billing path has to
keep a counter in step with the ledger, and the figures survive restarts."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from server.billing.settlement import APPLIED_STATES, READY, SENDING
from server.billing.statements import BILL
from server.db import Database
from server.db.ledger_tables import LedgerEntry
from server.metrics import LedgerFigures


def ledger_figures(db: Database) -> LedgerFigures:
    with db.session() as session:
        per_state = session.exec(
            select(LedgerEntry.printer, LedgerEntry.state, LedgerEntry.kind, func.count())
            .group_by(LedgerEntry.printer, LedgerEntry.state, LedgerEntry.kind)
        ).all()
        per_spool = session.exec(
            select(LedgerEntry.spool_id, LedgerEntry.state, func.sum(LedgerEntry.grams))
            .where(LedgerEntry.spool_id.is_not(None))  # type: ignore[union-attr]
            .group_by(LedgerEntry.spool_id, LedgerEntry.state)
        ).all()
    bills: dict[tuple[str, str], int] = {}
    written: dict[str, int] = {}
    delivered: dict[str, int] = {}
    for printer, state, kind, count in per_state:
        bills[(printer, state)] = bills.get((printer, state), 0) + count
        if kind != BILL:  # corrections are not layers billed
            continue
        written[printer] = written.get(printer, 0) + count
        if state in APPLIED_STATES:
            delivered[printer] = delivered.get(printer, 0) + count
    grams: dict[tuple[int, str], float] = {}
    for spool_id, state, total in per_spool:
        if state in APPLIED_STATES:
            key = (spool_id, "delivered")
        elif state in (READY, SENDING):
            key = (spool_id, "pending")
        else:
            continue  # rejected: not this spool's unless someone acts
        grams[key] = grams.get(key, 0.0) + (total or 0.0)
    return LedgerFigures(bills, written, {p: delivered.get(p, 0) for p in written}, grams)
