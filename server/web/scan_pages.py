"""Scan first: a spool label scanned with no slot open asks where the spool goes.

``/scan`` is the page the dashboard's Scan button opens, and the handler of Spoolman's
``web+spoolman:`` links (``/scan?code=web+spoolman:s-3``, registered by the browser or the installed
app's manifest). The code is parsed here (``labels.parse_label``); a spool's code lists every printer's
slots to put it in, a filament's code lists that filament's spools to pick one first.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from server.runtime import Runtime
from server.spoolman import SpoolmanError
from server.web.i18n import N_, english, gettext_for
from server.web.labels import FilamentCode, NotALabel, SpoolCode, label_problem, parse_label
from server.web.ledger_pages import _page
from server.web.pages import _notice, _partial, _placed, _search, _spoolman_problem
from server.web.views import SpoolOut, all_slots, printer_out


async def _choice(runtime: Runtime, code: str | None, spool_id: int | None,
                  request: Request | None = None) -> tuple[int, dict[str, Any]]:
    """What the scanned code asks (HTTP status, template values): where a spool goes, which of a
    filament's spools, or why the code is not a label (in the request's language; English without one)."""
    _ = gettext_for(request) if request is not None else english
    label = SpoolCode(spool_id) if spool_id is not None else parse_label(code or "")
    if isinstance(label, NotALabel):
        return 400, {"problem": label_problem(label.text, _)}
    if isinstance(label, FilamentCode):
        results = await _search(runtime, "", 0, label.filament_id)
        return 200, {"filament_id": label.filament_id, "results": results, "picker": _picker(label.filament_id)}
    if runtime.spoolman is None:
        return 503, {"problem": N_("Spoolman is not configured: set [spoolman] url, then scan again.")}
    try:
        spool = await runtime.spools.get(label.spool_id)
    except SpoolmanError as exc:
        return 503, {"problem": _spoolman_problem(exc, request)}
    if spool is None:
        return 404, {"problem": _("Spoolman has no spool #%(id)s. Was it deleted?", id=label.spool_id)}
    printers = [await printer_out(runtime, task) for task in runtime.printers.values()]
    placed = await _placed(runtime)
    return 200, {"spool": SpoolOut.of(spool), "printers": printers, "place": placed.get(spool.id),
                 "all_slots": all_slots}


def _picker(filament_id: int) -> dict[str, Any]:
    """A filament's spools pick one spool, whose slots are shown next (``partials/spool_results.html``)."""
    return {"url": "/scan/where", "method": "get", "vals": {}, "key": "spool", "label": N_("Pick"),
            "search_url": f"/scan/spools?filament={filament_id}", "results_target": "#filament-spools",
            "target": "#scan-choice"}


@get("/scan", include_in_schema=False)
async def scan_page(runtime: Runtime, request: Request, code: str | None = None) -> Template:
    if code is None:  # the dashboard's Scan button: nothing scanned yet
        return _page(request, "scan.html")
    status, values = await _choice(runtime, code, None, request)
    return _page(request, "scan.html", status=status, code=code, **values)


@get("/scan/where", include_in_schema=False)
async def scan_where(runtime: Runtime, request: Request, code: str | None = None, spool: int | None = None) -> Template:
    """The choice alone, for htmx: a spool picked from a filament's list, or the list again after an assignment."""
    _status, values = await _choice(runtime, code, spool, request)
    if "problem" in values:
        return _notice(request, values["problem"])
    return _partial(request, "partials/scan_choice.html", **values)


@get("/scan/spools", include_in_schema=False)
async def scan_spools(runtime: Runtime, request: Request, filament: int, offset: int = 0) -> Template:
    results = await _search(runtime, "", max(0, offset), filament)
    return _partial(request, "partials/spool_results.html", results=results, picker=_picker(filament))


handlers = [scan_page, scan_where, scan_spools]
