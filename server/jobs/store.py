"""Jobs in SQLite: one row per print with its latest checkpoint, and the job history query.

Synchronous, one transaction per call; async callers use ``asyncio.to_thread``. The
checkpoint is the tracking core's own dict (``server.jobs.checkpoint``), stored as JSON.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, func
from sqlmodel import Session, col, select

from server.billing.amounts import UsedAmounts
from server.billing.settlement import APPLIED_STATES, DOUBTFUL, PENDING_STATES, REJECTED
from server.db import Database
from server.db.ledger_tables import JobRow, LedgerEntry
from server.db.models import jsonable, utcnow
from server.jobs.checkpoint import JobCheckpoint

# Columns a checkpoint save may change besides the checkpoint itself.
_JOB_FIELDS = ("state", "final", "reason", "file_name", "plate", "thumbnail", "ended_at", "job_key")
_JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
# Built once; the columns it sets are the execution's parameters (a layer's bills save the checkpoint
# with them many times a second on a farm: no ORM load and flush, no statement built per call).
_UPDATE_JOB = _JOBS.update().where(_JOBS.c.id == bindparam("b_job_id"))


@dataclass(frozen=True)
class JobRecord:
    id: int
    printer: str
    job_key: str
    file_name: str | None
    plate: int | None
    thumbnail: str | None
    state: str
    final: bool
    reason: str | None
    checkpoint: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None


@dataclass
class SpoolUsage(UsedAmounts):
    """What one job used from one spool (or, while unresolved, from one tray or filament)."""

    spool_id: int | None
    tray: int | None
    mm_delivered: float = 0.0
    grams_delivered: float = 0.0
    mm_pending: float = 0.0
    grams_pending: float = 0.0
    mm_rejected: float = 0.0
    estimate: bool = False  # some of it is a pro-rata estimate (a cancel mid-layer)
    doubtful: bool = False  # some delivery could not be settled for certain; see the ledger


@dataclass(frozen=True)
class JobSummary:
    job: JobRecord
    usage: list[SpoolUsage] = field(default_factory=list)

    @property
    def mm(self) -> float:
        return sum(u.mm for u in self.usage)

    @property
    def grams(self) -> float:
        return sum(u.grams for u in self.usage)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values for ``/api/v1/jobs`` and the pages (the checkpoint stays internal)."""
        job = asdict(self.job)
        del job["checkpoint"]
        usage = [{**asdict(u), "mm": u.mm, "grams": u.grams} for u in self.usage]
        return jsonable({**job, "usage": usage, "mm": self.mm, "grams": self.grams})


def _record(row: JobRow) -> JobRecord:
    assert row.id is not None
    return JobRecord(
        row.id,
        row.printer,
        row.job_key,
        row.file_name,
        row.plate,
        row.thumbnail,
        row.state,
        row.final,
        row.reason,
        json.loads(row.checkpoint_json or "{}"),
        row.started_at,
        row.ended_at,
    )


def create_job(
    db: Database,
    printer: str,
    job_key: str,
    *,
    state: str,
    file_name: str | None = None,
    plate: int | None = None,
    thumbnail: str | None = None,
    checkpoint: dict[str, Any] | None = None,
    started_at: datetime | None = None,
) -> JobRecord:
    row = JobRow(
        printer=printer,
        job_key=job_key,
        state=state,
        file_name=file_name,
        plate=plate,
        thumbnail=thumbnail,
        checkpoint_json=json.dumps(checkpoint or {}, separators=(",", ":")),
        started_at=started_at or utcnow(),
    )
    with db.session() as session:
        session.add(row)
        session.commit()
        session.refresh(row)
    return _record(row)


