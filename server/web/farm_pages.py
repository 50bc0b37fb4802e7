"""The farm view (``/farm``), its live rows, and one printer's full card on a page of its own.

Live updates without one request per printer per update: the page collects the printers named by the
live stream's events and asks for all their rows at once (``/farm/rows?printer=…``), at most once a
second; the answer swaps each row in place (htmx out-of-band swaps).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Annotated

from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from server.billing import attention
from server.db import repo
from server.runtime import Runtime
from server.web.farm import FILTERS, FarmRow, counts, farm_row, shown
from server.web.i18n import gettext_for
from server.web.pages import _card_extras, _context, _notice, _printer, state_words
from server.web.views import printer_out

MAX_ROWS_PER_ASK = 500  # a longer list is not a browser's ask: cut it rather than render it


async def _waiting(runtime: Runtime) -> Counter[str]:
    """Bills waiting for a person, per printer (one query for the whole farm)."""
    groups = (await asyncio.to_thread(attention.attention, runtime.db)).groups
    waiting: Counter[str] = Counter()
    for group in groups:
        waiting[group.printer] += group.count
    return waiting


async def _rows(runtime: Runtime, request: Request, names: list[str]) -> list[FarmRow]:
    waiting, _ = await _waiting(runtime), gettext_for(request)
    # The asked printers' assignments in one query, not one per row (a farm's page asks for ~80 rows a second).
    tasks = [task for name in names if (task := runtime.printers.get(name)) is not None]
    assigned = await asyncio.to_thread(repo.assignments_of, runtime.db, [task.name for task in tasks])
    rows = []
    for task in tasks:
        printer = await printer_out(runtime, task, assigned[task.name], feeding_only=True)
        rows.append(farm_row(printer, state_words(printer.job.state), waiting[task.name], _))
    return rows


@get("/farm", include_in_schema=False)
async def farm(runtime: Runtime, request: Request, q: str = "",
               show: Annotated[str, QueryParameter(name="state")] = "all") -> Template:
    chosen = show if show in FILTERS else "all"
    rows = await _rows(runtime, request, list(runtime.printers))
    return Template("farm.html", context=_context(
        request, rows=rows, counts=counts(rows), filters=FILTERS, chosen=chosen, query=q.strip(), shown=shown),
        headers={"Cache-Control": "no-store"})


@get("/farm/rows", include_in_schema=False)
async def farm_rows(runtime: Runtime, request: Request, printer: list[str] | None = None) -> Template:
    names = list(dict.fromkeys(printer or []))[:MAX_ROWS_PER_ASK]
    return Template("partials/farm_rows.html", context=_context(request, rows=await _rows(runtime, request, names)))


@get("/printers/{name:str}", include_in_schema=False)
async def printer_page(runtime: Runtime, request: Request, name: str) -> Template:
    """One printer's full card (a row of the farm view opens it)."""
    printer = await _printer(runtime, name)
    if printer is None:
        return _notice(request, f"There is no printer named {name!r}.")
    return Template("printer.html", context=_context(request, printer=printer,
                                                     **await _card_extras(runtime, [printer])),
                    headers={"Cache-Control": "no-store"})


handlers = [farm, farm_rows, printer_page]
