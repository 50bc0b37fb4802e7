"""Faults around fetching the job's file, found by the fault campaign (bench/faults)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from e2e_stack import (
    PRINT_FILES,
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

from server.jobs import files as job_files
from server.jobs import store as job_store
from server.printer.errors import PrinterUnreachable

MAPPING = mapping_of(XMAS_MAPPING)

pytestmark = pytest.mark.slow


async def test_a_dropped_ftps_connection_is_retried_not_fatal(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysis = analysis_of(XMAS)
    failures = [PrinterUnreachable("printer p0: connection refused"), PrinterUnreachable("printer p0: EOF")]
    real_fetch = job_files.JobFiles._fetch_file

    async def flaky_fetch(self, *args, **kwargs):
        if failures:
            raise failures.pop(0)
        return await real_fetch(self, *args, **kwargs)

    monkeypatch.setattr(job_files.JobFiles, "_fetch_file", flaky_fetch)
    monkeypatch.setattr(job_files, "FETCH_RETRY_DELAYS", (0.1, 0.1, 0.1))
    async with make_stack() as stack:
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.wait_analysed("p0")
        assert not failures
        await stack.complete("p0", step=64, expected_per_tray=per_tray(
            analysis.used_through(analysis.layer_count), MAPPING))


async def test_a_job_that_ended_before_its_file_was_read_is_billed_after_the_restart(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layerwise stops while the file is still being fetched; the print finishes meanwhile."""
    analysis = analysis_of(XMAS)
    blocked = asyncio.Event()
    real_fetch = job_files.JobFiles._fetch_file

    async def stuck_fetch(self, *args, **kwargs):
        blocked.set()
        await asyncio.Event().wait()  # never returns: cancelled when Layerwise stops
        return await real_fetch(self, *args, **kwargs)

    async with make_stack() as stack:
        printer = stack.rigs["p0"].printer
        monkeypatch.setattr(job_files.JobFiles, "_fetch_file", stuck_fetch)
        printer.add_file(f"/cache/{XMAS}", PRINT_FILES / XMAS)
        await printer.start_print(f"/cache/{XMAS}", ams_mapping=XMAS_MAPPING)
        await asyncio.wait_for(blocked.wait(), 20)
        await stack.web.stop()
        monkeypatch.setattr(job_files.JobFiles, "_fetch_file", real_fetch)
        await printer.goto_layer(analysis.layer_count)
        await printer.finish()
        await stack.restart()
        await stack.wait_ended("p0", "finished")
        await stack.wait_billed("p0", analysis.layer_count)  # the file is fetched and read after the restart
        await stack.wait_delivered()
        stack.assert_billed("p0", per_tray(analysis.used_through(analysis.layer_count), MAPPING))
        stack.assert_no_duplicate_bills()


async def test_a_new_print_does_not_drop_the_last_job_whose_file_is_still_being_read(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch of job A's file keeps failing; A is cancelled and B starts meanwhile (B's own fetch
    succeeds). A is still read once its fetch succeeds and billed (pro rata), and B is billed whole
    (found by the fault campaign). A's fetch fails until the test says so (an event, not a clock), so
    "A is not read yet" holds however slow the machine is."""
    analysis = analysis_of(XMAS)
    real_fetch = job_files.JobFiles._fetch_file
    release_first = asyncio.Event()
    first_folder: list[Path] = []  # the job folder of the first fetch: job A's
    failures = [0]

    async def flaky_fetch(self, job, current, folder: Path):
        if not first_folder:
            first_folder.append(folder)
        if folder == first_folder[0] and not release_first.is_set():
            failures[0] += 1
            raise PrinterUnreachable("printer p0: connection dropped")
        return await real_fetch(self, job, current, folder)

    monkeypatch.setattr(job_files.JobFiles, "_fetch_file", flaky_fetch)
    # Retried often and for long enough (10,000 x 0.05 s) that A's fetch only ever ends by the release.
    monkeypatch.setattr(job_files, "FETCH_RETRY_DELAYS", (0.05,) * 10_000)
    async with make_stack() as stack:
        printer = stack.rigs["p0"].printer
        printer.add_file(f"/cache/{XMAS}", PRINT_FILES / XMAS)
        await printer.start_print(f"/cache/{XMAS}", ams_mapping=XMAS_MAPPING)
        await printer.goto_layer(6)
        await printer.progress_within_layer(0.5)
        percent = printer.state["print"]["mc_percent"]
        await stack.wait_layer("p0", 6)
        await printer.cancel()
        await stack.wait_ended("p0", "cancelled")
        assert failures[0] > 0 and stack.task("p0").jobs.analysis is None  # A's file is not read yet
        first_job = stack.job("p0")

        await stack.start("p0", XMAS, XMAS_MAPPING)  # B: the same file printed again, read at once
        assert stack.job("p0") != first_job
        release_first.set()  # now A's fetch succeeds at its next retry
        await until(lambda: any(summary.job.state == "cancelled" and summary.usage
                                for summary in job_store.list_jobs(stack.runtime.db, "p0")), "job A billed")
        await stack.complete("p0", step=64, expected_per_tray=add(
            per_tray(cancelled_usage(analysis, 6, percent), MAPPING),
            per_tray(analysis.used_through(analysis.layer_count), MAPPING)))
        jobs = {job.job.state for job in job_store.list_jobs(stack.runtime.db, "p0")}
        assert jobs == {"cancelled", "finished"}
