"""Two printers printing at once: each job bills its own printer's spools, nothing crosses over."""

from __future__ import annotations

import asyncio

import pytest
from e2e_stack import CUBE_4, XMAS, XMAS_MAPPING, StackFactory, analysis_of, mapping_of, per_tray

from server.jobs import store as job_store

pytestmark = pytest.mark.slow  # each prints a whole real file; most take over 5 s on two shared cores


async def test_two_printers_printing_at_once(make_stack: StackFactory) -> None:
    """A P1S (delta reports) prints the X1C file; an X1C (full reports, its own mapping report) the A1 cube."""
    xmas, cube = analysis_of(XMAS), analysis_of(CUBE_4)
    cube_mapping = [3, 0, 2, 1]
    async with make_stack(("P1S", "X1C")) as stack:
        await asyncio.gather(stack.start("p0", XMAS, XMAS_MAPPING), stack.start("p1", CUBE_4, cube_mapping))
        await asyncio.gather(
            stack.complete("p0", 16, per_tray(xmas.totals(), mapping_of(XMAS_MAPPING))),
            stack.complete("p1", 4, per_tray(cube.totals(), mapping_of(cube_mapping))),
        )
        for name, file in (("p0", "xmas"), ("p1", "testqube")):
            (job,) = job_store.list_jobs(stack.runtime.db, name)
            assert job.job.state == "finished" and job.job.file_name.startswith(file)
            assert {usage.spool_id for usage in job.usage} == set(stack.rigs[name].spools.values())
