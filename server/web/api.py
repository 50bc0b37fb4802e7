"""JSON API under /api/v1: the same services the pages use."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Request, Response, Router, delete, get, post, put
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Parameter
from litestar.response import File
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_404_NOT_FOUND, HTTP_409_CONFLICT

from server.jobs import store as job_store
from server.jobs.files import THUMBNAIL_FILE
from server.printer.task import PrinterTask
from server.runtime import Runtime
from server.slots.errors import InvalidTray, SlotError, SpoolElsewhere, SpoolNotFound, UnknownPrinter
from server.slots.rfid_service import RfidConflict, RfidService, TagOffer
from server.slots.service import validate_tray
from server.spoolman import SpoolmanError, SpoolmanUnreachable
from server.web import ledger_api
from server.web.ledger_actions import MAX_ID
from server.web.views import PrinterOut, SlotOut, SpoolOut, all_slots, printer_out


@dataclass
class AssignIn:
    spool_id: int
    move: bool = False


@dataclass
class SpoolPage:
    items: list[SpoolOut]
    total: int
    limit: int
    offset: int


def _task(runtime: Runtime, name: str) -> PrinterTask:
    try:
        return runtime.printers[name]
    except KeyError:
        raise NotFoundException(f"no printer named {name!r}") from None


@get("/printers")
async def list_printers(runtime: Runtime) -> list[PrinterOut]:
    return [await printer_out(runtime, task) for task in runtime.printers.values()]


@get("/printers/{name:str}")
async def get_printer(runtime: Runtime, name: str) -> PrinterOut:
    return await printer_out(runtime, _task(runtime, name))


@get("/printers/{name:str}/slots")
async def list_slots(runtime: Runtime, name: str) -> list[SlotOut]:
    return all_slots(await printer_out(runtime, _task(runtime, name)))


@get("/printers/{name:str}/slots/{tray:int}")
async def get_slot(runtime: Runtime, name: str, tray: int) -> SlotOut:
    """One slot: what the printer reports there and the spool assigned to it. 404 for a tray the printer
    has not reported and no spool is assigned to."""
    validate_tray(tray)
    for slot in all_slots(await printer_out(runtime, _task(runtime, name))):
        if slot.tray == tray:
            return slot
    slot = await _slot_after(runtime, name, tray)  # a tray not reported (yet) that a spool is assigned to
    if slot.spool_id is None:
        raise NotFoundException(f"printer {name!r} has no tray {tray}")
    return slot


@put("/printers/{name:str}/slots/{tray:int}")
async def assign_slot(runtime: Runtime, name: str, tray: int, data: AssignIn) -> SlotOut:
    await runtime.slots.assign(name, tray, data.spool_id, move=data.move)
    return await _slot_after(runtime, name, tray)


@delete("/printers/{name:str}/slots/{tray:int}", status_code=204)
async def unassign_slot(runtime: Runtime, name: str, tray: int) -> None:
    await runtime.slots.unassign(name, tray)


@get("/spools")
async def search_spools(
    runtime: Runtime,
    search: Annotated[str | None, Parameter(description="words matched against id, name, "
                                            "material, vendor, colour, location")] = None,
    limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    offset: Annotated[int, Parameter(ge=0, le=MAX_ID)] = 0,
) -> SpoolPage:
    """Spoolman's spools (archived hidden), for picking one for a slot."""
    if runtime.spoolman is None:
        raise HTTPException(status_code=503, detail="Spoolman is not configured")
    page = await runtime.spoolman.list_spools(search=search or None, limit=limit, offset=offset)
    return SpoolPage([SpoolOut.of(s) for s in page.items], page.total, limit, offset)


async def _slot_after(runtime: Runtime, name: str, tray: int) -> SlotOut:
    for slot in all_slots(await printer_out(runtime, _task(runtime, name))):
        if slot.tray == tray:
            return slot
    # A tray the printer has not reported (yet): still show the assignment.
    assignment = next((a for a in await runtime.slots.assignments(name) if a.tray == tray), None)
    return SlotOut(name, tray, str(tray), None, None, False, False, None, None, None, None,
                   assignment.spool_id if assignment else None, assignment.source if assignment else None)


@get("/jobs")
async def list_jobs(
    runtime: Runtime,
    printer: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    offset: Annotated[int, Parameter(ge=0, le=MAX_ID)] = 0,
) -> list[dict[str, Any]]:
    """Jobs, newest first, with millimetres and grams per spool (delivered, pending, rejected)."""
    jobs = await asyncio.to_thread(job_store.list_jobs, runtime.db, printer, limit, offset)
    return [job.to_dict() for job in jobs]


