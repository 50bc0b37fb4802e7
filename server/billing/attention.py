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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from server.billing import deliveries, ledger
from server.billing.errors import AttentionError, NothingToDo
from server.billing.settlement import (
    DOUBTFUL,
    REJECTED,
    WAITING_SPOOL,
    WAITING_TRAY,
)
from server.billing.statements import as_utc, job_name, tray_label
from server.db import Database
from server.db.ledger_tables import JobRow, LedgerEntry

ATTENTION_STATES = (WAITING_TRAY, WAITING_SPOOL, REJECTED, DOUBTFUL)


# --- one entry, as pages show it ---------------------------------------------------------------


# --- per-spool usage log ---------------------------------------------------------------------------


# --- a job's page -------------------------------------------------------------------------------


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


def _english(message: str, **values: object) -> str:
    return message % values if values else message


def reason_in_words(state: str, *, job: str, printer: str, filament: int | None, tray: int | None,
                    spool_id: int | None, error: str | None, gettext: Callable[..., str] = _english) -> str:
    """Why a group waits, in words; English (the API), or in a page's language with its ``gettext`` (the
    messages are extracted into the web catalogs; ``error`` is Spoolman's or the ledger's own text)."""
    _ = gettext
    label = tray_label(tray)
    if state == WAITING_TRAY:
        return _("Which tray fed filament %(n)s of %(job)s? Its bills wait until you say; Layerwise never guesses.",
                 n=filament, job=job)
    if state == WAITING_SPOOL:
        because = f"{_sentence(error)} " if error else ""
        if tray is None:
            return because + _("Waiting for another spool: pick the spool to send it to.")
        return because + _("Waiting for a spool in tray %(tray)s of %(printer)s.", tray=label, printer=printer)
    if state == REJECTED:
        return _("Spoolman rejected it: %(error)s.", error=(error or _("no reason given")).rstrip("."))
    if state == DOUBTFUL:
        return _("Doubtful: someone else changed spool #%(id)s while our request's outcome was unknown. "
                 "It is counted as applied; check the spool in Spoolman, then confirm it or send it again.",
                 id=spool_id)
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
            oldest=min(as_utc(r.created_at) or r.created_at for r, _ in members),
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
        return deliveries.resolve_doubtful(db, selector.delivery_id, applied=False)
    assert selector.spool_id is not None
    return ledger.repoint(db, [r.id for r in rows if r.id is not None], selector.spool_id)


def confirm(db: Database, selector: Selector) -> int:
    """A doubtful request was applied after all (the person checked the spool)."""
    _require(db, selector, "confirm")
    assert selector.delivery_id is not None
    return deliveries.resolve_doubtful(db, selector.delivery_id, applied=True)


def waiting_tray(db: Database, job_id: int, filament_index: int) -> Selector:
    selector = Selector(job_id, WAITING_TRAY, filament_index=filament_index)
    _require(db, selector, "pick_tray")
    return selector
