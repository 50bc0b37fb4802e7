"""Server-rendered pages (Jinja + htmx). Actions call the same services as the API.

Partials answer htmx requests with 200 and a plain-words message when something
cannot be done (Spoolman down, spool not found, printer unknown): htmx swaps
only successful responses, and a blank dialog helps nobody.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from litestar import Request, get
from litestar.response import File, Redirect, Template

from server import __version__
from server.assets import fingerprint, manifest_path, versioned_files
from server.billing import attention, backlog, statements
from server.jobs import store as job_store
from server.runtime import Runtime
from server.spoolman import SpoolmanError, SpoolmanUnreachable
from server.web import csrf, ledger_actions
from server.web.i18n import N_, Translator, english, gettext_for
from server.web.views import (
    PrinterOut,
    SlotOut,
    SpoolOut,
    all_slots,
    colour_name,
    limited_words,
    printer_out,
)

PAGE_SIZE = 10
_HEX = re.compile(r"[0-9A-Fa-f]{6}")
# What the service worker stores up front, so the dashboard's look and the offline page work offline.
SHELL_FILES = (
    "/static/app.css",
    "/static/app.js",
    "/static/i18n.js",
    "/static/labels.js",
    "/static/scan.js",
    "/static/vendor/htmx-2.0.11.min.js",
    "/static/icons/icon-192.png",
)


@cache
def asset_version() -> str:
    """Changes whenever a static file, the service worker or the manifest changes, so browsers and the
    service worker drop stale copies."""
    return fingerprint(versioned_files(), __version__)


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


def is_demo(request: Request) -> bool:
    """The app runs ``layerwise demo``: every page says so and links to how to connect a printer."""
    return bool(getattr(request.app.state, "demo", False))


def _context(_request: Request, **values: Any) -> dict[str, Any]:
    return {
        "asset": asset_url,
        "swatch": swatch,
        "slug": slug,
        "unit_kind": unit_kind,
        "colour_name": colour_name,
        "state_words": state_words,
        "entry_states": ENTRY_STATES,
        "place_words": lambda printer, tray: place_words(printer, tray, gettext_for(_request)),
        "group_words": lambda group: group_words(group, gettext_for(_request)),
        "limited_words": lambda limited: limited_words(limited, gettext_for(_request)),
        "demo": is_demo(_request),
        # The footer's language picker posts this browser's CSRF token (pages that set none reuse the cookie's).
        "lang_token": csrf.usable_token(_request.cookies.get(csrf.COOKIE_NAME)),
        **values,
    }


def _partial(request: Request, name: str, **values: Any) -> Template:
    return Template(name, context=_context(request, **values))


def _notice(request: Request, message: str, level: str = "error") -> Template:
    return _partial(request, "partials/notice.html", message=message, level=level)


def _spoolman_problem(exc: SpoolmanError, request: Request | None = None) -> str:
    """In words; without a request in English, or a message the page translates (``translate`` filter)."""
    if isinstance(exc, SpoolmanUnreachable):
        return N_("Spoolman cannot be reached right now, so spools cannot be listed. Try again in a moment.")
    if request is None:
        return f"Spoolman refused the request: {exc}"
    _ = gettext_for(request)
    return _("Spoolman refused the request: %(error)s", error=exc)


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
        return SpoolResults([], 0, 0, query, filament_id, N_("Spoolman is not configured: set [spoolman] url."))
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


# Marked here (N_), translated where shown (``state_words(...) | translate``).
STATE_WORDS = {
    "IDLE": N_("Idle"), "PREPARE": N_("Preparing"), "SLICING": N_("Slicing"), "RUNNING": N_("Printing"),
    "PAUSE": N_("Paused"), "FINISH": N_("Finished"), "FAILED": N_("Failed"), "OFFLINE": N_("Offline"),
}
# Ledger entry states (server/billing/settlement.py) as a person reads them.
ENTRY_STATES = {
    "waiting_tray": N_("waiting for a tray"), "waiting_spool": N_("waiting for a spool"), "ready": N_("ready"),
    "sending": N_("sending"), "delivered": N_("delivered"), "rejected": N_("rejected"), "doubtful": N_("doubtful"),
}


def state_words(state: str | None) -> str:
    """The printer's gcode_state as a person says it ("FINISH" reads "Finished")."""
    if not state:
        return N_("Idle")
    return STATE_WORDS.get(state.upper(), state.replace("_", " ").lower().capitalize())


@dataclass
class EndOfPrint:
    """What the printer's last job billed, shown on its card until the next job starts."""

    job_id: int
    grams: float
    spools: int

    @property
    def words(self) -> str:
        return f"{self.grams:.1f} g billed to {self.spools} spool{'' if self.spools == 1 else 's'}"


