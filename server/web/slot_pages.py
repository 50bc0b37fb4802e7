"""The printer card and the slot dialog: htmx partials, and the actions taken in the dialog (assign a
spool, scan a label, RFID decisions, unassign). Like every partial (``pages.py``), they answer 200 with a
plain-words message when something cannot be done."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Response, Template

from server.runtime import Runtime
from server.slots.errors import SlotError, SpoolElsewhere
from server.spoolman import SpoolmanError
from server.web.i18n import gettext_for as _t
from server.web.labels import FilamentCode, NotALabel, SpoolCode, parse_label
from server.web.pages import (
    _card_extras,
    _notice,
    _partial,
    _placed,
    _printer,
    _search,
    _slot,
    _spoolman_problem,
)
from server.web.views import SpoolOut, all_slots


@get("/printers/{name:str}/card", include_in_schema=False)
async def printer_card(runtime: Runtime, request: Request, name: str) -> Template:
    _ = _t(request)
    printer = await _printer(runtime, name)
    if printer is None:
        return _notice(request, _("There is no printer named %(name)s any more. Reload the page.", name=repr(name)))
    return _partial(request, "partials/printer_card.html", printer=printer,
                    **await _card_extras(runtime, [printer], _))


@get("/printers/{name:str}/slots/{tray:int}/dialog", include_in_schema=False)
async def slot_dialog(runtime: Runtime, request: Request, name: str, tray: int) -> Template:
    _ = _t(request)
    printer, slot = await _slot(runtime, name, tray)
    if printer is None or slot is None:
        return _notice(request, _("%(printer)s has no tray %(tray)s right now. Reload the page.",
                                  printer=name, tray=tray))
    results = await _search(runtime, "", 0)
    offer = await runtime.rfid.tag_offer(name, tray) if runtime.rfid is not None else None
    return _partial(request, "partials/slot_dialog.html", printer=printer, slot=slot, results=results, offer=offer,
                    placed=await _placed(runtime))


@get("/printers/{name:str}/slots/{tray:int}/spools", include_in_schema=False)
async def spool_results(
    runtime: Runtime, request: Request, name: str, tray: int, q: str = "", offset: int = 0, filament: int | None = None
) -> Template:
    results = await _search(runtime, q.strip(), max(0, offset), filament)
    target = "#filament-spools" if filament is not None else "#spool-results"
    return _partial(
        request, "partials/spool_results.html", printer_name=name, tray=tray, results=results, results_target=target,
        placed=await _placed(runtime),
    )


@get("/printers/{name:str}/slots/{tray:int}/scan", include_in_schema=False)
async def scan_result(runtime: Runtime, request: Request, name: str, tray: int, code: str = "") -> Template:
    _ = _t(request)
    label = parse_label(code)
    values: dict[str, Any] = {"printer_name": name, "tray": tray, "placed": await _placed(runtime)}
    if isinstance(label, NotALabel):
        return _partial(request, "partials/scan_result.html", kind="not_label", code=code[:80], **values)
    if isinstance(label, FilamentCode):
        results = await _search(runtime, "", 0, label.filament_id)
        return _partial(request, "partials/scan_result.html", kind="filament", label=label, results=results, **values)
    assert isinstance(label, SpoolCode)
    try:
        spool = await runtime.spools.get(label.spool_id)
    except SpoolmanError as exc:
        return _notice(request, _spoolman_problem(exc, request))
    if spool is None:
        return _notice(request, _("Spoolman has no spool #%(id)s. Was it deleted?", id=label.spool_id))
    return _partial(request, "partials/scan_result.html", kind="spool", spool=SpoolOut.of(spool), **values)


@dataclass
class AssignForm:
    spool_id: int
    move: bool = False


@post("/printers/{name:str}/slots/{tray:int}/assign", include_in_schema=False)
async def assign(
    runtime: Runtime,
    request: Request,
    name: str,
    tray: int,
    data: Annotated[AssignForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    _ = _t(request)
    try:
        await runtime.slots.assign(name, tray, data.spool_id, move=data.move)
    except SpoolElsewhere as exc:
        other = await _printer(runtime, exc.printer)
        label = next((s.label for s in all_slots(other) if s.tray == exc.tray), str(exc.tray)) if other else exc.tray
        return _partial(
            request,
            "partials/move_confirm.html",
            printer_name=name,
            tray=tray,
            spool_id=data.spool_id,
            other_printer=exc.printer,
            other_label=label,
        )
    except SlotError as exc:
        return _notice(request, str(exc).capitalize() + ".")
    offer = await runtime.rfid.tag_offer(name, tray) if runtime.rfid is not None else None
    assigned = _("Spool #%(id)s assigned.", id=data.spool_id)
    if offer is not None and offer.spool_id == data.spool_id:
        # A tagged tray whose tag no spool carries: offer to remember it, so it matches by itself next time.
        template = _partial(request, "partials/tag_offer.html", printer_name=name, tray=tray, offer=offer,
                            assigned=True)
        template.headers["HX-Trigger"] = json.dumps(
            {"layerwise:refresh": {"printer": name, "message": assigned}})
        return template
    return _changed(request, name, assigned)


@dataclass
class ResolveForm:
    use: str


@post("/printers/{name:str}/slots/{tray:int}/rfid/resolve", include_in_schema=False)
async def resolve_rfid_conflict(
    runtime: Runtime,
    request: Request,
    name: str,
    tray: int,
    data: Annotated[ResolveForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    _ = _t(request)
    if runtime.rfid is None or data.use not in ("tag", "manual"):
        return _notice(request, _("RFID matching is not running."))
    try:
        await runtime.rfid.resolve_conflict(name, tray, data.use)
    except (SlotError, SpoolmanError) as exc:
        return _notice(request, str(exc).capitalize() + ".")
    message = _("The tag's spool is assigned.") if data.use == "tag" else _("Kept the spool assigned by hand.")
    return _changed(request, name, message)


@post("/printers/{name:str}/slots/{tray:int}/rfid/remember", include_in_schema=False)
async def remember_rfid_tag(
    runtime: Runtime,
    request: Request,
    name: str,
    tray: int,
    data: Annotated[AssignForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    _ = _t(request)
    if runtime.rfid is None:
        return _notice(request, _("RFID matching is not running."))
    try:
        await runtime.rfid.remember_tag(name, tray, data.spool_id)
    except SpoolmanError as exc:
        return _notice(request, _spoolman_problem(exc, request))
    except SlotError as exc:
        return _notice(request, str(exc).capitalize() + ".")
    return _changed(request, name,
                    _("Spool #%(id)s now carries this tray's RFID tag.", id=data.spool_id))


@post("/printers/{name:str}/slots/{tray:int}/unassign", include_in_schema=False)
async def unassign(runtime: Runtime, request: Request, name: str, tray: int) -> Response[Any]:
    _ = _t(request)
    try:
        removed = await runtime.slots.unassign(name, tray)
    except SlotError as exc:
        return _notice(request, str(exc).capitalize() + ".")
    return _changed(request, name, _("Spool unassigned.") if removed else _("No spool was assigned."))


def _changed(request: Request, printer: str, message: str) -> Template:
    """Tells the page (HX-Trigger) to close the dialog, show the message and refresh that printer."""
    template = _notice(request, message, level="ok")
    template.headers["HX-Reswap"] = "none"  # the page closes the dialog; nothing to swap in
    template.headers["HX-Trigger"] = json.dumps({"layerwise:changed": {"printer": printer, "message": message}})
    return template


handlers = [
    resolve_rfid_conflict,
    remember_rfid_tag,
    printer_card,
    slot_dialog,
    spool_results,
    scan_result,
    assign,
    unassign,
]
