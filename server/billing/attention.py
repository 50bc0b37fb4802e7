"""The ledger for people: per-spool usage logs, job pages, and the bills that need a person.

Queries and actions behind the ledger pages and their JSON API. The state rules stay in
``ledger.py``/``settlement.py``; this module reads rows, puts bills that need a person into
groups with a reason in words (:func:`group_entries`, pure), and applies a person's decision
through the ledger's own functions. Synchronous; async callers use ``asyncio.to_thread``.

"Needs attention" means: not delivered, and nothing will happen until someone acts. A bill
queued for Spoolman (``ready``/``sending``) is not in it, not even with a note such as "net
retraction carried to the next bill": it goes out by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from server.billing import ledger
from server.billing.settlement import (
    APPLIED_STATES,
    DOUBTFUL,
    READY,
    REJECTED,
    SENDING,
    WAITING_SPOOL,
    WAITING_TRAY,
)
from server.db import Database
from server.db.ledger_tables import JobRow, LedgerEntry, SpoolDelivery

ATTENTION_STATES = (WAITING_TRAY, WAITING_SPOOL, REJECTED, DOUBTFUL)
BILL, REFUND, CHARGE = "bill", "refund", "charge"


class AttentionError(ValueError):
    """An action that cannot be done as asked; the message is fit to show a person."""


class NothingToDo(LookupError):
    """No entry matches (unknown job, or someone settled them meanwhile)."""


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


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregates bypass the column's type decorator
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- one entry, as pages show it ---------------------------------------------------------------


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
        delivered_at=_utc(settled_at) if row.state in APPLIED_STATES else None,
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


# --- per-spool usage log ---------------------------------------------------------------------------


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


# --- a job's page -------------------------------------------------------------------------------


@dataclass
class JobSpoolPart:
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
    def mm(self) -> float:
        return self.mm_delivered + self.mm_pending

    @property
    def grams(self) -> float:
        return self.grams_delivered + self.grams_pending

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


# --- needs attention --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """Which entries one group (and one action) covers; fields a state does not group by stay None."""

    job_id: int
    state: str
    filament_index: int | None = None
    tray: int | None = None
    spool_id: int | None = None
    delivery_id: int | None = None


def group_key(job_id: int, state: str, filament_index: int, tray: int | None, spool_id: int | None,
              delivery_id: int | None) -> Selector:
    """The one place that decides how bills that need a person are grouped (and selected again)."""
    if state == WAITING_TRAY:
        return Selector(job_id, state, filament_index=filament_index)
    if state == WAITING_SPOOL:
        # A tray waits for its next spool; a correction (no tray) waits on its own spool.
        return Selector(job_id, state, tray=tray) if tray is not None else Selector(job_id, state, spool_id=spool_id)
    if state == DOUBTFUL:
        return Selector(job_id, state, spool_id=spool_id, delivery_id=delivery_id)
    return Selector(job_id, state, spool_id=spool_id)


# What a person can do about each kind of group (the page shows these buttons, the API accepts them).
ACTIONS = {
    WAITING_TRAY: ("pick_tray",),
    WAITING_SPOOL: ("assign_spool", "repoint"),
    REJECTED: ("repoint", "retry"),
    DOUBTFUL: ("confirm", "retry"),
}


@dataclass(frozen=True)
class AttentionGroup:
    selector: Selector
    reason: str  # the entries' state
    message: str
    printer: str
    job_name: str
    job_open: bool
    filament: int | None  # 1-based
    tray: int | None
    tray_label: str | None
    spool_id: int | None
    error: str | None
    kinds: tuple[str, ...]
    count: int
    mm: float
    grams: float
    oldest: datetime
    actions: tuple[str, ...]

    @property
    def key(self) -> str:
        s = self.selector
        return "-".join(str(v) for v in (s.job_id, s.state, s.filament_index, s.tray, s.spool_id, s.delivery_id))


def reason_in_words(state: str, *, job: str, printer: str, filament: int | None, tray: int | None,
                    spool_id: int | None, error: str | None) -> str:
    label = tray_label(tray)
    if state == WAITING_TRAY:
        return f"Which tray fed filament {filament} of {job}? Its bills wait until you say; Layerwise never guesses."
    if state == WAITING_SPOOL:
        because = f"{_sentence(error)} " if error else ""
        if tray is None:
            return f"{because}Waiting for another spool: pick the spool to send it to."
        return f"{because}Waiting for a spool in tray {label} of {printer}."
    if state == REJECTED:
        return f"Spoolman rejected it: {(error or 'no reason given').rstrip('.')}."
    if state == DOUBTFUL:
        return (f"Doubtful: someone else changed spool #{spool_id} while our request's outcome was unknown. "
                "It is counted as applied; check the spool in Spoolman, then confirm it or send it again.")
    return state


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def group_entries(rows: Sequence[tuple[LedgerEntry, JobRow]]) -> list[AttentionGroup]:
    """Bills that need a person, grouped per job and filament/tray/spool/request and reason (pure)."""
    groups: dict[Selector, list[tuple[LedgerEntry, JobRow]]] = {}
    for row, job in rows:
        if row.state not in ATTENTION_STATES:
            continue
        key = group_key(row.job_id, row.state, row.filament_index, row.tray, row.spool_id, row.delivery_id)
        groups.setdefault(key, []).append((row, job))
    out = []
    for selector, members in groups.items():
        first, job = members[0]
        name = job_name(job.file_name, job.job_key)
        errors = [r.error for r, _ in members if r.error]
        error = errors[-1] if errors else None
        filament = selector.filament_index + 1 if selector.filament_index is not None else None
        tray = selector.tray if selector.tray is not None else (first.tray if selector.state != WAITING_TRAY else None)
        out.append(AttentionGroup(
            selector=selector,
            reason=selector.state,
            message=reason_in_words(selector.state, job=name, printer=first.printer, filament=filament, tray=tray,
                                    spool_id=first.spool_id, error=error),
            printer=first.printer,
            job_name=name,
            job_open=not job.final,
            filament=filament,
            tray=tray,
            tray_label=tray_label(tray),
            spool_id=first.spool_id,
            error=error,
            kinds=tuple(sorted({r.kind for r, _ in members})),
            count=len(members),
            mm=sum(r.mm for r, _ in members),
            grams=sum(r.grams for r, _ in members),
            oldest=min(_utc(r.created_at) or r.created_at for r, _ in members),
            actions=ACTIONS[selector.state],
        ))
    return sorted(out, key=lambda g: (g.oldest, g.key))


@dataclass(frozen=True)
class Attention:
    groups: list[AttentionGroup]

    @property
    def count(self) -> int:
        """Entries that need a person."""
        return sum(g.count for g in self.groups)


def attention(db: Database, states: Sequence[str] = ATTENTION_STATES) -> Attention:
    """What needs a person (``states`` narrows it, e.g. to the open questions about trays)."""
    statement = (
        select(LedgerEntry, JobRow)
        .join(JobRow, col(JobRow.id) == col(LedgerEntry.job_id))
        .where(col(LedgerEntry.state).in_([s for s in states if s in ATTENTION_STATES]))
        .order_by(col(LedgerEntry.id))
    )
    with db.session() as session:
        rows = list(session.exec(statement).all())
    return Attention(group_entries(rows))


def attention_groups_count(db: Database) -> int:
    """How many things need a person (the dashboard's badge), without loading every entry."""
    statement = (
        select(LedgerEntry.job_id, LedgerEntry.state, LedgerEntry.filament_index, LedgerEntry.tray,
               LedgerEntry.spool_id, LedgerEntry.delivery_id)
        .where(col(LedgerEntry.state).in_(ATTENTION_STATES))
        .distinct()
    )
    with db.session() as session:
        return len({group_key(*row) for row in session.exec(statement).all()})


def selected(db: Database, selector: Selector) -> list[LedgerEntry]:
    """The entries a group covers now (empty when someone settled them meanwhile)."""
    statement = (
        select(LedgerEntry)
        .where(LedgerEntry.job_id == selector.job_id, LedgerEntry.state == selector.state)
        .order_by(col(LedgerEntry.id))
    )
    with db.session() as session:
        rows = list(session.exec(statement).all())
    return [r for r in rows
            if group_key(r.job_id, r.state, r.filament_index, r.tray, r.spool_id, r.delivery_id) == selector]


def _require(db: Database, selector: Selector, action: str) -> list[LedgerEntry]:
    if selector.state not in ACTIONS:
        raise AttentionError(f"{selector.state!r} is not a state that needs a person")
    if action not in ACTIONS[selector.state]:
        raise AttentionError(f"{action.replace('_', ' ')} does not apply to {selector.state.replace('_', ' ')} bills")
    rows = selected(db, selector)
    if not rows:
        raise NothingToDo("no bills match: they were settled meanwhile, or the job does not exist")
    return rows


def repoint(db: Database, selector: Selector, spool_id: int) -> int:
    """Send the group's bills to ``spool_id`` (the person checked the spool exists)."""
    rows = _require(db, selector, "repoint")
    return ledger.repoint(db, [r.id for r in rows if r.id is not None], spool_id)


def retry(db: Database, selector: Selector) -> int:
    """Send again: rejected bills to the same spool; a doubtful request as not applied."""
    rows = _require(db, selector, "retry")
    if selector.state == DOUBTFUL:
        assert selector.delivery_id is not None
        return ledger.resolve_doubtful(db, selector.delivery_id, applied=False)
    assert selector.spool_id is not None
    return ledger.repoint(db, [r.id for r in rows if r.id is not None], selector.spool_id)


def confirm(db: Database, selector: Selector) -> int:
    """A doubtful request was applied after all (the person checked the spool)."""
    _require(db, selector, "confirm")
    assert selector.delivery_id is not None
    return ledger.resolve_doubtful(db, selector.delivery_id, applied=True)


def waiting_tray(db: Database, job_id: int, filament_index: int) -> Selector:
    selector = Selector(job_id, WAITING_TRAY, filament_index=filament_index)
    _require(db, selector, "pick_tray")
    return selector