def apply_checkpoint(
    session: Session, job_id: int, checkpoint: dict[str, Any] | None, changes: dict[str, Any]
) -> None:
    """Update a job row inside the caller's transaction (so bills and checkpoint commit together)."""
    unknown = set(changes) - set(_JOB_FIELDS)
    if unknown:
        raise ValueError(f"not a job field: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {**changes, "updated_at": utcnow(), "b_job_id": job_id}
    if checkpoint is not None:
        values["checkpoint_json"] = json.dumps(checkpoint, separators=(",", ":"))
    if session.connection().execute(_UPDATE_JOB, values).rowcount == 0:
        raise LookupError(f"no job {job_id}")


def save_checkpoint(db: Database, job_id: int, checkpoint: dict[str, Any] | None = None, **changes: Any) -> JobRecord:
    """Persist the job's checkpoint and/or columns (``state``, ``final``, ``ended_at`` ...)."""
    with db.session() as session:
        apply_checkpoint(session, job_id, checkpoint, changes)
        session.commit()
        row = session.get(JobRow, job_id)
    assert row is not None  # just updated
    return _record(row)


def get_job(db: Database, job_id: int) -> JobRecord | None:
    with db.session() as session:
        row = session.get(JobRow, job_id)
    return _record(row) if row else None


def open_job(db: Database, printer: str) -> JobRecord | None:
    """The printer's latest job that has not reached a final state (what a restart resumes)."""
    statement = (
        select(JobRow).where(JobRow.printer == printer, col(JobRow.final).is_(False)).order_by(col(JobRow.id).desc())
    )
    with db.session() as session:
        row = session.exec(statement).first()
    return _record(row) if row else None


def list_jobs(db: Database, printer: str | None = None, limit: int = 50, offset: int = 0) -> list[JobSummary]:
    """Newest first, each with grams and mm per spool: delivered, pending and rejected."""
    statement = select(JobRow).order_by(col(JobRow.started_at).desc(), col(JobRow.id).desc())
    if printer is not None:
        statement = statement.where(JobRow.printer == printer)
    statement = statement.offset(offset).limit(limit)
    with db.session() as session:
        jobs = [_record(row) for row in session.exec(statement)]
        usage = _usage(session, [job.id for job in jobs])
    return [JobSummary(job, usage.get(job.id, [])) for job in jobs]


def _usage(session: Session, job_ids: list[int]) -> dict[int, list[SpoolUsage]]:
    if not job_ids:
        return {}
    statement = (
        select(
            LedgerEntry.job_id,
            LedgerEntry.spool_id,
            LedgerEntry.tray,
            LedgerEntry.state,
            LedgerEntry.estimate,
            func.sum(LedgerEntry.mm),
            func.sum(LedgerEntry.grams),
        )
        .where(col(LedgerEntry.job_id).in_(job_ids))
        .group_by(LedgerEntry.job_id, LedgerEntry.spool_id, LedgerEntry.tray, LedgerEntry.state, LedgerEntry.estimate)
    )
    by_job: dict[int, dict[tuple[int | None, int | None], SpoolUsage]] = defaultdict(dict)
    for job_id, spool_id, tray, state, estimate, mm, grams in session.exec(statement):
        # A resolved spool is one line whatever tray it sat in; unresolved bills group by tray.
        key = (spool_id, None if spool_id is not None else tray)
        usage = by_job[job_id].setdefault(key, SpoolUsage(spool_id, tray))
        if state in APPLIED_STATES:
            usage.mm_delivered += mm
            usage.grams_delivered += grams
        elif state in PENDING_STATES:
            usage.mm_pending += mm
            usage.grams_pending += grams
        elif state == REJECTED:
            usage.mm_rejected += mm
        usage.estimate = usage.estimate or bool(estimate)
        usage.doubtful = usage.doubtful or state == DOUBTFUL
    return {
        job_id: sorted(lines.values(), key=lambda u: (u.spool_id is None, u.spool_id or 0, u.tray or 0))
        for job_id, lines in by_job.items()
    }


# ---- the tracker's writes ---------------------------------------------------------------------------------


def key_text(job: JobCheckpoint) -> str:
    """The job row's ``job_key``: the parts of the print's key that are known."""
    key = job.key
    return "|".join(str(part) for part in (key.name, key.plate, key.task_id, key.subtask_id) if part not in (None, ""))


def columns(job: JobCheckpoint) -> dict[str, Any]:
    """The row's columns a checkpoint save changes along with the checkpoint."""
    values: dict[str, Any] = {"state": job.lifecycle}
    if job.final_state is not None:
        values.update(final=True, ended_at=job.ended_at or datetime.now(UTC),
                      reason=job.end_reason or job.untracked_reason)
    elif job.untracked_reason:
        values["reason"] = job.untracked_reason
    return values


def record_manual_tray(db: Database, printer: str, job_id: int, filament_index: int, tray: int) -> None:
    """A person's tray for a job that is not the tracker's current one (an ended job, perhaps still to
    be billed from its file): kept in its checkpoint all the same."""
    record = get_job(db, job_id)
    if record is None or record.printer != printer:
        raise LookupError(f"printer {printer} has no job {job_id}")
    if record.checkpoint:
        job = JobCheckpoint.from_dict(record.checkpoint)
        job = replace(job, manual={**job.manual, filament_index: tray})
        save_checkpoint(db, job_id, job.to_dict())
