"""Before printing: "will it last?" for a sliced file. ``POST /api/v1/forecast`` (multipart) and the phone
page ``/forecast``: the file is analysed (never stored), its filaments put in a printer's trays (the
mapping given, else as loaded now: same material and colour), and each tray's spool forecast as at the
start of a print. It only warns; nothing is blocked or changed.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body
from litestar.response import Template
from litestar.status_codes import HTTP_400_BAD_REQUEST

from server.analysis import AnalysisError, PrintAnalysis, analyze_file
from server.billing.backlog import queued_grams
from server.billing.rules import filament_grams
from server.forecast.core import Forecast, Pace, TrayFacts, forecast, match_loaded
from server.forecast.service import tray_facts
from server.runtime import Runtime
from server.slots.errors import UnknownPrinter
from server.web import csrf
from server.web.forecast_pages import ForecastLine, filament_words, tray_label
from server.web.ledger_pages import _page
from server.web.pages import _partial

MAX_UPLOAD_BYTES = 256 << 20  # a sliced file of a big multi-plate project stays well under this


class BadRequest(HTTPException):
    status_code = HTTP_400_BAD_REQUEST


@dataclass
class ForecastForm:
    file: UploadFile
    printer: str | None = None  # whose trays and spools (its slot assignments)
    plate: str | None = None  # a number; empty: the file's only (or first) plate (forms send "" for none)
    mapping: str | None = None  # JSON: [tray per filament] (-1: none) or {"filament": tray}; None: as loaded now


@dataclass
class TrayAnswer:
    tray: int
    spool_id: int | None
    status: str  # "enough" | "runs_out" | "unknown"
    enough: bool | None  # None: unknown
    runout_layer: int | None
    total_layers: int
    runout_in_s: float | None  # at the slicer's estimated pace
    needed_g: float
    remaining_g: float | None
    filament: str
    filaments: list[int]  # the slicer filaments printed from this tray
    backups: list[int]


@dataclass
class UnmappedFilament:
    filament_index: int
    filament: str
    needed_g: float


@dataclass
class FileForecast:
    plate: int
    layer_count: int
    printer: str | None
    trays: list[TrayAnswer] = field(default_factory=list)
    unmapped: list[UnmappedFilament] = field(default_factory=list)  # no tray fits: nothing to forecast


def parse_plate(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    if not text.strip().isdigit() or len(text.strip()) > 6:
        raise BadRequest("plate: give the plate's number (1, 2, ...)")
    return int(text)


def parse_mapping(text: str | None) -> dict[int, int] | None:
    """The mapping as JSON: a list like the printer's ``ams_mapping`` or an object; None when not given."""
    if text is None or not text.strip():
        return None
    try:
        value: Any = json.loads(text)
        if isinstance(value, list):
            pairs = list(enumerate(value))
        elif isinstance(value, dict):
            pairs = [(int(k), v) for k, v in value.items()]
        else:
            raise ValueError
        if not all(isinstance(t, int) and not isinstance(t, bool) and -1 <= t < 256 for _, t in pairs):
            raise ValueError
    except ValueError:
        raise BadRequest('mapping: give a JSON list of trays per filament ([0, 2, -1]) or an object '
                         '({"0": 0, "3": 2})') from None
    return {f: t for f, t in pairs if t >= 0}


async def _analyse(content: bytes, plate: int | None) -> PrintAnalysis:
    try:
        return await asyncio.to_thread(analyze_file, io.BytesIO(content), plate)
    except AnalysisError as exc:
        raise BadRequest(f"cannot read the file: {exc}") from None


async def file_forecast(runtime: Runtime, content: bytes, *, printer: str | None, plate: str | None,
                        mapping_text: str | None) -> tuple[FileForecast, Forecast]:
    """The whole answer (and the forecast it was made of); raises BadRequest for a bad file, mapping or
    printer name."""
    mapping = parse_mapping(mapping_text)
    task = runtime.printers.get(printer) if printer else None
    if printer and task is None:
        raise BadRequest(str(UnknownPrinter(f"no printer named {printer!r}")))
    analysis = await _analyse(content, parse_plate(plate))
    trays: dict[int, TrayFacts] = {}
    auto_refill = None
    if task is not None:
        assert printer is not None
        assigned = {a.spool_id: a for a in await runtime.slots.assignments(printer)}
        found = await runtime.spools.get_many(assigned)  # Spoolman before the ledger (see tray_facts)
        waiting = await asyncio.to_thread(queued_grams, runtime.db)
        trays = tray_facts(task.snapshot, {a.tray: s for s, a in assigned.items()}, found, waiting)
        auto_refill = task.snapshot.auto_refill
    if mapping is None:
        mapping = match_loaded(analysis, trays)
    pace = Pace(float(analysis.prediction_s), 1, analysis.layer_count) if analysis.prediction_s else None
    result = forecast(analysis, -1, mapping, trays, pace, auto_refill=auto_refill)
    answer = FileForecast(analysis.plate, analysis.layer_count, printer)
    for tray in result.trays:
        answer.trays.append(TrayAnswer(
            tray.tray, tray.spool_id, tray.status, None if tray.status == "unknown" else tray.status == "enough",
            tray.runout_layer, tray.total_layers, tray.runout_in_s, tray.needed_g, tray.remaining_g, tray.filament,
            [f for f, t in sorted(mapping.items()) if t == tray.tray and f in analysis.filaments], list(tray.backups)))
    for index, info in sorted(analysis.filaments.items()):
        if index not in mapping:
            label = f"{info.type or '?'} {info.color}" if info.color else (info.type or "?")
            answer.unmapped.append(UnmappedFilament(index, label, round(filament_grams(info, info.mm), 2)))
    return answer, result