@dataclass
class Waiting:
    """Bills of one printer that wait for a person: how many, and the first reason in words."""

    count: int
    reason: str
    others: int = 0  # further groups, with other reasons, listed on the needs-attention page


async def _card_extras(runtime: Runtime, printers: list[PrinterOut],
                       gettext: Translator = english) -> dict[str, Any]:
    """Per printer: the plate preview and page of its open (or, once ended, its last) job, the
    end-of-print summary, and the bills that wait for a person."""
    thumbnails: dict[str, str] = {}
    links: dict[str, str] = {}
    summaries: dict[str, EndOfPrint] = {}
    for printer in printers:
        latest = await asyncio.to_thread(job_store.list_jobs, runtime.db, printer.name, 1, 0)
        if not latest:
            continue
        summary = latest[0]
        job = summary.job
        links[printer.name] = f"/jobs/{job.id}"
        if job.thumbnail:
            thumbnails[printer.name] = f"/api/v1/jobs/{job.id}/thumbnail.png"
        if job.final:
            spools = {u.spool_id for u in summary.usage if u.spool_id is not None}
            summaries[printer.name] = EndOfPrint(job.id, summary.grams, len(spools))
    groups = (await asyncio.to_thread(attention.attention, runtime.db)).groups if printers else []
    waiting: dict[str, Waiting] = {}
    for group in groups:
        found = waiting.get(group.printer)
        if found is None:
            waiting[group.printer] = Waiting(group.count, group_words(group, gettext))
        else:
            found.count += group.count
            found.others += 1
    queued = 0
    if any(p.spoolman_error for p in printers):  # bills queued for Spoolman: say how many wait to be sent
        queued = sum(s.count for s in (await asyncio.to_thread(backlog.backlog, runtime.db)).spools)
    return {"thumbnails": thumbnails, "job_links": links, "summaries": summaries, "waiting": waiting,
            "queued": queued}


def group_words(group: attention.AttentionGroup, gettext: Translator = english) -> str:
    """Why a group of bills waits, in the page's language (``group.message`` is the API's English)."""
    return attention.reason_in_words(group.reason, job=group.job_name, printer=group.printer, filament=group.filament,
                                     tray=group.tray, spool_id=group.spool_id, error=group.error, gettext=gettext)


def place_words(printer: str, tray: int, gettext: Callable[..., str] | None = None) -> str:
    """Where a spool sits, as a person says it: "P1S tray A2", "P1S external spool" (pages pass their
    language's ``gettext``; ``_context`` binds it)."""
    _ = gettext or english
    if tray in (254, 255):
        return _("%(printer)s external spool", printer=printer)
    return _("%(printer)s tray %(tray)s", printer=printer, tray=statements.tray_label(tray))


async def _placed(runtime: Runtime) -> dict[int, tuple[str, int]]:
    """Every assigned spool's place (printer, tray), so the spool list can say "in this slot" or
    "move from P1S tray A2" instead of a plain "Assign"."""
    return {a.spool_id: (a.printer, a.tray) for a in await runtime.slots.assignments()}


async def _printer(runtime: Runtime, name: str) -> PrinterOut | None:
    task = runtime.printers.get(name)
    return await printer_out(runtime, task) if task is not None else None


async def _slot(runtime: Runtime, name: str, tray: int) -> tuple[PrinterOut | None, SlotOut | None]:
    printer = await _printer(runtime, name)
    if printer is None:
        return None, None
    return printer, next((s for s in all_slots(printer) if s.tray == tray), None)


# ----- pages -------------------------------------------------------------------------------------


# From this many printers the start page is the farm view: a card per printer is a screen each.
FARM_VIEW_FROM = 13


@get("/", include_in_schema=False)
async def dashboard(runtime: Runtime, request: Request, view: str = "") -> Template | Redirect:
    if len(runtime.printers) >= FARM_VIEW_FROM and view != "cards":
        return Redirect("/farm")
    token = csrf.usable_token(request.cookies.get(csrf.COOKIE_NAME)) or csrf.new_token()
    printers = [await printer_out(runtime, task) for task in runtime.printers.values()]
    badge = await ledger_actions.badge_context(runtime)
    return Template(
        "dashboard.html",
        context=_context(request, printers=printers, page_token=token,
                         **await _card_extras(runtime, printers, gettext_for(request)), **badge),
        cookies=[csrf.token_cookie(token, secure=request.url.scheme == "https")],
        headers={"Cache-Control": "no-store"},
    )


@get("/connect", include_in_schema=False)
async def connect(request: Request) -> Template:
    return _partial(request, "connect.html")


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


handlers = [
    dashboard,
    connect,
    offline,
    manifest,
    service_worker,
]
