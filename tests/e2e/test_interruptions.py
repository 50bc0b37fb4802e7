"""Prints that do not simply run through: cancel, pause, a dropped broker, Spoolman down, a reassignment.

Each drives the X1C 4-colour sample file on a virtual P1S, a few layers per step (billing catches up on
jumps), and checks every spool against the analysis to 0.01 mm.
"""

from __future__ import annotations

import pytest
from e2e_stack import (
    CUBE_1,
    XMAS,
    XMAS_MAPPING,
    StackFactory,
    add,
    analysis_of,
    cancelled_usage,
    mapping_of,
    per_tray,
    until,
)

from server.jobs import store as job_store

MAPPING = mapping_of(XMAS_MAPPING)

pytestmark = pytest.mark.slow  # each prints a whole real file; most take over 5 s on two shared cores


@pytest.mark.parametrize(("layer", "fraction"), [(100, 0.6), (131, 0.0), (2, 1.0), (1, 0.5), (0, 0.5)])
async def test_cancel_during_layer_k_bills_it_pro_rata(make_stack: StackFactory, layer: int, fraction: float) -> None:
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        printer = stack.rigs["p0"].printer
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", layer, step=23)
        await printer.progress_within_layer(fraction)
        percent = printer.state["print"]["mc_percent"]
        await stack.wait_layer("p0")
        await until(lambda: stack.task("p0").state.get("mc_percent") == percent, f"mc_percent {percent} seen")
        await printer.cancel()
        await stack.wait_ended("p0", "cancelled")
        await printer.clear_print_error()  # firmware clears the code seconds later: nothing changes
        await until(lambda: stack.task("p0").state.get("print_error") == 0, "print_error cleared")
        await stack.wait_delivered()

        stack.assert_billed("p0", per_tray(cancelled_usage(analysis, layer, percent), MAPPING))
        stack.assert_no_duplicate_bills()
        job = stack.job("p0")
        assert job is not None and job.lifecycle == "cancelled"


async def test_pause_and_resume(make_stack: StackFactory) -> None:
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        printer = stack.rigs["p0"].printer
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 90, step=30)
        await printer.progress_within_layer(0.5)
        await printer.pause()
        await stack.wait_state("p0", "PAUSE")
        await stack.wait_lifecycle("p0", "paused")
        await stack.wait_billed("p0", 89)
        assert stack.job("p0").billing.billed_through == 89  # type: ignore[union-attr]  # a pause bills nothing more
        await printer.resume()
        await stack.wait_state("p0", "RUNNING")
        await stack.wait_lifecycle("p0", "running")
        await stack.complete("p0", 30, per_tray(analysis.totals(), MAPPING))


async def test_layerwise_restarted_while_the_print_is_paused(make_stack: StackFactory) -> None:
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        printer = stack.rigs["p0"].printer
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 90, step=45)
        await printer.pause()
        await stack.wait_lifecycle("p0", "paused")
        await stack.restart()
        await stack.wait_report_handled("p0")  # the resume decision is made on the first report
        job = stack.job("p0")
        assert job is not None and job.lifecycle == "paused"
        await printer.resume()
        await stack.wait_lifecycle("p0", "running")
        await stack.complete("p0", 34, per_tray(analysis.totals(), MAPPING))
        assert len(job_store.list_jobs(stack.runtime.db, "p0")) == 1


async def test_cancelled_while_layerwise_was_stopped(make_stack: StackFactory) -> None:
    """The cancel happens while Layerwise is down: after the restart the job is settled from the printer's
    state (FAILED with the cancel code, its layer and mc_percent) and layer 100 is billed pro rata."""
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        printer = stack.rigs["p0"].printer
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 90, step=45)
        await stack.web.stop()
        await printer.advance(10)
        await printer.progress_within_layer(0.6)
        percent = printer.state["print"]["mc_percent"]
        await printer.cancel()
        await stack.restart()
        await stack.wait_ended("p0", "cancelled")
        await stack.wait_delivered()

        stack.assert_billed("p0", per_tray(cancelled_usage(analysis, 100, percent), MAPPING))
        stack.assert_no_duplicate_bills()


async def test_broker_dropping_mid_print(make_stack: StackFactory) -> None:
    """Connections dropped once; later the broker is down while the printer prints 40 layers unseen."""
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        printer, task = stack.rigs["p0"].printer, stack.task("p0")
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 40, step=20)
        await printer.drop_connections()
        await printer.advance(5)  # reported to nobody, or to a client already reconnecting
        await stack.wait_ready("p0")
        await stack.run_to("p0", 80, step=20)

        await printer.stop_broker()
        await until(lambda: not task.online, "the link noticing the broker is gone")
        await printer.advance(40)
        await printer.progress_within_layer(0.5)
        await printer.start_broker()
        await stack.wait_ready("p0")
        # The pushall after this reconnect is held back by its rate limit (one per 30 s), so the layers
        # printed unseen show with the next layer change; billing catches up on the jump.
        await stack.run_to("p0", 121)
        await stack.complete("p0", 24, per_tray(analysis.totals(), MAPPING))


