"""Ledger pages: what needs attention (with one-tap actions), per-spool usage logs, job pages and the
correction flow. Server-rendered; actions go through the same functions as the JSON API
(``ledger_actions``) and through the pages' CSRF guard.

Like the slot dialog's partials, action answers are 200 with a plain-words message when something
cannot be done: htmx only swaps successful responses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Response, Template

from server.billing import attention, errors, statements
from server.billing.attention import Selector
from server.runtime import Runtime
from server.slots.errors import SlotError
from server.spoolman import SpoolmanError
from server.web import csrf, ledger_actions
from server.web.history import job_state_words
from server.web.i18n import N_, gettext_for
from server.web.ledger_actions import MAX_ID, Id, NotConfigured, SelectorIn
from server.web.pages import _context, _notice, _partial, _search, _spoolman_problem
from server.web.views import SpoolOut

LOG_PAGE = 50
PathId = Annotated[int, Parameter(ge=0, le=MAX_ID)]
# What a person can be told when an action cannot be done (anything else is a bug and goes up).
_EXPECTED = (errors.AttentionError, errors.NothingToDo, errors.CorrectionError, errors.UnknownJob,
             errors.UnknownSpool, SlotError, NotConfigured)

# Marked here (N_), translated where shown (the ``translate`` filter).
REASON_TITLES = {
    "waiting_tray": N_("Which tray?"),
    "waiting_spool": N_("Waiting for a spool"),
    "rejected": N_("Rejected by Spoolman"),
    "doubtful": N_("Doubtful"),
}


def _page(request: Request, name: str, *, status: int = 200, **values: Any) -> Template:
    """A full page whose forms may POST: it carries the CSRF token (cookie + header), like the dashboard."""
    token = csrf.usable_token(request.cookies.get(csrf.COOKIE_NAME)) or csrf.new_token()
    return Template(
        name,
        status_code=status,
        context=_context(request, page_token=token, **values),
        cookies=[csrf.token_cookie(token, secure=request.url.scheme == "https")],
        headers={"Cache-Control": "no-store"},
    )


def _problem(request: Request, exc: Exception) -> Template:
    if isinstance(exc, SpoolmanError):
        return _notice(request, _spoolman_problem(exc, request))
    message = str(exc.args[0]) if isinstance(exc, LookupError) and exc.args else str(exc)
    return _notice(request, message[:1].upper() + message[1:] + ("" if message.endswith(".") else "."))


def _done(request: Request, message: str, printer: str | None = None) -> Template:
    """Success: the page closes the dialog (if open), says so and reloads the lists (HX-Trigger)."""
    template = _notice(request, message, level="ok")
    template.headers["HX-Reswap"] = "none"
    template.headers["HX-Trigger"] = json.dumps({"layerwise:changed": {"printer": printer, "message": message}})
    return template


async def _act(request: Request, action: Awaitable[tuple[int, str]]) -> Template:
    """Run a person's decision: done (the page reloads its lists), or why not, in words."""
    try:
        _count, message = await action
    except (*_EXPECTED, SpoolmanError) as exc:
        return _problem(request, exc)
    return _done(request, message)


def selector_vals(selector: Selector) -> dict[str, Any]:
    """A group's selector as form values (None left out: a form has no null)."""
    return {k: v for k, v in asdict(selector).items() if v is not None}


# ----- needs attention ---------------------------------------------------------------------------


async def _attention_context(runtime: Runtime) -> dict[str, Any]:
    found = await asyncio.to_thread(attention.attention, runtime.db)
    asking = {g.printer for g in found.groups if g.reason == "waiting_tray"}
    return {"attention": found, "trays": await ledger_actions.tray_choices(runtime, asking), "vals": selector_vals,
            "known_printers": set(runtime.printers), "reason_titles": REASON_TITLES}


@get("/attention", include_in_schema=False)
async def attention_page(runtime: Runtime, request: Request) -> Template:
    return _page(request, "attention.html", **await _attention_context(runtime))


@get("/attention/list", include_in_schema=False)
async def attention_list(runtime: Runtime, request: Request) -> Template:
    return _partial(request, "partials/attention_list.html", **await _attention_context(runtime))


