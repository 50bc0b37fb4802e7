"""The Jobs page: every print, newest first, with its plate, state and what it used per spool (grams and
cost from Spoolman's price). Server-rendered; the job's own page (``/jobs/{id}``) has the per-layer billing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template

from server.billing.statements import job_name
from server.jobs import store as job_store
from server.jobs.store import JobSummary
from server.runtime import Runtime
from server.web.i18n import N_
from server.web.ledger_actions import MAX_ID
from server.web.pages import _context
from server.web.views import SpoolOut

JOBS_PAGE = 20
# The tracker's lifecycle states (server.jobs.lifecycle) as a person reads them.
# Marked for translation here (N_), translated where a page shows them.
JOB_STATES = {"finished": N_("Finished"), "cancelled": N_("Cancelled"), "failed": N_("Failed"),
              "running": N_("Printing"), "printing": N_("Printing"), "paused": N_("Paused"),
              "resuming": N_("Resuming"), "downloading": N_("Fetching the file"), "parsing": N_("Reading the file"),
              "untracked": N_("Not tracked")}


def job_state_words(state: str) -> str:
    return JOB_STATES.get(state.lower(), state.replace("_", " ").capitalize())


@dataclass
class UsageRow:
    spool_id: int | None
    label: str
    colour: str | None
    grams: float
    cost: float | None  # None when Spoolman has no price for the spool


@dataclass
class JobRow:
    id: int
    name: str
    printer: str
    state: str
    started: str
    thumbnail: str | None
    grams: float
    cost: float | None
    usage: list[UsageRow]
    started_at: datetime | None = None  # for the page, in its language (``started`` is the English form)


def job_row(summary: JobSummary, spools: dict[int, SpoolOut]) -> JobRow:
    """One line of the Jobs page (pure): grams per spool, cost where Spoolman knows the price."""
    job = summary.job
    usage = []
    for part in summary.usage:
        spool = spools.get(part.spool_id) if part.spool_id is not None else None
        if part.spool_id is None:
            label = N_("not on a spool yet")
        else:
            label = f"#{part.spool_id} {spool.name}" if spool else f"#{part.spool_id}"
        price = spool.price_per_gram if spool else None
        usage.append(UsageRow(part.spool_id, label, spool.color_hex if spool else None, part.grams,
                              None if price is None else part.grams * price))
    costs = [u.cost for u in usage]
    total_cost = sum(c for c in costs if c is not None) if costs and all(c is not None for c in costs) else None
    return JobRow(job.id, job_name(job.file_name, job.job_key), job.printer, job_state_words(job.state),
                  job.started_at.strftime("%Y-%m-%d %H:%M"),
                  f"/api/v1/jobs/{job.id}/thumbnail.png" if job.thumbnail else None, summary.grams, total_cost, usage,
                  job.started_at)


@get("/jobs", include_in_schema=False)
async def jobs_page(runtime: Runtime, request: Request,
                    offset: Annotated[int, Parameter(ge=0, le=MAX_ID)] = 0) -> Template:
    found = await asyncio.to_thread(job_store.list_jobs, runtime.db, None, JOBS_PAGE + 1, offset)
    more = len(found) > JOBS_PAGE
    found = found[:JOBS_PAGE]
    ids = {u.spool_id for s in found for u in s.usage if u.spool_id is not None}
    known = await runtime.spools.get_many(ids) if ids else {}
    spools = {i: SpoolOut.of(s) for i, s in known.items() if s is not None}
    rows = [job_row(s, spools) for s in found]
    return Template("jobs.html", context=_context(
        request, jobs=rows, offset=offset, previous_offset=max(0, offset - JOBS_PAGE) if offset else None,
        next_offset=offset + JOBS_PAGE if more else None, spoolman_error=runtime.spools.last_error),
        headers={"Cache-Control": "no-store"})


handlers = [jobs_page]
