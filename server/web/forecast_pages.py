"""The runout forecast on the pages: the card's warning strip, the slot dialog, the job page.

The templates call ``forecast_lines(printer, job_id=None)`` (a Jinja global installed with the app's
template engine) for the forecast the service keeps (``server.forecast.service``), so the card and the
job page need no handler of their own; the slot dialog loads its part, with spool suggestions, from
``/printers/{name}/slots/{tray}/forecast``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request, get
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.response import Template

from server.colours import filament_words
from server.forecast.core import SpoolFacts, TrayFacts, TrayForecast, suggestions
from server.forecast.service import spool_facts
from server.jobs import store as job_store
from server.runtime import Runtime
from server.spoolman import SpoolmanError
from server.web.pages import _partial
from server.web.views import tray_label

SUGGESTION_SCAN = 200  # spools read from Spoolman to find suggestions (one request)


@dataclass(frozen=True)
class ForecastLine:
    """One tray's forecast as the pages show it."""

    tray: int
    label: str  # the tray as the card names it: "A3", "External"
    filament: str  # "PLA Black"
    forecast: TrayForecast

    @property
    def status(self) -> str:
        return self.forecast.status


def duration_parts(seconds: float) -> tuple[int, int]:
    """Whole hours and minutes, rounded to the minute (forecast_line.html puts them in words: 2 h 10 min)."""
    hours, minutes = divmod(round(seconds / 60), 60)
    return hours, minutes


def lines(runtime: Runtime, printer: str, job_id: int | None = None) -> list[ForecastLine]:
    """The printer's current forecast (of ``job_id`` only, when given), tray by tray."""
    if runtime.forecast is None:
        return []
    current = runtime.forecast.of(printer, job_id)
    task = runtime.printers.get(printer)
    if current is None or task is None:
        return []
    external = len(task.snapshot.view.external)
    out = []
    for tray in current.forecast.trays:
        view = task.snapshot.tray(tray.tray)
        label = tray_label(view, external) if view is not None else str(tray.tray)
        out.append(ForecastLine(tray.tray, label, filament_words(tray.filament), tray))
    return out


def template_globals(runtime: Runtime, then: Callable[[JinjaTemplateEngine], None]) -> Callable[
        [JinjaTemplateEngine], None]:
    """The template engine's callback: ``then`` (the app's own), plus the forecast's globals."""
    def install(engine: JinjaTemplateEngine) -> None:
        then(engine)
        engine.engine.globals["forecast_lines"] = lambda printer, job_id=None: lines(runtime, printer, job_id)
        engine.engine.globals["duration_parts"] = duration_parts
        engine.engine.globals["filament_words"] = filament_words

    return install


async def suggested(runtime: Runtime, printer: str, line: ForecastLine) -> list[SpoolFacts]:
    """Spools with enough left to finish the tray's part of the job, the same filament first."""
    if runtime.spoolman is None:
        return []
    page = await runtime.spoolman.list_spools(allow_archived=False, limit=SUGGESTION_SCAN, offset=0)
    current = None
    if line.forecast.spool_id is not None:
        spool = await runtime.spools.get(line.forecast.spool_id)
        current = spool_facts(spool) if spool is not None else None
    task = runtime.printers[printer]
    view = task.snapshot.tray(line.tray)
    want = TrayFacts(line.tray, current, view.material if view else None, view.color_hex if view else None)
    in_trays = {a.spool_id for a in await runtime.slots.assignments()}
    return suggestions(line.forecast.needed_g, current, want, [spool_facts(s) for s in page.items], skip=in_trays)


@get("/printers/{name:str}/slots/{tray:int}/forecast", include_in_schema=False)
async def slot_forecast(runtime: Runtime, request: Request, name: str, tray: int) -> Template:
    found = [line for line in lines(runtime, name) if line.tray == tray]
    line = found[0] if found else None
    offers: list[SpoolFacts] = []
    problem = None
    if line is not None and line.status != "enough":
        try:
            offers = await suggested(runtime, name, line)
        except SpoolmanError as exc:
            problem = str(exc)
    names: dict[int, Any] = {}
    for offer in offers:
        spool = await runtime.spools.get(offer.spool_id)
        names[offer.spool_id] = spool.filament.name if spool is not None else None
    return _partial(request, "partials/forecast_slot.html", line=line, offers=offers, names=names,
                    problem=problem, printer_name=name)


@dataclass(frozen=True)
class _JobRef:
    id: int
    printer: str


@get("/jobs/{job_id:int}/forecast", include_in_schema=False)
async def job_forecast(runtime: Runtime, request: Request, job_id: int) -> Template:
    """The job page's forecast, again (the page reloads it on live updates)."""
    record = await asyncio.to_thread(job_store.get_job, runtime.db, job_id)
    job = _JobRef(job_id, record.printer if record is not None else "")
    return _partial(request, "partials/forecast_job.html", job=job)


handlers = [slot_forecast, job_forecast]