async def test_spoolman_down_for_the_middle_third(make_stack: StackFactory) -> None:
    analysis = analysis_of(XMAS)
    third = analysis.layer_count // 3
    async with make_stack() as stack:
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", third, step=16)
        await stack.wait_delivered()
        before = stack.used_per_tray("p0")
        await stack.spoolman.stop()
        await stack.run_to("p0", 2 * third, step=16)
        # Bills queue while Spoolman is away, and the backlog shows them.
        assert stack.runtime.outbox is not None
        status = await stack.runtime.outbox.backlog()
        assert status.backlog.count > 0
        response = await stack.client.get("/api/v1/backlog")
        assert response.status_code == 200 and response.json()["backlog"]["count"] > 0
        assert stack.used_per_tray("p0") == before
        await stack.spoolman.start()
        await stack.complete("p0", 16, per_tray(analysis.totals(), MAPPING))


async def test_reassignment_mid_print_applies_from_the_next_layer(make_stack: StackFactory) -> None:
    """Tray 1 (filament 1) gets a new spool while layer 120 prints: layers 1-119 stay on the old spool."""
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 120, step=40)
        old, _new = await stack.put_new_spool("p0", 1)
        before = analysis.used_through(119)[1]
        await stack.complete("p0", 40, per_tray(analysis.totals(), MAPPING) | {1: analysis.totals()[1] - before})
        assert stack.used_length(old) == pytest.approx(before, abs=0.01)


@pytest.mark.parametrize("after_a_print", [False, True], ids=["fresh-printer", "after-a-print"])
async def test_print_started_from_the_screen_learns_the_mapping(make_stack: StackFactory, after_a_print: bool) -> None:
    """No project_file echo and no mapping report (P1S): the trays are learned from the filament changes.

    ``fresh-printer``: the printer reported ``layer_num`` 0 before the job, so the RUNNING report's
    ``layer_num`` 0 changes nothing in the merged state. ``after-a-print``: a 1-colour print ran first.
    """
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        expected: dict[int, float] = {}
        if after_a_print:
            cube = analysis_of(CUBE_1)
            await stack.start("p0", CUBE_1, [3])
            await stack.run_to("p0", cube.layer_count, step=25)
            await stack.finish("p0")
            expected = per_tray(cube.totals(), {0: 3})
        await stack.start("p0", XMAS, XMAS_MAPPING, announce=False)
        await stack.run_to("p0", analysis.layer_count, step=12)
        await stack.finish("p0")
        job = stack.job("p0")
        assert job is not None and not job.announced and not job.mapping
        assert dict(job.learned) == MAPPING
        await stack.wait_delivered()

        stack.assert_billed("p0", add(expected, per_tray(analysis.totals(), MAPPING)))
        stack.assert_no_duplicate_bills()


async def test_cancel_while_paused(make_stack: StackFactory) -> None:
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        printer = stack.rigs["p0"].printer
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 128, step=32)
        await printer.progress_within_layer(0.7)
        percent = printer.state["print"]["mc_percent"]
        await printer.pause()
        await stack.wait_lifecycle("p0", "paused")
        await printer.cancel()
        await stack.wait_ended("p0", "cancelled")
        await stack.wait_delivered()

        stack.assert_billed("p0", per_tray(cancelled_usage(analysis, 128, percent), MAPPING))
        stack.assert_no_duplicate_bills()


async def test_tray_emptied_mid_print_keeps_its_bills_until_a_spool_is_assigned(make_stack: StackFactory) -> None:
    """Tray 0's spool is unassigned at layer 60; its bills wait (visibly) until a new spool is assigned."""
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 60, step=30)
        assert (await stack.client.delete("/api/v1/printers/p0/slots/0")).status_code == 204
        await stack.run_to("p0", 120, step=30)
        backlog = (await stack.client.get("/api/v1/backlog")).json()["backlog"]
        assert [(w["tray"], w["state"]) for w in backlog["waiting"]] == [(0, "waiting_spool")]
        old, _new = await stack.put_new_spool("p0", 0)
        before = analysis.used_through(59)[0]
        await stack.complete("p0", 36, per_tray(analysis.totals(), MAPPING) | {0: analysis.totals()[0] - before})
        assert stack.used_length(old) == pytest.approx(before, abs=0.01)


async def test_screen_print_after_a_cancel_with_its_first_filament_still_loaded(make_stack: StackFactory) -> None:
    """A cancelled job leaves tray 0 loaded; the next print, started from the screen, begins with the filament
    in tray 0, so its first load makes no tray report at all. The mapping is learned from the later changes."""
    analysis = analysis_of(XMAS)
    async with make_stack() as stack:
        printer = stack.rigs["p0"].printer
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 50, step=25)
        percent = printer.state["print"]["mc_percent"]
        await printer.cancel()
        await stack.wait_ended("p0", "cancelled")
        first = per_tray(cancelled_usage(analysis, 50, percent), MAPPING)
        await stack.start("p0", XMAS, XMAS_MAPPING, announce=False)
        await stack.run_to("p0", analysis.layer_count, step=12)
        await stack.finish("p0")
        job = stack.job("p0")
        assert job is not None and dict(job.learned) == MAPPING  # checked first: otherwise every bill waits
        await stack.wait_delivered()
        stack.assert_billed("p0", add(first, per_tray(analysis.totals(), MAPPING)))
        stack.assert_no_duplicate_bills()
