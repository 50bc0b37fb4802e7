"""Usage reports: the page (``/reports``: pickers, a server-drawn SVG bar chart, a table) and the API
(``GET /api/v1/reports/usage``, JSON or CSV). The figures come from ``server.billing.usage``."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import ValidationException
from litestar.response import Template

from server.billing import usage
from server.billing.usage import Group, Period, UsageRow
from server.runtime import Runtime
from server.web.charts import Chart, bar_chart
from server.web.i18n import N_
from server.web.pages import _context

MAX_DAYS = 3700  # about ten years: a report longer than that is a typo, and would be slow to draw
PRICE_RULE = ("the spool's price in Spoolman, else its filament's price, divided by the spool's net weight "
              "(its initial weight, else the filament's weight)")
FORMATS = ("json", "csv")
# The labels server.billing.usage gives rows without a spool, filament or material (it cannot import the
# web's i18n): marked here for extraction, translated by the page with the translate filter.
FALLBACK_LABELS = (N_("Not on a spool yet"), N_("Unknown filament"), N_("Unknown material"))


@dataclass(frozen=True)
class ReportQuery:
    group: Group
    period: Period
    since: date
    until: date
    format: str = "json"


def _choice(params: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value[:40]!r}")
    return value


def _day(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name)
    if not value:
        return None
    try:
        if len(value) > 32:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date such as 2026-03-01, not {value[:40]!r}") from None


def parse_query(params: Mapping[str, str], today: date) -> ReportQuery:
    """The report asked for, or ``ValueError`` saying what is wrong (pure)."""
    group = Group(_choice(params, "group", tuple(Group), Group.SPOOL))
    period = Period(_choice(params, "period", tuple(Period), Period.WEEK))
    form = _choice(params, "format", FORMATS, "json")
    since, until = usage.window(_day(params, "since"), _day(params, "until"), period, today)
    if since > until:
        raise ValueError("since must not be after until")
    if (until - since).days > MAX_DAYS:
        raise ValueError(f"a report covers at most {MAX_DAYS} days")
    return ReportQuery(group, period, since, until, form)


async def build_rows(runtime: Runtime, query: ReportQuery) -> list[UsageRow]:
    entries = await asyncio.to_thread(usage.usage_entries, runtime.db, query.since, query.until,
                                     query.period)
    ids = {e.spool_id for e in entries if e.spool_id is not None}
    known = await runtime.spools.get_many(ids) if ids else {}
    spools = {i: usage.spool_info(s) for i, s in known.items() if s is not None}
    return usage.aggregate(entries, spools, query.group, query.period)


def row_dict(row: UsageRow) -> dict[str, Any]:
    return {"period": row.period.isoformat(), "key": row.key, "label": row.label,
            "grams_delivered": round(row.grams_delivered, 3), "grams_pending": round(row.grams_pending, 3),
            "cost_delivered": round(row.cost_delivered, 6), "cost_pending": round(row.cost_pending, 6),
            "cost_complete": row.cost_complete}


def _cell(value: Any) -> Any:
    """A spreadsheet would run a label such as ``=HYPERLINK(...)`` as a formula: such text is quoted with '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(query: ReportQuery, rows: list[UsageRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; the csv module quotes commas, quotes, newlines
    columns = ["period", query.group.value, "label", "grams_delivered", "grams_pending", "cost_delivered",
               "cost_pending", "cost_complete"]
    writer.writerow(columns)
    for row in rows:
        data = row_dict(row)
        writer.writerow([_cell(data[c]) for c in ("period", "key", "label", *columns[3:])])
    return out.getvalue()


def _params(request: Request) -> dict[str, str]:
    return {key: value for key, value in request.query_params.items() if isinstance(value, str)}


@get("/api/v1/reports/usage", tags=["layerwise"])
async def usage_report(runtime: Runtime, request: Request) -> Response[Any]:
    """Grams and cost per ``group`` (spool, filament, material, printer) and ``period`` (day, week, month),
    from ``since`` through ``until`` (UTC dates, both included), as ``format`` json or csv."""
    try:
        query = parse_query(_params(request), datetime.now(UTC).date())
    except ValueError as error:
        raise ValidationException(str(error)) from None
    rows = await build_rows(runtime, query)
    if query.format == "csv":
        name = f"layerwise-usage-{query.group}-{query.period}-{query.since}-{query.until}.csv"
        return Response(to_csv(query, rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
    body = {"group": query.group.value, "period": query.period.value, "since": query.since.isoformat(),
            "until": query.until.isoformat(), "price_rule": PRICE_RULE,
            "spoolman_error": runtime.spools.last_error is not None, "rows": [row_dict(r) for r in rows]}
    return Response(body, headers={"Cache-Control": "no-store"})


def chart_of(query: ReportQuery, rows: list[UsageRow]) -> Chart:
    """Grams per period (every group together), empty periods included."""
    totals = {start: [0.0, 0.0] for start in usage.periods(query.since, query.until, query.period)}
    for row in rows:
        pair = totals.setdefault(row.period, [0.0, 0.0])
        pair[0] += row.grams_delivered
        pair[1] += row.grams_pending
    label = {Period.DAY: "%b %d", Period.WEEK: "%b %d", Period.MONTH: "%b %Y"}[query.period]
    return bar_chart([(start.strftime(label), d, p) for start, (d, p) in sorted(totals.items())])


@get("/reports", include_in_schema=False)
async def reports_page(runtime: Runtime, request: Request) -> Template:
    params = _params(request)
    today = datetime.now(UTC).date()
    try:
        query, problem = parse_query(params, today), None
    except ValueError as error:
        query, problem = parse_query({}, today), str(error)
    rows = await build_rows(runtime, query)
    csv_link = (f"/api/v1/reports/usage?group={query.group}&period={query.period}&since={query.since}"
                f"&until={query.until}&format=csv")
    totals = (sum(r.grams_delivered for r in rows), sum(r.grams_pending for r in rows),
              sum(r.cost_delivered + r.cost_pending for r in rows), all(r.cost_complete for r in rows))
    return Template("reports.html", status_code=400 if problem else 200, context=_context(
        request, query=query, rows=rows, chart=chart_of(query, rows), problem=problem, csv_link=csv_link,
        totals=totals, groups=list(Group), periods=list(Period), spoolman_error=runtime.spools.last_error),
        headers={"Cache-Control": "no-store"})


handlers = [usage_report, reports_page]