@get("/attention/badge", include_in_schema=False)
async def attention_badge(runtime: Runtime, request: Request) -> Template:
    return _partial(request, "partials/attention_badge.html", **await ledger_actions.badge_context(runtime))


def _selector_from_query(query: dict[str, str]) -> Selector | None:
    try:
        def number(key: str) -> int | None:
            value = int(query[key]) if query.get(key) not in (None, "") else None
            if value is not None and not 0 <= value <= MAX_ID:
                raise ValueError(key)
            return value

        job_id = number("job_id")
        if job_id is None or not query.get("state"):
            return None
        return Selector(job_id, query["state"], number("filament_index"), number("tray"), number("spool_id"),
                        number("delivery_id"))
    except ValueError:
        return None


def _repoint_picker(selector: Selector) -> dict[str, Any]:
    vals = selector_vals(selector)
    return {"url": "/attention/repoint", "method": "post", "vals": vals, "label": N_("Send here"),
            "key": "pick_spool_id",
            "search_url": "/attention/spools?" + urlencode(vals), "results_target": "#picker-results",
            "target": "#dialog-body"}


@get("/attention/pick-spool", include_in_schema=False)
async def attention_pick_spool(runtime: Runtime, request: Request) -> Template:
    """The dialog to send a group's bills to another spool: search, one tap."""
    selector = _selector_from_query(dict(request.query_params))
    if selector is None:
        return _notice(request, N_("That group of bills is not known. Reload the page."))
    results = await _search(runtime, "", 0)
    return _partial(request, "partials/spool_picker.html", picker=_repoint_picker(selector), results=results,
                    title=N_("Send to another spool"),
                    hint=N_("Pick the spool these bills should go to; they are sent to it at once."))


@get("/attention/spools", include_in_schema=False)
async def attention_spools(runtime: Runtime, request: Request, q: str = "",
                           offset: Annotated[int, Parameter(ge=0, le=MAX_ID)] = 0) -> Template:
    selector = _selector_from_query(dict(request.query_params))
    if selector is None:
        return _notice(request, N_("That group of bills is not known. Reload the page."))
    results = await _search(runtime, q.strip(), offset)
    return _partial(request, "partials/spool_results.html", picker=_repoint_picker(selector), results=results)


@dataclass
class TrayForm:
    job_id: Id
    filament_index: Id
    tray: Id


