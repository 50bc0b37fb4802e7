"""Every printer mode, end to end: LAN-only, Developer Mode, cloud mode with authorization control
(requests refused with an error answer, P1-style deltas, an https URL) and firmware that never answers.

A print is billed exactly in each; with requests refused, a SIGKILL of Layerwise mid-print still bills
every layer exactly once after the restart, from the printer's deltas alone (issue 10).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from e2e_stack import (
    ACCESS_CODE,
    PRINT_FILES,
    TOLERANCE,
    XMAS,
    XMAS_MAPPING,
    analysis_of,
    mapping_of,
    per_tray,
    seed_spools,
    until,
)
from pydantic import SecretStr
from test_sigkill import backlog_empty, billed_through, checkpoint, printer_seen

from server.config import PrinterConfig, ServerConfig, Settings, SpoolmanConfig
from server.db import open_database
from server.jobs import store as job_store
from server.runtime import Runtime
from server.sim.printer import VirtualPrinter
from server.sim.process import LayerwiseProcess
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore
from server.web.app import create_app
from server.web.embedded import EmbeddedServer
from tests.billing.ledger_rows import ledger_entries

pytestmark = pytest.mark.slow
NAME = "p0"


def config_of(printer: VirtualPrinter) -> PrinterConfig:
    return PrinterConfig(name=NAME, host=printer.host, serial=printer.serial, access_code=SecretStr(ACCESS_CODE),
                         mqtt_port=printer.mqtt_port, ftps_port=printer.ftps_port, ca_file=printer.ca_cert_path,
                         model=printer.model)


def assert_exact(store: SpoolmanStore, spools: dict[int, int], db_path: Path) -> None:
    expected = per_tray(analysis_of(XMAS).totals(), mapping_of(XMAS_MAPPING))
    for tray, spool in spools.items():
        used = float(store.get_spool(spool)["used_length"])
        assert abs(used - expected.get(tray, 0.0)) <= TOLERANCE, (tray, used, expected.get(tray))
    db = open_database(db_path)
    try:
        keys = Counter((e.job_id, e.layer, e.filament_index) for e in ledger_entries(db))
        assert not [key for key, n in keys.items() if n > 1]
        assert len(job_store.list_jobs(db, NAME)) == 1
    finally:
        db.close()


@pytest.mark.parametrize("mode", ["lan", "developer", "cloud", "silent"])
async def test_a_print_is_billed_exactly_in_every_mode(tmp_path: Path, mode: str) -> None:
    analysis = analysis_of(XMAS)
    store = SpoolmanStore()
    spools = seed_spools(store, [0, 1, 2, 3])
    async with SpoolmanStandin(store) as spoolman, VirtualPrinter(
            serial="01S00E2E0000010", access_code=ACCESS_CODE, model="P1S", cert_dir=tmp_path / "certs",
            mode=mode) as printer:
        settings = Settings(server=ServerConfig(data_dir=tmp_path / "data"),
                            spoolman=SpoolmanConfig(url=spoolman.url, timeout=5),
                            printers=(config_of(printer),), seed_mappings={NAME: spools})
        runtime = Runtime.build(settings)
        web = EmbeddedServer(create_app(runtime), lifespan="on", name="layerwise")
        await web.start()
        try:
            task = runtime.printers[NAME]
            await until(lambda: task.online, "online")
            if mode == "cloud":
                await until(lambda: task.limited is not None, "the printer marked limited")
                assert "refuses requests" in str(task.limited) and "84033543" in str(task.limited)
                assert "LAN-only mode" in str(task.limited) and "Developer Mode" in str(task.limited)
                async with httpx.AsyncClient(base_url=web.url) as client:
                    page = (await client.get("/api/v1/printers/p0")).json()
                    assert "refuses requests" in page["limited"]
            elif mode != "silent":
                await until(lambda: task.state.get("ams") and "gcode_state" in task.state, "the full state")
                assert task.limited is None
            printer.add_file("/cache/xmas.gcode.3mf", PRINT_FILES / XMAS)
            await printer.start_print("/cache/xmas.gcode.3mf", ams_mapping=XMAS_MAPPING)
            if mode == "cloud":
                echo = next(r["print"] for r in printer.reports if r.get("print", {}).get("command") == "project_file")
                assert echo["url"].startswith("https://")
            tracker = task.jobs
            await until(lambda: tracker.analysis is not None and tracker.job is not None
                        and tracker.job.lifecycle == "running", "the job analysed")
            while printer.layer < analysis.layer_count:
                await printer.advance(min(25, analysis.layer_count - printer.layer))
                await until(lambda: tracker.job.billing.billed_through >= printer.layer - 1,  # type: ignore[union-attr]
                            f"billed through {printer.layer - 1}")
            await printer.finish()
            await until(lambda: tracker.job is not None and tracker.job.final_state == "finished", "finished")
            outbox = runtime.outbox
            assert outbox is not None

            async def drained() -> bool:
                backlog = (await outbox.backlog()).backlog
                return backlog.count == 0 and backlog.doubtful == 0

            await until(drained, "every bill delivered", 60)
        finally:
            await web.stop()
        assert_exact(store, spools, tmp_path / "data")


@contextlib.asynccontextmanager
async def refusing(tmp_path: Path, mode: str) -> AsyncIterator[tuple[VirtualPrinter, SpoolmanStore, dict[int, int],
                                                                    LayerwiseProcess, httpx.AsyncClient]]:
    store = SpoolmanStore()
    spools = seed_spools(store, [0, 1, 2, 3])
    async with contextlib.AsyncExitStack() as stack:
        spoolman = await stack.enter_async_context(SpoolmanStandin(store))
        printer = await stack.enter_async_context(VirtualPrinter(
            serial="01S00E2E0000011", access_code=ACCESS_CODE, model="P1S", cert_dir=tmp_path / "certs", mode=mode))
        layerwise = await stack.enter_async_context(LayerwiseProcess(
            tmp_path / "data", spoolman_url=spoolman.url, printers=[config_of(printer)], seed_mappings={NAME: spools}))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=layerwise.url, timeout=10))
        await until(lambda: printer_seen(client), "the printer online", 60)
        yield printer, store, spools, layerwise, client


@pytest.mark.parametrize("announce", [True, False])
async def test_sigkill_mid_print_with_requests_refused(tmp_path: Path, announce: bool) -> None:
    """The issue's measurement: killed around layer 80 with pushall refused, started again, every layer billed
    exactly once (before the fix, 2,569 of 18,786 mm: the job was never picked up again)."""
    analysis = analysis_of(XMAS)
    async with refusing(tmp_path, "cloud") as (printer, store, spools, layerwise, client):
        db = open_database(tmp_path / "data")
        try:
            printer.add_file("/cache/xmas.gcode.3mf", PRINT_FILES / XMAS)
            await printer.start_print("/cache/xmas.gcode.3mf", ams_mapping=XMAS_MAPPING, announce=announce)
            await until(lambda: checkpoint(db).get("lifecycle") == "running", "the job analysed", 60)
            while printer.layer < 80:
                await printer.advance(20)
                await until(lambda: billed_through(db) >= printer.layer - 1, "billed", 60)
            await printer.advance(2)
            await layerwise.kill()
            await printer.advance(30)  # printed while Layerwise is down
            await layerwise.restart()
            await until(lambda: printer_seen(client), "the printer online again", 60)
            # No full state will come: the next layer delta resumes the job and bills the layers missed.
            await printer.advance(1)
            await until(lambda: billed_through(db) >= printer.layer - 1, "the missed layers billed", 60)
            while printer.layer < analysis.layer_count:
                await printer.advance(min(40, analysis.layer_count - printer.layer))
                await until(lambda: billed_through(db) >= printer.layer - 1, "billed", 60)
            await printer.finish()
            await until(lambda: checkpoint(db).get("final_state") == "finished", "the job finished", 60)
            await until(lambda: backlog_empty(client), "every bill delivered", 60)
            printer_json = (await client.get(f"/api/v1/printers/{NAME}")).json()
            assert "refuses requests" in printer_json["limited"]
        except BaseException:
            print(layerwise.log_text()[-6000:])
            raise
        finally:
            db.close()
        assert_exact(store, spools, tmp_path / "data")
