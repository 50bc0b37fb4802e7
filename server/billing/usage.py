"""Usage reports: grams and cost per spool, filament, material or printer, per day, week or month.

A pure core (:func:`aggregate`, :func:`period_start`, :func:`price_per_gram`) over plain values, and one
query (:func:`usage_entries`) that reads the ledger. Periods are UTC: days, ISO weeks (from Monday) and
calendar months. An entry counts from the time it was billed (written to the ledger). Delivered entries
(in Spoolman, or counted so: doubtful) and pending ones (waiting for a tray or spool, queued, sending) are
summed apart; rejected ones are left out (they are on no spool until someone acts).

Cost follows Spoolman's price: the spool's own ``price`` when set, else its filament's ``price``, divided by
the spool's net weight (its ``initial_weight``, else the filament's ``weight``). A spool without a price or
a weight has no cost; a row whose spools are not all priced says so (``cost_complete``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import case, func
from sqlmodel import col, select

from server.billing.settlement import APPLIED_STATES, PENDING_STATES
from server.db import Database
from server.db.ledger_tables import LedgerEntry
from server.spoolman import Spool


class Group(StrEnum):
    SPOOL = "spool"
    FILAMENT = "filament"
    MATERIAL = "material"
    PRINTER = "printer"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


UNASSIGNED = "none"  # the key of bills not on a spool (yet)
UNKNOWN = "unknown"  # the key of spools whose filament or material Spoolman did not say


@dataclass(frozen=True)
class UsageEntry:
    """One ledger entry as the reports need it."""

    spool_id: int | None
    printer: str
    at: datetime
    grams: float
    delivered: bool  # False: pending


@dataclass(frozen=True)
class SpoolInfo:
    """What the reports know of a spool from Spoolman (absent: Spoolman did not say)."""

    name: str
    filament_id: int | None
    filament_name: str | None
    material: str | None
    price_per_gram: float | None


@dataclass
class UsageRow:
    period: date  # the period's first day
    key: str  # the group's id: spool id, filament id, material, printer name, or "none"
    label: str
    grams_delivered: float = 0.0
    grams_pending: float = 0.0
    cost_delivered: float = 0.0
    cost_pending: float = 0.0
    cost_complete: bool = True  # every spool in the row has a price

    @property
    def grams(self) -> float:
        return self.grams_delivered + self.grams_pending


def price_per_gram(spool: Spool) -> float | None:
    """Spoolman's price per gram of a spool (the module's rule), or None."""
    filament = spool.filament
    price = spool.price if spool.price is not None else (filament.price if filament else None)
    weight = spool.initial_weight or (filament.weight if filament else None)
    if price is None or not weight or weight <= 0:
        return None
    return price / weight


def spool_info(spool: Spool) -> SpoolInfo:
    filament = spool.filament
    name = filament.name if filament and filament.name else f"Spool {spool.id}"
    vendor = filament.vendor.name if filament and filament.vendor else None
    return SpoolInfo(f"{vendor} {name}" if vendor else name, filament.id if filament else None,
                     filament.name if filament else None, filament.material if filament else None,
                     price_per_gram(spool))


def period_start(at: datetime, period: Period) -> date:
    """The first day (UTC) of the day, ISO week or month ``at`` falls in."""
    day = at.astimezone(UTC).date() if at.tzinfo else at.date()
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


def _group(entry: UsageEntry, spool: SpoolInfo | None, group: Group) -> tuple[str, str]:
    """(key, label) of an entry's group."""
    if group is Group.PRINTER:
        return entry.printer, entry.printer
    if entry.spool_id is None:
        return UNASSIGNED, "Not on a spool yet"
    if group is Group.SPOOL:
        return str(entry.spool_id), f"#{entry.spool_id} {spool.name}" if spool else f"#{entry.spool_id}"
    if group is Group.FILAMENT:
        if spool is None or spool.filament_id is None:
            return UNKNOWN, "Unknown filament"
        return str(spool.filament_id), spool.name
    material = spool.material if spool and spool.material else None
    return (material, material) if material else (UNKNOWN, "Unknown material")