@get("/backlog")
async def backlog(runtime: Runtime) -> dict[str, Any]:
    """Bills not yet in Spoolman: queued per spool, waiting for a tray or spool, rejected, doubtful."""
    if runtime.outbox is None:
        raise HTTPException(status_code=503, detail="Spoolman is not configured")
    return (await runtime.outbox.backlog()).to_dict()


# No media_type here: File sets image/png itself, and a 404 must stay JSON labelled as JSON.
@get("/jobs/{job_id:int}/thumbnail.png")
async def job_thumbnail(runtime: Runtime, job_id: int) -> File:
    """The plate thumbnail from the job's sliced file."""
    path = runtime.settings.server.data_dir / "jobs" / str(job_id) / THUMBNAIL_FILE
    if not path.is_file():
        raise NotFoundException(f"job {job_id} has no thumbnail")
    # A job's plate never changes; private: it is behind access control.
    return File(path, media_type="image/png", content_disposition_type="inline",
                headers={"Cache-Control": "private, max-age=86400"})


@dataclass
class ResolveIn:
    use: Literal["tag", "manual"]


@dataclass
class RememberTagIn:
    spool_id: int


@get("/printers/{name:str}/rfid/conflicts")
async def rfid_conflicts(runtime: Runtime, name: str) -> list[RfidConflict]:
    """Trays whose RFID tag names another spool than the one assigned by hand: the user decides."""
    _task(runtime, name)
    return await _rfid(runtime).conflicts(name)


@post("/printers/{name:str}/slots/{tray:int}/rfid/resolve", status_code=200)
async def rfid_resolve(runtime: Runtime, name: str, tray: int, data: ResolveIn) -> SlotOut:
    """Settle a conflict: ``tag`` assigns the tag's spool, ``manual`` keeps the hand-picked one."""
    _task(runtime, name)
    await _rfid(runtime).resolve_conflict(name, tray, data.use)
    return await _slot_after(runtime, name, tray)


@get("/printers/{name:str}/slots/{tray:int}/rfid/offer")
async def rfid_offer(runtime: Runtime, name: str, tray: int) -> TagOffer | None:
    """When a tray's tag is on no spool yet: offer to remember it on the spool assigned by hand."""
    _task(runtime, name)
    return await _rfid(runtime).tag_offer(name, tray)


@post("/printers/{name:str}/slots/{tray:int}/rfid/remember", status_code=204)
async def rfid_remember(runtime: Runtime, name: str, tray: int, data: RememberTagIn) -> None:
    """Store the tray's tag on the spool, so the next time it matches by itself."""
    _task(runtime, name)
    await _rfid(runtime).remember_tag(name, tray, data.spool_id)


def _rfid(runtime: Runtime) -> RfidService:
    if runtime.rfid is None:
        raise HTTPException(status_code=503, detail="RFID matching is not running")
    return runtime.rfid


def _error(status: int, message: str) -> Response[dict[str, str]]:
    return Response({"message": message}, status_code=status)


def _slot_error(_request: Request, exc: SlotError) -> Response[dict[str, str]]:
    if isinstance(exc, UnknownPrinter | SpoolNotFound):
        return _error(HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, SpoolElsewhere):
        return Response({"message": str(exc), "printer": exc.printer, "tray": exc.tray},
                        status_code=HTTP_409_CONFLICT)
    if isinstance(exc, InvalidTray):
        return _error(HTTP_400_BAD_REQUEST, str(exc))
    return _error(HTTP_400_BAD_REQUEST, str(exc))


def _spoolman_error(_request: Request, exc: SpoolmanError) -> Response[dict[str, str]]:
    if isinstance(exc, SpoolmanUnreachable):
        return _error(503, f"Spoolman is unreachable: {exc}")
    return _error(502, f"Spoolman refused the request: {exc}")


exception_handlers = {SlotError: _slot_error, SpoolmanError: _spoolman_error, **ledger_api.exception_handlers}

router = Router(
    path="/api/v1",
    route_handlers=[list_printers, get_printer, list_slots, assign_slot, unassign_slot, search_spools, list_jobs,
                    backlog, job_thumbnail, rfid_conflicts, rfid_resolve, rfid_offer, rfid_remember, get_slot,
                    *ledger_api.handlers],
    tags=["layerwise"],
)