@post("/attention/tray", include_in_schema=False)
async def attention_tray(runtime: Runtime, request: Request,
                         data: Annotated[TrayForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response[Any]:
    return await _act(request, ledger_actions.state_tray(runtime, data.job_id, data.filament_index, data.tray,
                                                               gettext_for(request)))


@post("/attention/repoint", include_in_schema=False)
async def attention_repoint(
    runtime: Runtime, request: Request,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    selector = _selector_from_query(data)
    # The picked spool travels as ``pick_spool_id``: ``spool_id`` is part of the group's selector.
    target = data.get("pick_spool_id")
    if selector is None or not target or not target.isdigit() or int(target) > MAX_ID:
        return _notice(request, N_("That request was incomplete. Reload the page and try again."))
    return await _act(request, ledger_actions.repoint(runtime, selector, int(target), gettext_for(request)))


@post("/attention/retry", include_in_schema=False)
async def attention_retry(runtime: Runtime, request: Request,
                          data: Annotated[SelectorIn, Body(media_type=RequestEncodingType.URL_ENCODED)]
                          ) -> Response[Any]:
    return await _act(request, ledger_actions.retry(runtime, data.selector(), gettext_for(request)))


@post("/attention/confirm", include_in_schema=False)
async def attention_confirm(runtime: Runtime, request: Request,
                            data: Annotated[SelectorIn, Body(media_type=RequestEncodingType.URL_ENCODED)]
                            ) -> Response[Any]:
    return await _act(request, ledger_actions.confirm(runtime, data.selector(), gettext_for(request)))


# ----- usage log and job -------------------------------------------------------------------------


@get("/spools/{spool_id:int}/ledger", include_in_schema=False)
async def spool_ledger_page(runtime: Runtime, request: Request, spool_id: PathId,
                            offset: Annotated[int, Parameter(ge=0, le=MAX_ID)] = 0,
                            job: Annotated[int | None, Parameter(ge=0, le=MAX_ID)] = None) -> Template:
    view = await ledger_actions.spool_log(runtime, spool_id, limit=LOG_PAGE, offset=offset, job_id=job)
    return _page(request, "spool_ledger.html", status=404 if view is None else 200, spool_id=spool_id, view=view,
                 job_filter=job)


@get("/jobs/{job_id:int}", include_in_schema=False)
async def job_page(runtime: Runtime, request: Request, job_id: PathId) -> Template:
    detail = await asyncio.to_thread(statements.job_detail, runtime.db, job_id)
    spools: dict[int, SpoolOut] = {}
    if detail is not None:
        found = await runtime.spools.get_many(p.spool_id for p in detail.parts if p.spool_id is not None)
        spools = {spool_id: SpoolOut.of(spool) for spool_id, spool in found.items() if spool is not None}
    return _page(request, "job.html", status=404 if detail is None else 200, job=detail, job_id=job_id,
                 spools=spools, job_state_words=job_state_words)


# ----- corrections -------------------------------------------------------------------------------


def _correction_picker(job_id: int, from_spool: int) -> dict[str, Any]:
    return {"url": f"/jobs/{job_id}/correct/preview", "method": "get", "vals": {"from_spool": from_spool},
            "label": N_("Move here"), "key": "pick_spool_id",
            "search_url": f"/jobs/{job_id}/correct/spools?from_spool={from_spool}",
            "results_target": "#picker-results", "target": "#correction-preview"}


@get("/jobs/{job_id:int}/correct", include_in_schema=False)
async def correct_page(runtime: Runtime, request: Request, job_id: PathId,
                       from_spool: Annotated[int | None, Parameter(ge=0, le=MAX_ID)] = None) -> Template:
    detail = await asyncio.to_thread(statements.job_detail, runtime.db, job_id)
    part = None
    if detail is not None and from_spool is not None:
        part = next((p for p in detail.parts if p.spool_id == from_spool), None)
    results = await _search(runtime, "", 0) if part is not None else None
    picker = _correction_picker(job_id, from_spool) if part is not None and from_spool is not None else None
    return _page(request, "correct.html", status=404 if part is None else 200, job=detail, job_id=job_id, part=part,
                 from_spool=from_spool, results=results, picker=picker)


@get("/jobs/{job_id:int}/correct/spools", include_in_schema=False)
async def correct_spools(runtime: Runtime, request: Request, job_id: PathId, from_spool: PathId, q: str = "",
                         offset: Annotated[int, Parameter(ge=0, le=MAX_ID)] = 0) -> Template:
    results = await _search(runtime, q.strip(), offset)
    return _partial(request, "partials/spool_results.html", picker=_correction_picker(job_id, from_spool),
                    results=results)


@get("/jobs/{job_id:int}/correct/preview", include_in_schema=False)
async def correct_preview(runtime: Runtime, request: Request, job_id: PathId, from_spool: PathId,
                          pick_spool_id: PathId) -> Template:
    try:
        plan = await ledger_actions.preview(runtime, job_id, from_spool, pick_spool_id)
    except (*_EXPECTED, SpoolmanError) as exc:
        return _problem(request, exc)
    return _partial(request, "partials/correction_preview.html", plan=plan)


@dataclass
class CorrectionForm:
    from_spool: Id
    to_spool: Id
    refund_mm: float | None = None


@post("/jobs/{job_id:int}/correct", include_in_schema=False)
async def correct_confirm(runtime: Runtime, request: Request, job_id: PathId,
                          data: Annotated[CorrectionForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
                          ) -> Template:
    try:
        done = await ledger_actions.correct(runtime, job_id, data.from_spool, data.to_spool, data.refund_mm)
    except (*_EXPECTED, SpoolmanError) as exc:
        return _problem(request, exc)
    return _partial(request, "partials/correction_done.html", done=done)


handlers = [attention_page, attention_list, attention_badge, attention_pick_spool, attention_spools, attention_tray,
            attention_repoint, attention_retry, attention_confirm, spool_ledger_page, job_page, correct_page,
            correct_spools, correct_preview, correct_confirm]