def aggregate(entries: Iterable[UsageEntry], spools: Mapping[int, SpoolInfo], group: Group,
              period: Period) -> list[UsageRow]:
    """Grams and cost per (period, group), oldest period first, then by label (unknown and unassigned last)."""
    rows: dict[tuple[date, str], UsageRow] = {}
    for entry in entries:
        spool = spools.get(entry.spool_id) if entry.spool_id is not None else None
        key, label = _group(entry, spool, group)
        start = period_start(entry.at, period)
        row = rows.get((start, key))
        if row is None:
            row = rows[(start, key)] = UsageRow(start, key, label)
        price = spool.price_per_gram if spool else None
        if price is None:
            row.cost_complete = row.cost_complete and entry.grams == 0
        if entry.delivered:
            row.grams_delivered += entry.grams
            row.cost_delivered += entry.grams * (price or 0.0)
        else:
            row.grams_pending += entry.grams
            row.cost_pending += entry.grams * (price or 0.0)
    return sorted(rows.values(), key=lambda r: (r.period, r.key in (UNASSIGNED, UNKNOWN), r.label, r.key))


def window(since: date | None, until: date | None, period: Period, today: date) -> tuple[date, date]:
    """The days a report covers (both inclusive); by default the last 31 days, 12 weeks or 12 months."""
    end = until or today
    if since is not None:
        return since, end
    back = {Period.DAY: timedelta(days=30), Period.WEEK: timedelta(weeks=11), Period.MONTH: timedelta(days=334)}
    return period_start(datetime.combine(end - back[period], time(), UTC), period), end


def periods(since: date, until: date, period: Period) -> list[date]:
    """The first day of every period from ``since``'s through ``until``'s (the chart's bars, empty ones too)."""
    found: list[date] = []
    current = period_start(datetime.combine(since, time(), UTC), period)
    while current <= until:
        found.append(current)
        if period is Period.DAY:
            current += timedelta(days=1)
        elif period is Period.WEEK:
            current += timedelta(weeks=1)
        else:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    return found


def usage_entries(db: Database, since: date, until: date, period: Period) -> list[UsageEntry]:
    """The ledger's delivered and pending entries billed from ``since`` through ``until`` (UTC days), summed in
    SQL per job, spool, state and ``period`` (reading a year of layers one by one takes seconds): per job where
    its entries fall in one period, else per job and part between the period starts it crosses."""
    start = datetime.combine(since, time(), UTC)
    end = datetime.combine(until + timedelta(days=1), time(), UTC)
    where = (col(LedgerEntry.created_at) >= start, col(LedgerEntry.created_at) < end,
             col(LedgerEntry.state).in_((*APPLIED_STATES, *PENDING_STATES)))
    columns = (LedgerEntry.spool_id, LedgerEntry.printer, LedgerEntry.state, func.sum(LedgerEntry.grams),
               func.min(LedgerEntry.created_at), func.max(LedgerEntry.created_at))
    found: list[UsageEntry] = []
    crossing: dict[int, list[datetime]] = {}  # job -> the period starts its entries cross
    with db.session() as session:
        groups = session.exec(
            select(LedgerEntry.job_id, *columns).where(*where)
            .group_by(LedgerEntry.job_id, LedgerEntry.spool_id, LedgerEntry.printer, LedgerEntry.state)
        ).all()
        for job_id, _spool, _printer, _state, _grams, first, last in groups:
            starts = periods(period_start(_utc(first), period), period_start(_utc(last), period), period)
            if len(starts) > 1:
                crossing.setdefault(job_id, []).extend(datetime.combine(day, time(), UTC) for day in starts[1:])
        # A job is read whole one way or the other: its groups that stay in one period are in its parts too.
        found += [UsageEntry(spool_id, printer, _utc(first), grams or 0.0, state in APPLIED_STATES)
                  for job_id, spool_id, printer, state, grams, first, _last in groups if job_id not in crossing]
        for job_id, starts in crossing.items():
            boundaries = sorted(set(starts))
            part = case(*((col(LedgerEntry.created_at) < at, index) for index, at in enumerate(boundaries)),
                        else_=len(boundaries))
            rows = session.exec(
                select(*columns).where(*where, LedgerEntry.job_id == job_id)
                .group_by(LedgerEntry.spool_id, LedgerEntry.printer, LedgerEntry.state, part)
            ).all()
            found += [UsageEntry(spool_id, printer, _utc(first), grams or 0.0, state in APPLIED_STATES)
                      for spool_id, printer, state, grams, first, _last in rows]
    return found


def _utc(value: datetime | str) -> datetime:
    """A time read back through an aggregate (which may bypass the column's type) as an aware UTC time."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
