"""Server-rendered pages (Jinja + htmx). Actions call the same services as the API.

Partials answer htmx requests with 200 and a plain-words message when something
cannot be done (Spoolman down, spool not found, printer unknown): htmx swaps
only successful responses, and a blank dialog helps nobody.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import File, Response, Template

from server import __version__
from server.assets import manifest_path, static_dir, templates_dir
from server.runtime import Runtime
from server.spoolman import SpoolmanError, SpoolmanUnreachable
from server.tracking import job_store
from server.tracking.slots import SlotError, SpoolElsewhere
from server.web import csrf, ledger_actions
from server.web.labels import FilamentCode, NotALabel, SpoolCode, parse_label
from server.web.views import PrinterOut, SlotOut, SpoolOut, all_slots, printer_out

PAGE_SIZE = 10
_HEX = re.compile(r"[0-9A-Fa-f]{6}")
# What the service worker stores up front, so the dashboard's look and the offline page work offline.
SHELL_FILES = (
    "/static/app.css",
    "/static/app.js",
    "/static/vendor/htmx-2.0.11.min.js",
    "/static/icons/icon-192.png",
)


@cache
def asset_version() -> str:
    """Changes whenever a shell file changes, so browsers and the service worker drop stale copies."""
    digest = hashlib.sha256(__version__.encode())
    icons = sorted((static_dir() / "icons").glob("*.png"))
    for path in (static_dir() / "app.css", static_dir() / "app.js", templates_dir() / "sw.js", manifest_path(), *icons):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def asset_url(path: str) -> str:
    return f"{path}?v={asset_version()}" if path.endswith((".css", ".js")) else path


def swatch(*colours: str | None) -> str | None:
    """The first usable colour as ``#rrggbb`` (printers send RRGGBBAA); never echo raw text into CSS."""
    for colour in colours:
        if colour and _HEX.fullmatch(colour[:6]):
            return "#" + colour[:6].lower()
    return None


UNIT_KINDS = {"ams": "AMS", "ams_lite": "AMS Lite", "ams_2_pro": "AMS 2 Pro", "ams_ht": "AMS HT", "unknown": "AMS"}


def unit_kind(kind: str) -> str:
    return UNIT_KINDS.get(kind, kind)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "printer"


def _context(_request: Request, **values: Any) -> dict[str, Any]:
    return {
        "asset": asset_url,
        "swatch": swatch,
        "slug": slug,
        "unit_kind": unit_kind,
        **values,
    }


def _partial(request: Request, name: str, **values: Any) -> Template:
    return Template(name, context=_context(request, **values))


def _notice(request: Request, message: str, level: str = "error") -> Template:
    return _partial(request, "partials/notice.html", message=message, level=level)


def _spoolman_problem(exc: SpoolmanError) -> str:
    if isinstance(exc, SpoolmanUnreachable):
        return "Spoolman cannot be reached right now, so spools cannot be listed. Try again in a moment."
    return f"Spoolman refused the request: {exc}"


@dataclass
class SpoolResults:
    items: list[SpoolOut]
    total: int
    offset: int
    query: str
    filament_id: int | None
    error: str | None = None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - PAGE_SIZE) if self.offset > 0 else None

    @property
    def next_offset(self) -> int | None:
        return self.offset + PAGE_SIZE if self.offset + PAGE_SIZE < self.total else None


async def _search(runtime: Runtime, query: str, offset: int, filament_id: int | None = None) -> SpoolResults:
    if runtime.spoolman is None:
        return SpoolResults([], 0, 0, query, filament_id, "Spoolman is not configured: set [spoolman] url.")
    try:
        page = await runtime.spoolman.list_spools(
            search=query or None, filament_id=filament_id, allow_archived=False, limit=PAGE_SIZE, offset=offset
        )
    except SpoolmanError as exc:
        return SpoolResults([], 0, offset, query, filament_id, _spoolman_problem(exc))
    for spool in page.items:
        runtime.spools.put(spool)  # the pick a person makes next is then already cached
    items = [SpoolOut.of(s) for s in page.items if not s.archived]
    return SpoolResults(items, page.total, offset, query, filament_id)


