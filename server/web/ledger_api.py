"""JSON API for the ledger: per-spool usage logs, job pages, what needs a person, corrections.

The handlers are mounted under /api/v1 by ``api.router``; the pages in ``ledger_pages.py`` call
the same functions in ``server/web/ledger_actions.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_404_NOT_FOUND, HTTP_409_CONFLICT

from server.billing import attention, errors, statements
from server.db.models import jsonable
from server.runtime import Runtime
from server.web import ledger_actions
from server.web.ledger_actions import MAX_ID, Id, OptionalId, SelectorIn


@get("/spools/{spool_id:int}/ledger")
async def spool_ledger(
    runtime: Runtime,
    spool_id: Annotated[int, Parameter(ge=0, le=MAX_ID)],
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    offset: Annotated[int, Parameter(ge=0, le=MAX_ID)] = 0,
    job: Annotated[int | None, Parameter(ge=0, le=MAX_ID, description="only this job's entries")] = None,
) -> dict[str, Any]:
    """Every ledger entry billed to the spool, newest first: job, plate, layer, filament (1-based), mm, g,
    state, when delivered. Corrections are ``kind`` refund/charge, with ``pair_id`` naming the other half."""
    view = await ledger_actions.spool_log(runtime, spool_id, limit=limit, offset=offset, job_id=job)
    if view is None:
        raise NotFoundException(f"spool {spool_id} has no ledger entries and Spoolman does not know it")
    log = view.log
    return jsonable({
        "spool_id": spool_id,
        "spool": asdict(view.spool) if view.spool else None,
        "archived": view.archived,
        "spoolman_error": view.spoolman_error,
        "job_id": job,
        "total": log.total,
        "limit": log.limit,
        "offset": log.offset,
        "totals": asdict(log.totals),
        "items": [asdict(item) for item in log.items],
    })


def job_json(detail: statements.JobDetail) -> dict[str, Any]:
    data = asdict(detail)
    data["mm"], data["grams"] = detail.mm, detail.grams
    data["thumbnail"] = f"/api/v1/jobs/{detail.id}/thumbnail.png" if detail.thumbnail else None
    data["parts"] = [{**asdict(p), "mm": p.mm, "grams": p.grams, "tray_labels": p.tray_labels,
                      "ledger": f"/api/v1/spools/{p.spool_id}/ledger?job={detail.id}" if p.spool_id else None}
                     for p in detail.parts]
    return jsonable(data)


@get("/jobs/{job_id:int}")
async def get_job(runtime: Runtime, job_id: Annotated[int, Parameter(ge=0, le=MAX_ID)]) -> dict[str, Any]:
    """One job with what it billed per spool (delivered, queued, stuck, corrected); layers are summed."""
    detail = await asyncio.to_thread(statements.job_detail, runtime.db, job_id)
    if detail is None:
        raise NotFoundException(f"no job {job_id}")
    return job_json(detail)


def group_json(group: attention.AttentionGroup) -> dict[str, Any]:
    data = asdict(group)
    data["key"] = group.key
    return jsonable(data)


@get("/attention")
async def get_attention(runtime: Runtime) -> dict[str, Any]:
    """Every bill not delivered that needs a person, grouped, each group with its reason in words and the
    actions that apply (``selector`` is what the action routes take back)."""
    found = await asyncio.to_thread(attention.attention, runtime.db)
    return {"count": found.count, "groups": [group_json(g) for g in found.groups]}


@dataclass
class TrayIn:
    job_id: Id
    filament_index: Id  # 0-based, as in the group's selector (the group also shows ``filament``, 1-based)
    tray: Id


@dataclass
class RepointIn(SelectorIn):
    """A group's ``selector`` fields plus ``to_spool_id``, the spool to send its bills to (required)."""

    to_spool_id: OptionalId = None


@dataclass
class Done:
    changed: int
    message: str


@post("/attention/tray", status_code=200)
async def attention_tray(runtime: Runtime, data: TrayIn) -> Done:
    """Say which tray fed a filament of a job: its waiting bills go to that tray's spool."""
    changed, message = await ledger_actions.state_tray(runtime, data.job_id, data.filament_index, data.tray)
    return Done(changed, message)


@post("/attention/repoint", status_code=200)
async def attention_repoint(runtime: Runtime, data: RepointIn) -> Done:
    """Send a group's rejected or waiting bills to another spool."""
    if data.to_spool_id is None:
        raise errors.AttentionError("to_spool_id is required: the spool to send the bills to")
    changed, message = await ledger_actions.repoint(runtime, data.selector(), data.to_spool_id)
    return Done(changed, message)


@post("/attention/retry", status_code=200)
async def attention_retry(runtime: Runtime, data: SelectorIn) -> Done:
    """Send again: rejected bills to the same spool, a doubtful request as not applied."""
    changed, message = await ledger_actions.retry(runtime, data.selector())
    return Done(changed, message)


@post("/attention/confirm", status_code=200)
async def attention_confirm(runtime: Runtime, data: SelectorIn) -> Done:
    """A doubtful request was applied after all: its bills count as delivered."""
    changed, message = await ledger_actions.confirm(runtime, data.selector())
    return Done(changed, message)


@dataclass
class CorrectionIn:
    job_id: Id
    from_spool_id: Id
    to_spool_id: Id
    confirm: bool = False
    refund_mm: float | None = None  # default: everything, or (preview) what the old spool can give back


@post("/corrections", status_code=200)
async def post_correction(runtime: Runtime, data: CorrectionIn) -> Response[dict[str, Any]]:
    """Move a job's usage from one spool to another: ``confirm: false`` previews (reads the old spool in
    Spoolman; says when a full refund would floor it at 0), ``confirm: true`` writes the refund and charge."""
    if data.confirm:
        done = await ledger_actions.correct(runtime, data.job_id, data.from_spool_id, data.to_spool_id,
                                            data.refund_mm)
        return Response(jsonable({"plan": asdict(done.plan), "refund_id": done.refund_id,
                                  "charge_id": done.charge_id}), status_code=201)
    plan = await ledger_actions.preview(runtime, data.job_id, data.from_spool_id, data.to_spool_id, data.refund_mm)
    return Response(jsonable({"plan": asdict(plan)}), status_code=200)


def _message(status: int, exc: Exception) -> Response[dict[str, str]]:
    return Response({"message": str(exc)}, status_code=status)


def _bad(_request: Request, exc: Exception) -> Response[dict[str, str]]:
    return _message(HTTP_400_BAD_REQUEST, exc)


def _missing(_request: Request, exc: Exception) -> Response[dict[str, str]]:
    return _message(HTTP_404_NOT_FOUND, exc)


def _conflict(_request: Request, exc: Exception) -> Response[dict[str, str]]:
    return _message(HTTP_409_CONFLICT, exc)


exception_handlers: dict[type[Exception], Any] = {
    errors.AttentionError: _bad,
    errors.NothingToDo: _missing,
    errors.CorrectionError: _bad,
    errors.CorrectionConflict: _conflict,
    errors.UnknownJob: _missing,
    errors.UnknownSpool: _missing,
    ledger_actions.NotConfigured: lambda _r, exc: _message(503, exc),
}

handlers = [spool_ledger, get_job, get_attention, attention_tray, attention_repoint, attention_retry,
            attention_confirm, post_correction]
