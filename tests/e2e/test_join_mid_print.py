"""Layerwise started while a printer is already printing (issue 9 item 0): what a new user does first.

The virtual X1C reports its slot mapping (`mapping`) in every full report. Layerwise joins at layer 100
of 192 with no job of its own: the print is billed whole, the layers before the join included (the file's
analysis knows them and the checkpoint says "billed through"), every bill to its tray's spool.
"""

from __future__ import annotations

import pytest
from e2e_stack import CUBE_1, PRINT_FILES, XMAS, XMAS_MAPPING, StackFactory, analysis_of, mapping_of, per_tray

from server.billing.settlement import WAITING_TRAY
from server.jobs import store as job_store
from tests.billing.ledger_rows import ledger_entries

pytestmark = pytest.mark.slow  # prints a whole real file


@pytest.mark.parametrize("announce", [True, False])
async def test_layerwise_started_while_an_x1c_prints_bills_the_whole_print(make_stack: StackFactory,
                                                                          announce: bool) -> None:
    analysis = analysis_of(XMAS)
    mapping = mapping_of(XMAS_MAPPING)
    async with make_stack(("X1C",)) as stack:
        printer = stack.rigs["p0"].printer
        await stack.web.stop()  # Layerwise is not running yet (it has seen no print)
        printer.add_file(f"/cache/{XMAS}", PRINT_FILES / XMAS)
        await printer.start_print(f"/cache/{XMAS}", ams_mapping=XMAS_MAPPING, announce=announce)
        await printer.goto_layer(100)
        await stack.restart()  # Layerwise starts: the printer is at layer 100
        await stack.wait_analysed("p0")
        job = stack.job("p0")
        assert job is not None and job.mapping == mapping
        await stack.wait_billed("p0", 99)  # everything before the join, at once
        await stack.complete("p0", 23, per_tray(analysis.totals(), mapping))

        entries = ledger_entries(stack.runtime.db)
        assert [e for e in entries if e.state == WAITING_TRAY or e.tray is None] == []
        assert min(e.layer for e in entries) == 0
        jobs = job_store.list_jobs(stack.runtime.db, "p0")
        assert [(j.job.state, j.job.final) for j in jobs] == [("finished", True)]


async def test_layerwise_started_while_a_p1s_prints_one_colour_learns_the_tray(make_stack: StackFactory) -> None:
    """A P1S reports no mapping: the single filament's tray is learned from the loaded tray, and the
    layers before the join are billed to it as well."""
    analysis = analysis_of(CUBE_1)
    async with make_stack(("P1S",)) as stack:
        printer = stack.rigs["p0"].printer
        await stack.web.stop()
        printer.add_file(f"/cache/{CUBE_1}", PRINT_FILES / CUBE_1)
        await printer.start_print(f"/cache/{CUBE_1}", ams_mapping=[2], announce=False)
        await printer.goto_layer(20)
        await stack.restart()
        await stack.wait_analysed("p0")
        await stack.complete("p0", 10, per_tray(analysis.totals(), {0: 2}))
        assert [e for e in ledger_entries(stack.runtime.db) if e.tray != 2] == []