async def _thumbnails(runtime: Runtime, printers: list[PrinterOut]) -> dict[str, str]:
    """Plate preview URLs of the jobs in progress (served by the JSON API), by printer name."""
    urls = {}
    for printer in printers:
        job = await asyncio.to_thread(job_store.open_job, runtime.db, printer.name)
        if job is not None and job.thumbnail:
            urls[printer.name] = f"/api/v1/jobs/{job.id}/thumbnail.png"
    return urls


async def _open_jobs(runtime: Runtime, printers: list[PrinterOut]) -> dict[str, str]:
    """Each printer's open job's page, by printer name."""
    links = {}
    for printer in printers:
        job = await asyncio.to_thread(job_store.open_job, runtime.db, printer.name)
        if job is not None:
            links[printer.name] = f"/jobs/{job.id}"
    return links


async def _printer(runtime: Runtime, name: str) -> PrinterOut | None:
    task = runtime.printers.get(name)
    return await printer_out(runtime, task) if task is not None else None


async def _slot(runtime: Runtime, name: str, tray: int) -> tuple[PrinterOut | None, SlotOut | None]:
    printer = await _printer(runtime, name)
    if printer is None:
        return None, None
    return printer, next((s for s in all_slots(printer) if s.tray == tray), None)


# ----- pages -------------------------------------------------------------------------------------


@get("/", include_in_schema=False)
async def dashboard(runtime: Runtime, request: Request) -> Template:
    token = csrf.usable_token(request.cookies.get(csrf.COOKIE_NAME)) or csrf.new_token()
    printers = [await printer_out(runtime, task) for task in runtime.printers.values()]
    badge = await ledger_actions.badge_context(runtime)
    return Template(
        "dashboard.html",
        context=_context(request, printers=printers, thumbnails=await _thumbnails(runtime, printers), page_token=token,
                         job_links=await _open_jobs(runtime, printers), **badge),
        cookies=[csrf.token_cookie(token, secure=request.url.scheme == "https")],
        headers={"Cache-Control": "no-store"},
    )


@get("/offline", include_in_schema=False)
async def offline(request: Request) -> Template:
    return _partial(request, "offline.html")


@get("/manifest.webmanifest", include_in_schema=False, sync_to_thread=False)
def manifest() -> File:
    return File(manifest_path(), media_type="application/manifest+json", content_disposition_type="inline")


