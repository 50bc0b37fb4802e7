"""What the ledger API and pages do, in one place: read the ledger with Spoolman's view of the spool,
and apply a person's decision, then wake the outbox and tell open pages."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta

from server.billing import attention, corrections, ledger, statements
from server.billing.attention import Selector
from server.billing.settlement import WAITING_TRAY
from server.events import Event
from server.jobs import store as job_store
from server.runtime import Runtime
from server.slots.service import validate_tray
from server.spoolman import SpoolmanError, SpoolmanUnreachable
from server.web.i18n import Translator, english
from server.web.views import SlotOut, SpoolOut, all_slots, printer_out

# Ids and indexes as SQLite can hold them: a larger number is bad input (400), never a 500 from the driver.
MAX_ID = 2**63 - 1
Id = Annotated[int, Meta(ge=0, le=MAX_ID)]
OptionalId = Annotated[int, Meta(ge=0, le=MAX_ID)] | None


class NotConfigured(RuntimeError):
    """Spoolman is not configured: nothing can be read or sent."""


@dataclass
class SelectorIn:
    """A group of bills, as ``GET /attention`` hands it out in each group's ``selector``."""

    job_id: Id
    state: str
    filament_index: OptionalId = None
    tray: OptionalId = None
    spool_id: OptionalId = None
    delivery_id: OptionalId = None

    def selector(self) -> Selector:
        return Selector(self.job_id, self.state, self.filament_index, self.tray, self.spool_id, self.delivery_id)


@dataclass
class SpoolLogView:
    log: statements.SpoolLog
    spool: SpoolOut | None
    archived: bool
    missing: bool  # Spoolman says there is no such spool (deleted)
    spoolman_error: str | None


async def spool_log(runtime: Runtime, spool_id: int, *, limit: int = 50, offset: int = 0,
                    job_id: int | None = None) -> SpoolLogView | None:
    """The spool's log page with the spool's details; None when neither the ledger nor Spoolman know it."""
    log = await asyncio.to_thread(statements.spool_log, runtime.db, spool_id, limit=limit, offset=offset,
                                  job_id=job_id)
    spool, error = None, None
    try:
        found = await runtime.spools.get(spool_id)
        spool = SpoolOut.of(found) if found is not None else None
    except SpoolmanError as exc:
        error = "Spoolman cannot be reached right now" if isinstance(exc, SpoolmanUnreachable) else str(exc)
    missing = spool is None and error is None
    if log.total == 0 and job_id is None and spool is None and error is None:
        return None
    return SpoolLogView(log, spool, bool(spool and spool.archived), missing, error)


def _announce(runtime: Runtime, printer: str | None, **data: object) -> None:
    runtime.bus.publish(Event("ledger", printer, dict(data)))


def _wake(runtime: Runtime) -> None:
    if runtime.outbox is not None:
        runtime.outbox.wake()


async def state_tray(runtime: Runtime, job_id: int, filament_index: int, tray: int,
                     _: Translator = english) -> tuple[int, str]:
    """A person says which tray fed a filament: the open job's tracker learns it (and bills later layers
    there); for an ended job its waiting bills take that tray's current spool."""
    validate_tray(tray)
    await asyncio.to_thread(attention.waiting_tray, runtime.db, job_id, filament_index)
    job = await asyncio.to_thread(job_store.get_job, runtime.db, job_id)
    assert job is not None  # waiting_tray found its bills
    task = runtime.printers.get(job.printer)
    tracker = task.jobs if task is not None else None
    stated = getattr(tracker, "state_tray", None)  # JobTracker.state_tray (issue 9): the open job learns it
    if tracker is not None and stated is not None and tracker.job_id == job_id and tracker.job is not None \
            and tracker.job.open:
        changed = int(await stated(job_id, filament_index, tray))
    else:
        changed = await asyncio.to_thread(ledger.on_mapping_learned, runtime.db, job_id, filament_index, tray)
    _wake(runtime)
    _announce(runtime, job.printer, job_id=job_id)
    label = statements.tray_label(tray)
    return changed, _.ngettext("Filament %(n)s came from tray %(tray)s: %(num)s bill released.",
                               "Filament %(n)s came from tray %(tray)s: %(num)s bills released.", changed,
                               n=filament_index + 1, tray=label)


async def _check_spool(runtime: Runtime, spool_id: int) -> None:
    if runtime.spoolman is None:
        raise NotConfigured("Spoolman is not configured")
    if await runtime.spools.get(spool_id) is None:
        raise corrections.UnknownSpool(f"Spoolman has no spool {spool_id}")


async def repoint(runtime: Runtime, selector: Selector, spool_id: int, _: Translator = english) -> tuple[int, str]:
    await _check_spool(runtime, spool_id)
    changed = await asyncio.to_thread(attention.repoint, runtime.db, selector, spool_id)
    _wake(runtime)
    _announce(runtime, None, job_id=selector.job_id)
    return changed, _.ngettext("%(num)s bill sent to spool #%(id)s.", "%(num)s bills sent to spool #%(id)s.", changed,
                               id=spool_id)


async def retry(runtime: Runtime, selector: Selector, _: Translator = english) -> tuple[int, str]:
    changed = await asyncio.to_thread(attention.retry, runtime.db, selector)
    _wake(runtime)
    _announce(runtime, None, job_id=selector.job_id)
    return changed, _.ngettext("%(num)s bill will be sent again.", "%(num)s bills will be sent again.", changed)


async def confirm(runtime: Runtime, selector: Selector, _: Translator = english) -> tuple[int, str]:
    changed = await asyncio.to_thread(attention.confirm, runtime.db, selector)
    _announce(runtime, None, job_id=selector.job_id)
    return changed, _.ngettext("%(num)s bill confirmed as applied.", "%(num)s bills confirmed as applied.", changed)


def _client(runtime: Runtime) -> corrections.SpoolReader:
    if runtime.spoolman is None:
        raise NotConfigured("Spoolman is not configured")
    return runtime.spoolman


async def preview(runtime: Runtime, job_id: int, from_spool_id: int, to_spool_id: int,
                  refund_mm: float | None = None) -> corrections.CorrectionPlan:
    return await corrections.preview(runtime.db, _client(runtime), job_id, from_spool_id, to_spool_id, refund_mm)


async def correct(runtime: Runtime, job_id: int, from_spool_id: int, to_spool_id: int,
                  refund_mm: float | None = None) -> corrections.Correction:
    done = await corrections.confirm(runtime.db, _client(runtime), job_id, from_spool_id, to_spool_id, refund_mm)
    _wake(runtime)
    _announce(runtime, None, job_id=job_id)
    return done


async def tray_choices(runtime: Runtime, printers: set[str]) -> dict[str, list[SlotOut]]:
    """The trays a person can pick from, per printer (for "which tray fed filament n?")."""
    choices = {}
    for name in sorted(printers):
        task = runtime.printers.get(name)
        if task is not None:
            choices[name] = all_slots(await printer_out(runtime, task))
    return choices


async def badge_context(runtime: Runtime) -> dict[str, object]:
    """The dashboard's badge (how many groups need a person) and its open questions: Layerwise never
    guesses a tray, it asks there, one tap to answer."""
    count = await asyncio.to_thread(attention.attention_groups_count, runtime.db)
    questions = []
    if count:
        questions = (await asyncio.to_thread(attention.attention, runtime.db, (WAITING_TRAY,))).groups
    return {"attention_count": count, "questions": questions,
            "trays": await tray_choices(runtime, {g.printer for g in questions})}
