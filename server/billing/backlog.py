"""The backlog: what is waiting to reach Spoolman, per spool, and what waits for a tray or a spool."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from server.billing.settlement import (
    DOUBTFUL,
    READY,
    REJECTED,
    SENDING,
    WAITING_SPOOL,
    WAITING_TRAY,
)
from server.db import Database
from server.db.ledger_tables import LedgerEntry


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


def _newer_bills(session: Session, billed_through: Mapping[int, int]) -> dict[int, float]:
    """Grams per spool of the given jobs' queued bills for layers after ``billed_through[job]``."""
    rows = session.exec(
        select(LedgerEntry.spool_id, LedgerEntry.job_id, LedgerEntry.layer, func.sum(LedgerEntry.grams))
        .where(col(LedgerEntry.state).in_((READY, SENDING)), col(LedgerEntry.job_id).in_(list(billed_through)))
        .group_by(LedgerEntry.spool_id, LedgerEntry.job_id, LedgerEntry.layer)
    ).all()
    grams: dict[int, float] = {}
    for spool_id, job_id, layer, total in rows:
        if spool_id is not None and layer > billed_through[job_id]:
            grams[spool_id] = grams.get(spool_id, 0.0) + (total or 0.0)
    return grams


def queued_grams(db: Database, billed_through: Mapping[int, int] | None = None) -> dict[int, float]:
    """Grams per spool billed in the ledger but not yet in Spoolman's remaining weight (ready or in
    flight), less the given jobs' queued bills for layers after ``billed_through[job]``: the tracker
    commits a layer's bills before it moves its own ``billed_through`` on, so the runout forecast still
    counts such bills among the layers needed (subtracting them too would count them twice).

    The runout forecast's read on every refresh: one session and only these sums (the whole
    :func:`backlog` was a tenth of the worker threads' time at 100 printers, bench.farm)."""
    with db.session() as session:
        grams: dict[int, float] = {
            spool_id: total or 0.0
            for spool_id, total in session.exec(
                select(LedgerEntry.spool_id, func.sum(LedgerEntry.grams))
                .where(col(LedgerEntry.state).in_((READY, SENDING)), col(LedgerEntry.spool_id).is_not(None))
                .group_by(LedgerEntry.spool_id)
            )
        }
        later = _newer_bills(session, billed_through) if billed_through else {}
    for spool_id, newer in later.items():
        grams[spool_id] = grams.get(spool_id, 0.0) - newer
    return grams


def backlog(db: Database) -> Backlog:
    sums = (func.count(), func.sum(LedgerEntry.mm), func.sum(LedgerEntry.grams), func.min(LedgerEntry.created_at))
    with db.session() as session:
        queued = session.exec(
            select(LedgerEntry.spool_id, *sums, func.max(case((LedgerEntry.state == SENDING, 1), else_=0)))
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
