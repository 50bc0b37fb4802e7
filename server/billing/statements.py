"""The ledger for people, read: a spool's usage log and a job's bills per spool, with the names a person
reads (trays A1..D4, job names). Synchronous queries; async callers use ``asyncio.to_thread``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from server.billing.amounts import UsedAmounts
from server.billing.settlement import (
    APPLIED_STATES,
    READY,
    SENDING,
)
from server.db import Database
from server.db.ledger_tables import JobRow, LedgerEntry, SpoolDelivery

BILL, REFUND, CHARGE = "bill", "refund", "charge"


def tray_label(tray: int | None) -> str | None:
    """The name a person reads on the printer (A1..D4, HT1, External) for a global tray index."""
    if tray is None:
        return None
    if tray in (254, 255):  # as the dashboard names them (server.web.views.tray_label)
        return "External" if tray == 255 else "External L"
    if 0 <= tray < 16:
        return f"{chr(ord('A') + tray // 4)}{tray % 4 + 1}"
    if 24 <= tray < 32:  # AMS Lite units of the A2L (ids 16..)
        return f"{chr(ord('A') + (tray - 24) // 4)}{(tray - 24) % 4 + 1}"
    if 128 <= tray < 254:
        return f"HT{tray - 127}"
    return str(tray)


def job_name(file_name: str | None, job_key: str) -> str:
    name = file_name or job_key.split("|", 1)[0] or "job"
    for suffix in (".gcode.3mf", ".3mf", ".gcode"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def as_utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregates bypass the column's type decorator
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class EntryOut:
    id: int
    kind: str  # bill | refund | charge
    job_id: int
    job_name: str
    printer: str
    plate: int | None
    layer: int | None  # None for a correction (it covers the job, not a layer)
    filament: int | None  # 1-based, as the slicer shows it
    tray: int | None
    tray_label: str | None
    spool_id: int | None
    mm: float
    grams: float
    state: str
    error: str | None
    estimate: bool
    pair_id: int | None
    created_at: datetime
    delivered_at: datetime | None
    pair_spool_id: int | None = None  # a correction's other spool (refund: moved to; charge: moved from)


def _entry_out(row: LedgerEntry, job: JobRow | None, settled_at: datetime | None,
               pair_spool_id: int | None = None) -> EntryOut:
    assert row.id is not None
    correction = row.kind != BILL
    return EntryOut(
        id=row.id,
        kind=row.kind,
        job_id=row.job_id,
        job_name=job_name(job.file_name, job.job_key) if job else f"job {row.job_id}",
        printer=row.printer,
        plate=job.plate if job else None,
        layer=None if correction else row.layer,
        filament=None if correction else row.filament_index + 1,
        tray=row.tray,
        tray_label=tray_label(row.tray),
        spool_id=row.spool_id,
        mm=row.mm,
        grams=row.grams,
        state=row.state,
        error=row.error,
        estimate=row.estimate,
        pair_id=row.pair_id,
        created_at=row.created_at,
        delivered_at=as_utc(settled_at) if row.state in APPLIED_STATES else None,
        pair_spool_id=pair_spool_id,
    )


def _entries_with_context(session: Session, statement: Any) -> list[EntryOut]:
    rows = list(session.exec(statement))
    job_ids = {row.job_id for row in rows}
    delivery_ids = {row.delivery_id for row in rows if row.delivery_id is not None}
    jobs = {j.id: j for j in session.exec(select(JobRow).where(col(JobRow.id).in_(job_ids)))} if job_ids else {}
    settled = (
        dict(session.exec(select(SpoolDelivery.id, SpoolDelivery.settled_at)
                          .where(col(SpoolDelivery.id).in_(delivery_ids))).all())
        if delivery_ids else {}
    )
    pair_ids = {row.pair_id for row in rows if row.pair_id is not None}
    pairs = (
        dict(session.exec(select(LedgerEntry.id, LedgerEntry.spool_id).where(col(LedgerEntry.id).in_(pair_ids))).all())
        if pair_ids else {}
    )
    return [_entry_out(row, jobs.get(row.job_id), settled.get(row.delivery_id), pairs.get(row.pair_id))
            for row in rows]


@dataclass(frozen=True)
class Totals:
    mm_delivered: float = 0.0
    grams_delivered: float = 0.0
    mm_pending: float = 0.0
    grams_pending: float = 0.0
    mm_stuck: float = 0.0  # waiting, rejected: not on this spool unless someone acts


@dataclass(frozen=True)
class SpoolLog:
    spool_id: int
    job_id: int | None
    items: list[EntryOut]
    total: int
    limit: int
    offset: int
    totals: Totals

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None


def _totals(rows: Iterable[tuple[str, float | None, float | None]]) -> Totals:
    values = dict.fromkeys(("dm", "dg", "pm", "pg", "sm"), 0.0)
    for state, mm, grams in rows:
        mm, grams = mm or 0.0, grams or 0.0
        if state in APPLIED_STATES:
            values["dm"] += mm
            values["dg"] += grams
        elif state in (READY, SENDING):
            values["pm"] += mm
            values["pg"] += grams
        else:
            values["sm"] += mm
    # Rounded so that a refund that cancels a bill shows 0, not -0.00.
    return Totals(*(round(values[k], 9) + 0.0 for k in ("dm", "dg", "pm", "pg", "sm")))


def spool_log(db: Database, spool_id: int, *, limit: int = 50, offset: int = 0, job_id: int | None = None) -> SpoolLog:
    """Every entry billed to ``spool_id`` (optionally of one job), newest first, one page."""
    where = [LedgerEntry.spool_id == spool_id]
    if job_id is not None:
        where.append(LedgerEntry.job_id == job_id)
    with db.session() as session:
        total = session.exec(select(func.count()).select_from(LedgerEntry).where(*where)).one()
        sums = session.exec(
            select(LedgerEntry.state, func.sum(LedgerEntry.mm), func.sum(LedgerEntry.grams))
            .where(*where).group_by(LedgerEntry.state)
        ).all()
        items = _entries_with_context(
            session,
            select(LedgerEntry).where(*where).order_by(col(LedgerEntry.id).desc()).offset(offset).limit(limit),
        )
    return SpoolLog(spool_id, job_id, items, int(total), limit, offset, _totals(sums))


@dataclass
class JobSpoolPart(UsedAmounts):
    """What one job billed to one spool (or, while unresolved, what waits on one tray/filament)."""

    spool_id: int | None
    trays: list[int] = field(default_factory=list)
    filaments: list[int] = field(default_factory=list)  # 1-based
    count: int = 0
    first_layer: int | None = None
    last_layer: int | None = None
    mm_delivered: float = 0.0
    grams_delivered: float = 0.0
    mm_pending: float = 0.0
    grams_pending: float = 0.0
    mm_stuck: float = 0.0
    mm_corrected: float = 0.0  # refunds (negative) and charges from corrections
    states: dict[str, int] = field(default_factory=dict)

    @property
    def tray_labels(self) -> list[str]:
        return [tray_label(t) or "?" for t in self.trays]


@dataclass(frozen=True)
class JobDetail:
    id: int
    printer: str
    name: str
    file_name: str | None
    plate: int | None
    state: str
    final: bool
    reason: str | None
    started_at: datetime
    ended_at: datetime | None
    thumbnail: bool
    parts: list[JobSpoolPart]

    @property
    def mm(self) -> float:
        return sum(p.mm for p in self.parts)

    @property
    def grams(self) -> float:
        return sum(p.grams for p in self.parts)


def job_parts(rows: Iterable[LedgerEntry]) -> list[JobSpoolPart]:
    """A job's entries summed per spool; unresolved ones per tray (or per filament when no tray)."""
    parts: dict[tuple[int | None, int | None, int | None], JobSpoolPart] = {}
    for row in rows:
        if row.spool_id is not None:
            key: tuple[int | None, int | None, int | None] = (row.spool_id, None, None)
        elif row.tray is not None:
            key = (None, row.tray, None)
        else:
            key = (None, None, row.filament_index)
        part = parts.setdefault(key, JobSpoolPart(row.spool_id))
        part.count += 1
        part.states[row.state] = part.states.get(row.state, 0) + 1
        if row.tray is not None and row.tray not in part.trays:
            part.trays.append(row.tray)
        if row.kind == BILL:
            if row.filament_index + 1 not in part.filaments:
                part.filaments.append(row.filament_index + 1)
            part.first_layer = row.layer if part.first_layer is None else min(part.first_layer, row.layer)
            part.last_layer = row.layer if part.last_layer is None else max(part.last_layer, row.layer)
        else:
            part.mm_corrected += row.mm
        if row.state in APPLIED_STATES:
            part.mm_delivered += row.mm
            part.grams_delivered += row.grams
        elif row.state in (READY, SENDING):
            part.mm_pending += row.mm
            part.grams_pending += row.grams
        else:
            part.mm_stuck += row.mm
    for part in parts.values():
        part.trays.sort()
        part.filaments.sort()
    return sorted(parts.values(), key=lambda p: (p.spool_id is None, p.spool_id or 0, p.trays, p.filaments))


def job_detail(db: Database, job_id: int) -> JobDetail | None:
    with db.session() as session:
        job = session.get(JobRow, job_id)
        if job is None:
            return None
        rows = session.exec(select(LedgerEntry).where(LedgerEntry.job_id == job_id)).all()
    assert job.id is not None
    return JobDetail(job.id, job.printer, job_name(job.file_name, job.job_key), job.file_name, job.plate, job.state,
                     job.final, job.reason, job.started_at, job.ended_at, bool(job.thumbnail), job_parts(rows))