@get("/sw.js", include_in_schema=False, sync_to_thread=False)
def service_worker() -> Template:
    # Served from / so its scope covers the whole app; no-cache so an update is seen at once.
    return Template(
        "sw.js",
        context={"version": asset_version(), "shell": [asset_url(p) for p in SHELL_FILES] + ["/offline"]},
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


# ----- partials ----------------------------------------------------------------------------------


@get("/printers/{name:str}/card", include_in_schema=False)
async def printer_card(runtime: Runtime, request: Request, name: str) -> Template:
    printer = await _printer(runtime, name)
    if printer is None:
        return _notice(request, f"There is no printer named {name!r} any more. Reload the page.")
    thumbnails = await _thumbnails(runtime, [printer])
    return _partial(request, "partials/printer_card.html", printer=printer, thumbnails=thumbnails,
                    job_links=await _open_jobs(runtime, [printer]))


@get("/printers/{name:str}/slots/{tray:int}/dialog", include_in_schema=False)
async def slot_dialog(runtime: Runtime, request: Request, name: str, tray: int) -> Template:
    printer, slot = await _slot(runtime, name, tray)
    if printer is None or slot is None:
        return _notice(request, f"{name} has no tray {tray} right now. Reload the page.")
    results = await _search(runtime, "", 0)
    offer = await runtime.rfid.tag_offer(name, tray) if runtime.rfid is not None else None
    return _partial(request, "partials/slot_dialog.html", printer=printer, slot=slot, results=results, offer=offer)


@get("/printers/{name:str}/slots/{tray:int}/spools", include_in_schema=False)
async def spool_results(
    runtime: Runtime, request: Request, name: str, tray: int, q: str = "", offset: int = 0, filament: int | None = None
) -> Template:
    results = await _search(runtime, q.strip(), max(0, offset), filament)
    target = "#filament-spools" if filament is not None else "#spool-results"
    return _partial(
        request, "partials/spool_results.html", printer_name=name, tray=tray, results=results, results_target=target
    )


@get("/printers/{name:str}/slots/{tray:int}/scan", include_in_schema=False)
async def scan_result(runtime: Runtime, request: Request, name: str, tray: int, code: str = "") -> Template:
    label = parse_label(code)
    values: dict[str, Any] = {"printer_name": name, "tray": tray}
    if isinstance(label, NotALabel):
        return _partial(request, "partials/scan_result.html", kind="not_label", code=code[:80], **values)
    if isinstance(label, FilamentCode):
        results = await _search(runtime, "", 0, label.filament_id)
        return _partial(request, "partials/scan_result.html", kind="filament", label=label, results=results, **values)
    assert isinstance(label, SpoolCode)
    try:
        spool = await runtime.spools.get(label.spool_id)
    except SpoolmanError as exc:
        return _notice(request, _spoolman_problem(exc))
    if spool is None:
        return _notice(request, f"Spoolman has no spool #{label.spool_id}. Was it deleted?")
    return _partial(request, "partials/scan_result.html", kind="spool", spool=SpoolOut.of(spool), **values)


@dataclass
class AssignForm:
    spool_id: int
    move: bool = False


@post("/printers/{name:str}/slots/{tray:int}/assign", include_in_schema=False, guards=[csrf.csrf_guard])
async def assign(
    runtime: Runtime,
    request: Request,
    name: str,
    tray: int,
    data: Annotated[AssignForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
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
    if offer is not None and offer.spool_id == data.spool_id:
        # A tagged tray whose tag no spool carries: offer to remember it, so it matches by itself next time.
        template = _partial(request, "partials/tag_offer.html", printer_name=name, tray=tray, offer=offer,
                            assigned=True)
        template.headers["HX-Trigger"] = json.dumps(
            {"layerwise:refresh": {"printer": name, "message": f"Spool #{data.spool_id} assigned."}})
        return template
    return _changed(request, name, f"Spool #{data.spool_id} assigned.")


@dataclass
class ResolveForm:
    use: str


@post("/printers/{name:str}/slots/{tray:int}/rfid/resolve", include_in_schema=False, guards=[csrf.csrf_guard])
async def resolve_rfid_conflict(
    runtime: Runtime,
    request: Request,
    name: str,
    tray: int,
    data: Annotated[ResolveForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    if runtime.rfid is None or data.use not in ("tag", "manual"):
        return _notice(request, "RFID matching is not running.")
    try:
        await runtime.rfid.resolve_conflict(name, tray, data.use)
    except (SlotError, SpoolmanError) as exc:
        return _notice(request, str(exc).capitalize() + ".")
    message = "The tag's spool is assigned." if data.use == "tag" else "Kept the spool assigned by hand."
    return _changed(request, name, message)


@post("/printers/{name:str}/slots/{tray:int}/rfid/remember", include_in_schema=False, guards=[csrf.csrf_guard])
async def remember_rfid_tag(
    runtime: Runtime,
    request: Request,
    name: str,
    tray: int,
    data: Annotated[AssignForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    if runtime.rfid is None:
        return _notice(request, "RFID matching is not running.")
    try:
        await runtime.rfid.remember_tag(name, tray, data.spool_id)
    except SpoolmanError as exc:
        return _notice(request, _spoolman_problem(exc))
    except SlotError as exc:
        return _notice(request, str(exc).capitalize() + ".")
    return _changed(request, name, f"Spool #{data.spool_id} now carries this tray's RFID tag.")


@post("/printers/{name:str}/slots/{tray:int}/unassign", include_in_schema=False, guards=[csrf.csrf_guard])
async def unassign(runtime: Runtime, request: Request, name: str, tray: int) -> Response[Any]:
    try:
        removed = await runtime.slots.unassign(name, tray)
    except SlotError as exc:
        return _notice(request, str(exc).capitalize() + ".")
    return _changed(request, name, "Spool unassigned." if removed else "No spool was assigned.")


def _changed(request: Request, printer: str, message: str) -> Template:
    """Tells the page (HX-Trigger) to close the dialog, show the message and refresh that printer."""
    template = _notice(request, message, level="ok")
    template.headers["HX-Reswap"] = "none"  # the page closes the dialog; nothing to swap in
    template.headers["HX-Trigger"] = json.dumps({"layerwise:changed": {"printer": printer, "message": message}})
    return template


handlers = [
    resolve_rfid_conflict,
    remember_rfid_tag,
    dashboard,
    offline,
    manifest,
    service_worker,
    printer_card,
    slot_dialog,
    spool_results,
    scan_result,
    assign,
    unassign,
]
