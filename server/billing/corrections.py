"""Corrections: move a job's usage from the spool that was wrongly in the slot to the right one.

A correction is a pair of ledger entries, written in one transaction: a *refund* (negative mm)
on the old spool and a *charge* on the new one, each naming the other (``pair_id``). Both are
``ready`` with their spool fixed and no tray, so the outbox delivers them exactly once like any
other bill, and both show in the spools' logs.

Spoolman floors ``used_weight`` at 0, so a refund larger than what the old spool has used
would silently vanish in part. The old spool is read fresh from Spoolman first; if it has used
less than the refund, the plan says so and proposes to refund only what it has
(:func:`refund_limit`, pure). Confirming re-reads it and refuses a refund that would floor.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func
from sqlmodel import col, select

from server.analysis.filament import grams
from server.billing.errors import CorrectionConflict, CorrectionError, UnknownJob, UnknownSpool
from server.billing.ledger import write_session
from server.billing.settlement import APPLIED_STATES, READY, SENDING, tolerance
from server.billing.statements import CHARGE, REFUND, job_name
from server.db import Database
from server.db.ledger_tables import JobRow, LedgerEntry
from server.db.models import utcnow
from server.spoolman import Spool, SpoolmanNotFound

# Usage that is on the old spool, or will be by itself: delivered, counted as applied, or queued.
ON_SPOOL_STATES = (*APPLIED_STATES, READY, SENDING)
MM_STEP = 0.01  # a proposed partial refund is rounded down to this, so it never floors the spool


class SpoolReader(Protocol):
    async def get_spool(self, spool_id: int) -> Spool: ...


def grams_per_mm(spool: Spool) -> float:
    return grams(1.0, spool.filament.diameter, spool.filament.density)


def refund_limit(mm: float, used_weight: float, g_per_mm: float) -> tuple[float, bool]:
    """The refund that keeps the spool at or above zero used, and whether that is less than ``mm``."""
    if mm <= 0 or g_per_mm <= 0:
        return max(mm, 0.0), False
    if mm * g_per_mm <= used_weight + tolerance(used_weight):
        return mm, False
    most = math.floor(max(used_weight, 0.0) / g_per_mm / MM_STEP) * MM_STEP
    return min(most, mm), True


@dataclass(frozen=True)
class Movable:
    job_name: str
    printer: str
    mm: float
    grams: float
    filament_index: int


def movable(db: Database, job_id: int, spool_id: int) -> Movable:
    """What ``job_id`` put (net, corrections included) on ``spool_id``: the most a correction can move."""
    with db.session() as session:
        job = session.get(JobRow, job_id)
        if job is None:
            raise UnknownJob(f"no job {job_id}")
        mm, grams = session.exec(
            select(func.sum(LedgerEntry.mm), func.sum(LedgerEntry.grams)).where(
                LedgerEntry.job_id == job_id, LedgerEntry.spool_id == spool_id,
                col(LedgerEntry.state).in_(ON_SPOOL_STATES))
        ).one()
        filament = session.exec(
            select(LedgerEntry.filament_index).where(LedgerEntry.job_id == job_id, LedgerEntry.spool_id == spool_id,
                                                     LedgerEntry.kind == "bill")
            .group_by(LedgerEntry.filament_index).order_by(func.sum(LedgerEntry.mm).desc())
        ).first()
    return Movable(job_name(job.file_name, job.job_key), job.printer, float(mm or 0.0), float(grams or 0.0),
                   int(filament or 0))


@dataclass(frozen=True)
class CorrectionPlan:
    job_id: int
    job_name: str
    from_spool_id: int
    to_spool_id: int
    mm: float  # what the job put on the old spool: the charge on the new one
    grams: float
    refund_mm: float  # what goes back to the old spool (≤ mm)
    refund_g: float
    refund_limit_mm: float  # the most the old spool can take back without flooring at 0
    from_used_weight: float | None  # None: Spoolman no longer knows the old spool
    floored: bool  # refunding all of ``mm`` would take the old spool below zero used
    charge_mm: float
    charge_g: float
    message: str


def plan(move: Movable, job_id: int, from_spool_id: int, to_spool_id: int, old: Spool | None, new: Spool,
         refund_mm: float | None = None) -> CorrectionPlan:
    """The correction as it would be written (pure); ``refund_mm`` asks for a smaller refund."""
    if refund_mm is not None and not (math.isfinite(refund_mm) and 0 <= refund_mm <= move.mm + 1e-9):
        raise CorrectionError(f"refund_mm must be between 0 and {move.mm:.2f} mm")
    if old is None:
        limit, floored, used, per_mm = 0.0, move.mm > 0, None, 0.0
    else:
        per_mm = grams_per_mm(old)
        limit, floored = refund_limit(move.mm, old.used_weight, per_mm)
        used = old.used_weight
    refund = limit if refund_mm is None else min(refund_mm, move.mm)
    charge_g = move.mm * grams_per_mm(new)
    name = move.job_name
    if old is None:
        message = (f"Spoolman has no spool #{from_spool_id} any more: nothing can be refunded to it. "
                   f"Spool #{to_spool_id} is charged {move.mm:.1f} mm.")
    elif floored:
        message = (f"Spool #{from_spool_id} has only {used:.2f} g used in Spoolman, less than the "
                   f"{move.mm * per_mm:.2f} g {name} put on it: Spoolman would stop at 0. Refund only "
                   f"{limit:.1f} mm ({limit * per_mm:.2f} g), what it has; spool #{to_spool_id} is charged "
                   f"all {move.mm:.1f} mm.")
    else:
        message = (f"{move.mm:.1f} mm of {name} move from spool #{from_spool_id} to spool #{to_spool_id}: a refund "
                   f"of {refund * per_mm:.2f} g on #{from_spool_id}, a charge of {charge_g:.2f} g on #{to_spool_id}.")
    return CorrectionPlan(job_id, name, from_spool_id, to_spool_id, move.mm, move.grams, refund, refund * per_mm,
                          limit, used, floored, move.mm, charge_g, message)


async def _spool(reader: SpoolReader, spool_id: int) -> Spool | None:
    try:
        return await reader.get_spool(spool_id)
    except SpoolmanNotFound:
        return None


async def _gather(db: Database, reader: SpoolReader, job_id: int, from_spool_id: int,
                  to_spool_id: int) -> tuple[Movable, Spool | None, Spool]:
    if from_spool_id == to_spool_id:
        raise CorrectionError("the old and the new spool are the same spool")
    move = await asyncio.to_thread(movable, db, job_id, from_spool_id)
    if move.mm <= 0:
        raise CorrectionConflict(f"{move.job_name} has no usage on spool #{from_spool_id} to move")
    new = await _spool(reader, to_spool_id)
    if new is None:
        raise UnknownSpool(f"Spoolman has no spool {to_spool_id}")
    return move, await _spool(reader, from_spool_id), new


async def preview(db: Database, reader: SpoolReader, job_id: int, from_spool_id: int, to_spool_id: int,
                  refund_mm: float | None = None) -> CorrectionPlan:
    """Read both spools from Spoolman now and say what a correction would do (nothing is written)."""
    move, old, new = await _gather(db, reader, job_id, from_spool_id, to_spool_id)
    return plan(move, job_id, from_spool_id, to_spool_id, old, new, refund_mm)


@dataclass(frozen=True)
class Correction:
    plan: CorrectionPlan
    refund_id: int | None
    charge_id: int


async def confirm(db: Database, reader: SpoolReader, job_id: int, from_spool_id: int, to_spool_id: int,
                  refund_mm: float | None = None) -> Correction:
    """Write the pair after reading both spools again. ``refund_mm`` (default: all of it) must not take
    the old spool below zero used; with the old spool gone from Spoolman only ``refund_mm = 0`` works."""
    move, old, new = await _gather(db, reader, job_id, from_spool_id, to_spool_id)
    wanted = move.mm if refund_mm is None else refund_mm
    checked = plan(move, job_id, from_spool_id, to_spool_id, old, new, wanted)
    if old is None and wanted > 0:
        raise CorrectionConflict(checked.message + " Confirm with refund_mm = 0 to charge the new spool alone.")
    if old is not None and wanted > checked.refund_limit_mm + 1e-9:
        raise CorrectionConflict(checked.message)
    refund_id, charge_id = await asyncio.to_thread(
        record, db, job_id, from_spool_id, to_spool_id, checked.refund_mm, checked.refund_g, checked.charge_mm,
        checked.charge_g)
    return Correction(checked, refund_id, charge_id)


def record(db: Database, job_id: int, from_spool_id: int, to_spool_id: int, refund_mm: float, refund_g: float,
           charge_mm: float, charge_g: float) -> tuple[int | None, int]:
    """Write the refund and the charge in one transaction; re-checks that the usage is still there."""
    now = utcnow()
    # The write lock before reading: two people confirming the same correction at once write it once.
    with write_session(db) as session:
        job = session.get(JobRow, job_id)
        if job is None:
            raise UnknownJob(f"no job {job_id}")
        on_spool = session.exec(
            select(func.sum(LedgerEntry.mm)).where(LedgerEntry.job_id == job_id, LedgerEntry.spool_id == from_spool_id,
                                                   col(LedgerEntry.state).in_(ON_SPOOL_STATES))
        ).one() or 0.0
        if on_spool + 1e-6 < charge_mm:
            raise CorrectionConflict(f"the usage of job {job_id} on spool #{from_spool_id} changed meanwhile: "
                                     "look at the preview again")
        common = {"job_id": job_id, "printer": job.printer, "layer": 0, "filament_index": 0, "tray": None,
                  "estimate": False, "state": READY, "created_at": now, "updated_at": now}
        refund = None
        if refund_mm > 0:
            refund = LedgerEntry(kind=REFUND, spool_id=from_spool_id, mm=-refund_mm, grams=-refund_g, **common)
            session.add(refund)
        charge = LedgerEntry(kind=CHARGE, spool_id=to_spool_id, mm=charge_mm, grams=charge_g, **common)
        session.add(charge)
        session.flush()
        if refund is not None:
            refund.pair_id, charge.pair_id = charge.id, refund.id
            session.add(refund)
            session.add(charge)
        session.commit()
        assert charge.id is not None
        return (refund.id if refund is not None else None), charge.id