@post("/api/v1/forecast", request_max_body_size=MAX_UPLOAD_BYTES, tags=["layerwise"], status_code=200)
async def forecast_file(
    runtime: Runtime, data: Annotated[ForecastForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> FileForecast:
    """Will the spools last for this sliced file? Per tray: needed g, remaining g, enough or not, the
    runout layer. Warns only: nothing is started, stored or changed."""
    content = await data.file.read()
    answer, _ = await file_forecast(runtime, content, printer=data.printer, plate=data.plate,
                                    mapping_text=data.mapping)
    return answer


# ----- the phone page ------------------------------------------------------------------------------


@get("/forecast", include_in_schema=False)
async def forecast_page(runtime: Runtime, request: Request) -> Template:
    return _page(request, "forecast.html", printers=list(runtime.printers))


async def _answer(runtime: Runtime, request: Request, data: ForecastForm) -> dict[str, Any]:
    """The answer partial's values for the page (a bad file or name becomes its ``problem``)."""
    try:
        answer, result = await file_forecast(runtime, await data.file.read(), printer=data.printer or None,
                                     plate=data.plate, mapping_text=data.mapping)
    except BadRequest as exc:
        return {"problem": str(exc.detail)}
    task = runtime.printers.get(answer.printer) if answer.printer else None
    lines = []
    for tray in result.trays:
        view = task.snapshot.tray(tray.tray) if task is not None else None
        label = tray_label(view, len(task.snapshot.view.external)) if view is not None and task else str(tray.tray)
        lines.append(ForecastLine(tray.tray, label, filament_words(tray.filament), tray))
    return {"answer": answer, "lines": lines, "file_name": data.file.filename, "problem": None}


@post("/forecast/check", include_in_schema=False, request_max_body_size=MAX_UPLOAD_BYTES)
async def forecast_check(
    runtime: Runtime, request: Request, data: Annotated[ForecastForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Template:
    return _partial(request, "partials/forecast_result.html", **await _answer(runtime, request, data))


async def _shared_by_the_phone(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    """The share sheet's POST is the browser's own navigation (``Sec-Fetch-Site: none``); an installed app
    is served over HTTPS, where browsers always send the header. Scripts and pages pass as everywhere (a
    bearer token, already checked by the app's CSRF guard, or the CSRF pair). Before the upload is read."""
    site = connection.headers.get("sec-fetch-site")
    if site in ("none", "same-origin") or csrf.bearer_token(connection.headers.get("authorization")) is not None:
        return
    if csrf.csrf_problem(connection.cookies.get(csrf.COOKIE_NAME), connection.headers.get(csrf.HEADER_NAME),
                         site) is not None:
        raise PermissionDeniedException("only the phone's share sheet may post here")


@post("/forecast/share", include_in_schema=False, request_max_body_size=MAX_UPLOAD_BYTES, status_code=200,
      opt={csrf.FORM_CHECKED: True}, guards=[_shared_by_the_phone])
async def forecast_share(
    runtime: Runtime, request: Request, data: Annotated[ForecastForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Template:
    """The web manifest's share target: a file shared to the installed app from another one. The phone
    posts it with no CSRF token (it cannot), so this answers only what the share sheet sends
    (``Sec-Fetch-Site: none``) or the app itself; it changes nothing in any case, it only reads."""
    if not data.printer and runtime.printers:
        data.printer = next(iter(runtime.printers))  # as loaded now on the first printer; the page offers others
    return _page(request, "forecast.html", printers=list(runtime.printers), **await _answer(runtime, request, data))


handlers = [forecast_file, forecast_page, forecast_check, forecast_share]
