"""A whole 4-colour print of the real X1C sample file, followed layer by layer, then a second print."""

from __future__ import annotations

import pytest
from e2e_stack import CUBE_1, PRINT_FILES, XMAS, XMAS_MAPPING, StackFactory, add, analysis_of, mapping_of, per_tray

from server.jobs import store as job_store

pytestmark = pytest.mark.slow  # each prints a whole real file; most take over 5 s on two shared cores


async def test_complete_four_colour_print_layer_by_layer(make_stack: StackFactory) -> None:
    analysis = analysis_of(XMAS)
    async with make_stack(("P1S",)) as stack:
        printer = stack.rigs["p0"].printer
        printer.add_file("/cache/xmas.gcode.3mf", PRINT_FILES / XMAS)
        await printer.start_print("/cache/xmas.gcode.3mf", ams_mapping=XMAS_MAPPING)
        await stack.wait_analysed("p0")
        for layer in range(1, analysis.layer_count + 1):
            await printer.advance()
            await stack.wait_layer("p0", layer)
            # Layer n is billed once the printer reports a layer above it (the prelude with layer 1).
            await stack.wait_billed("p0", layer - 1)
            assert stack.job("p0").billing.billed_through == layer - 1  # type: ignore[union-attr]
        await printer.finish()
        await stack.wait_ended("p0", "finished")
        await stack.wait_delivered()

        stack.assert_billed("p0", per_tray(analysis.used_through(analysis.layer_count), mapping_of(XMAS_MAPPING)))
        stack.assert_no_duplicate_bills()
        jobs = job_store.list_jobs(stack.runtime.db, "p0")
        assert [(j.job.state, j.job.final) for j in jobs] == [("finished", True)]
        # The job history in the API: millimetres per spool, all delivered.
        response = await stack.client.get("/api/v1/jobs")
        assert response.status_code == 200
        (listed,) = response.json()
        trays = {spool: tray for tray, spool in stack.rigs["p0"].spools.items()}
        expected = per_tray(analysis.totals(), mapping_of(XMAS_MAPPING))
        assert {trays[u["spool_id"]]: u["mm_delivered"] for u in listed["usage"]} == pytest.approx(expected, abs=0.01)
        assert listed["mm"] == pytest.approx(sum(analysis.totals().values()), abs=0.01)


async def test_a_second_print_straight_after_the_first(make_stack: StackFactory) -> None:
    """The 4-colour print finishes and a 1-colour print starts at once, in steps of several layers."""
    xmas, cube = analysis_of(XMAS), analysis_of(CUBE_1)
    cube_mapping = [2]
    async with make_stack(("P1S",)) as stack:
        printer = stack.rigs["p0"].printer
        printer.add_file("/cache/xmas.gcode.3mf", PRINT_FILES / XMAS)
        printer.add_file("/cache/cube.gcode.3mf", PRINT_FILES / CUBE_1)
        await printer.start_print("/cache/xmas.gcode.3mf", ams_mapping=XMAS_MAPPING)
        await stack.wait_analysed("p0")
        while printer.layer < xmas.layer_count:
            await printer.advance(17)
            await stack.wait_layer("p0")
        await printer.finish()
        await printer.start_print("/cache/cube.gcode.3mf", ams_mapping=cube_mapping)
        await stack.wait_analysed("p0")
        first = stack.task("p0").jobs.job_id
        while printer.layer < cube.layer_count:
            await printer.advance(7)
            await stack.wait_layer("p0")
        await printer.finish()
        await stack.wait_ended("p0", "finished")
        await stack.wait_delivered()

        expected = add(per_tray(xmas.totals(), mapping_of(XMAS_MAPPING)),
                       per_tray(cube.totals(), mapping_of(cube_mapping)))
        stack.assert_billed("p0", expected)
        stack.assert_no_duplicate_bills()
        jobs = job_store.list_jobs(stack.runtime.db, "p0")
        assert sorted((j.job.file_name, j.job.state) for j in jobs) == [("cube", "finished"), ("xmas", "finished")]
        assert first is not None
