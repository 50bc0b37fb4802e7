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
    # One grouped scan for every figure (two scans cost twice as much on a large ledger).
    with db.session() as session:
        groups = session.exec(
            select(LedgerEntry.printer, LedgerEntry.state, LedgerEntry.kind, LedgerEntry.spool_id, func.count(),
                   func.sum(LedgerEntry.grams))
            .group_by(LedgerEntry.printer, LedgerEntry.state, LedgerEntry.kind, LedgerEntry.spool_id)
        ).all()
    bills: dict[tuple[str, str], int] = {}
    written: dict[str, int] = {}
    delivered: dict[str, int] = {}
    grams: dict[tuple[int, str], float] = {}
    for printer, state, kind, spool_id, count, total in groups:
        bills[(printer, state)] = bills.get((printer, state), 0) + count
        if kind == BILL:  # corrections are not layers billed
            written[printer] = written.get(printer, 0) + count
            if state in APPLIED_STATES:
                delivered[printer] = delivered.get(printer, 0) + count
        if spool_id is None:
            continue
        if state in APPLIED_STATES:
            key = (spool_id, "delivered")
        elif state in (READY, SENDING):
            key = (spool_id, "pending")
        else:
            continue  # rejected, waiting: not this spool's unless someone acts
        grams[key] = grams.get(key, 0.0) + (total or 0.0)
    return LedgerFigures(bills, written, {p: delivered.get(p, 0) for p in written}, grams)
