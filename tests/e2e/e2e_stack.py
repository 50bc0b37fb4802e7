"""End-to-end stacks: virtual printers, the Spoolman stand-in and a whole Layerwise on a real SQLite file.

Helpers imported by the test modules (the ``make_stack`` fixture in conftest.py wraps ``stack_factory``).
A stack gives each printer gets its own spools (one per tray, ``used_weight`` 0) seeded
as its slot assignments, so a spool's ``used_length`` in the stand-in is exactly what Layerwise billed
to that tray. Expected values always come from the independent reference calculator
(``tests/reference_usage.py``, written from the documented rules), never from Layerwise's own analysis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bench.faults.proxy import SpoolmanProxy
from server.config import PrinterConfig, ServerConfig, Settings, SpoolmanConfig
from server.jobs.checkpoint import JobCheckpoint
from server.printer.task import PrinterTask
from server.runtime import Runtime
from server.sim.printer import VirtualPrinter
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore
from server.web.app import create_app
from server.web.embedded import EmbeddedServer
from tests import waiting
from tests.billing.ledger_rows import ledger_entries
from tests.reference_usage import Reference, reference_of
from tests.web.credentials import csrf_pair

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PRINT_FILES = FIXTURES / "print-files"
SEQUENCES = FIXTURES / "sequences"
XMAS = "xmas-pud-x1c-4colour.gcode.3mf"  # X1C, 192 layers, filaments 0, 1, 2 and 9
CUBE_4 = "testqube-a1-4colour-bs2.04.gcode.3mf"  # A1, 50 layers, filaments 0-3
CUBE_1 = "testqube-a1-1colour-bs2.04.gcode.3mf"  # A1, 50 layers, filament 0
# The X1C file's filaments each in their own tray of AMS 0 (filament index -> tray; -1 unused).
XMAS_MAPPING = [0, 1, 2, -1, -1, -1, -1, -1, -1, 3]
ACCESS_CODE = "e2eC0de1"
TIMEOUT = 30.0  # seconds any single awaited condition may take on a busy two-core machine
TOLERANCE = 0.01  # mm

Usage = dict[int, float]


def analysis_of(name: str) -> Reference:
    """What the sliced file uses, per layer and filament, by the reference calculator (not Layerwise)."""
    return reference_of(PRINT_FILES / name)


def per_tray(usage: Mapping[int, float], mapping: Mapping[int, int]) -> dict[int, float]:
    """mm per tray from mm per slicer filament, through ``mapping`` (filament -> tray)."""
    out: dict[int, float] = {}
    for filament, mm in usage.items():
        tray = mapping[filament]
        out[tray] = out.get(tray, 0.0) + mm
    return out


def add(*usages: Mapping[int, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for usage in usages:
        for key, mm in usage.items():
            out[key] = out.get(key, 0.0) + mm
    return out


def cancelled_usage(analysis: Reference, layer: int, mc_percent: int) -> Usage:
    """What a print cancelled during ``layer`` at ``mc_percent`` should bill, by the documented rule
    (docs/tracking.md): the layers before it whole, then that layer up to its last progress mark at or
    below the percent, all from the reference's figures."""
    before = analysis.used_through(layer - 1) if layer > 0 else {}  # layer 0: the prelude
    return add(before, analysis.layer_at_percent(layer, mc_percent))


def mapping_of(ams_mapping: list[int]) -> dict[int, int]:
    return {filament: tray for filament, tray in enumerate(ams_mapping) if tray >= 0}


async def until(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` (plain or async) until it is true; fail with ``what`` after ``timeout`` seconds."""
    await waiting.until(condition, what, timeout, poll=0.01)


@dataclass
class Rig:
    """One virtual printer and the spools seeded into its trays."""

    name: str
    printer: VirtualPrinter
    spools: dict[int, int]  # tray -> spool id

    def config(self) -> PrinterConfig:
        return PrinterConfig(name=self.name, host=self.printer.host, serial=self.printer.serial,
                             access_code=SecretStr(ACCESS_CODE), mqtt_port=self.printer.mqtt_port,
                             ftps_port=self.printer.ftps_port, ca_file=self.printer.ca_cert_path,
                             model=self.printer.model)


@dataclass
class Stack:
    runtime: Runtime
    web: EmbeddedServer
    client: httpx.AsyncClient
    spoolman: SpoolmanStandin
    rigs: dict[str, Rig]
    data_dir: Path
    proxy: SpoolmanProxy | None = None  # between Layerwise and the stand-in, when asked for: loses answers

    @property
    def store(self) -> SpoolmanStore:
        return self.spoolman.store

    def task(self, name: str) -> PrinterTask:
        return self.runtime.printers[name]

    def job(self, name: str) -> JobCheckpoint | None:
        return self.task(name).jobs.job

    async def restart(self) -> None:
        """Layerwise stops (cleanly) and starts again on the same SQLite file and port."""
        await self.web.stop()  # the lifespan stops the runtime
        self.runtime = Runtime.build(self.runtime.settings)
        self.web = EmbeddedServer(create_app(self.runtime), port=self.web.port, lifespan="on", name="layerwise")
        await self.web.start()
        for name in self.rigs:
            await self.wait_ready(name)

    # ---- waiting for Layerwise ----------------------------------------------------------------------

    async def wait_ready(self, name: str) -> None:
        """Online, with a full report (trays) merged."""
        task = self.task(name)
        await until(lambda: task.online and task.state.get("ams") and "gcode_state" in task.state,
                    f"{name} online")

    async def wait_layer(self, name: str, layer: int | None = None) -> None:
        """Layerwise has merged the printer's current ``layer_num`` (or ``layer``)."""
        task, printer = self.task(name), self.rigs[name].printer
        want = printer.layer if layer is None else layer
        await until(lambda: task.state.get("layer_num") == want, f"{name} at layer {want}")

    async def wait_state(self, name: str, gcode_state: str) -> None:
        task = self.task(name)
        await until(lambda: task.state.get("gcode_state") == gcode_state, f"{name} {gcode_state}")

    async def wait_report_handled(self, name: str) -> None:
        """The printer publishes its full state twice; once the second has arrived, Layerwise has handled
        the first (and everything before it: the printer task takes one report at a time, in order)."""
        task, printer = self.task(name), self.rigs[name].printer
        for _ in range(2):
            before = task.last_seen
            await printer.push_full_state()
            await until(lambda: task.last_seen != before, f"{name} report received")  # noqa: B023

    async def wait_lifecycle(self, name: str, lifecycle: str) -> None:
        """The open job's lifecycle state is ``lifecycle`` (e.g. "paused", "running")."""
        await until(lambda: (job := self.job(name)) is not None and job.lifecycle == lifecycle,
                    f"{name} job {lifecycle}")

    async def wait_analysed(self, name: str) -> None:
        tracker = self.task(name).jobs
        await until(lambda: tracker.analysis is not None and tracker.job is not None
                    and tracker.job.lifecycle not in ("downloading", "parsing"), f"{name} job analysed")

    async def wait_billed(self, name: str, layer: int) -> None:
        """The open job is billed (in the ledger) through ``layer``."""
        await until(lambda: (job := self.job(name)) is not None and job.billing.billed_through >= layer,
                    f"{name} billed through layer {layer}")

    async def wait_ended(self, name: str, final_state: str) -> None:
        await until(lambda: (job := self.job(name)) is not None and job.final_state is not None,
                    f"{name} job ended")
        job = self.job(name)
        assert job is not None and job.final_state == final_state, job

    async def wait_delivered(self) -> None:
        """Every ledger entry reached Spoolman: nothing queued, nothing waiting, nothing doubtful."""
        outbox = self.runtime.outbox
        assert outbox is not None
        try:
            async with asyncio.timeout(60):
                while True:
                    status = await outbox.backlog()
                    if status.backlog.count == 0 and status.backlog.doubtful == 0:
                        break
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pytest.fail(f"backlog not empty: {await outbox.backlog()}")
        assert status.backlog.rejected == 0

    # ---- driving a printer --------------------------------------------------------------------------

    async def start(self, name: str, file: str, ams_mapping: list[int], *, announce: bool = True) -> None:
        """Put ``file`` on the printer, start it and wait until Layerwise has fetched and analysed it."""
        printer = self.rigs[name].printer
        remote = f"/cache/{file}"
        printer.add_file(remote, PRINT_FILES / file)
        await printer.start_print(remote, ams_mapping=ams_mapping, announce=announce)
        await self.wait_analysed(name)

    async def run_to(self, name: str, layer: int, step: int = 1) -> None:
        """Advance ``step`` layers at a time up to ``layer``, each step seen by Layerwise and billed."""
        printer = self.rigs[name].printer
        while printer.layer < layer:
            await printer.advance(min(step, layer - printer.layer))
            await self.wait_layer(name)
            await self.wait_billed(name, printer.layer - 1)

    async def finish(self, name: str) -> None:
        await self.rigs[name].printer.finish()
        await self.wait_ended(name, "finished")

    async def complete(self, name: str, step: int, expected_per_tray: Mapping[int, float]) -> None:
        """Print the rest of the open job, then check every spool and the ledger."""
        analysis = self.task(name).jobs.analysis
        assert analysis is not None
        await self.run_to(name, analysis.layer_count, step=step)
        await self.finish(name)
        await self.wait_delivered()
        self.assert_billed(name, expected_per_tray)
        self.assert_no_duplicate_bills()

    async def put_new_spool(self, name: str, tray: int) -> tuple[int, int]:
        """Assign a fresh spool (same filament) to ``tray`` through the API; (old spool, new spool)."""
        rig = self.rigs[name]
        old = rig.spools[tray]
        new = int(self.store.create_spool({"filament_id": self.store.get_spool(old)["filament"]["id"]})["id"])
        response = await self.client.put(f"/api/v1/printers/{name}/slots/{tray}", json={"spool_id": new})
        assert response.status_code == 200, response.text
        rig.spools[tray] = new
        return old, new

    # ---- reading what was billed --------------------------------------------------------------------

    def used_length(self, spool_id: int) -> float:
        return float(self.store.get_spool(spool_id)["used_length"])

    def used_weight(self, spool_id: int) -> float:
        return float(self.store.get_spool(spool_id)["used_weight"])

    def used_per_tray(self, name: str) -> dict[int, float]:
        return {tray: self.used_length(spool) for tray, spool in self.rigs[name].spools.items()}

    def assert_billed(self, name: str, expected_per_tray: Mapping[int, float]) -> None:
        """Every spool of ``name`` holds exactly what the analysis says for its tray (to 0.01 mm)."""
        used = self.used_per_tray(name)
        for tray, mm in used.items():
            want = expected_per_tray.get(tray, 0.0)
            assert abs(mm - want) <= TOLERANCE, f"{name} tray {tray}: billed {mm:.4f} mm, expected {want:.4f} mm"

    def assert_no_duplicate_bills(self) -> None:
        keys = [(e.job_id, e.layer, e.filament_index) for e in ledger_entries(self.runtime.db)]
        twice = [key for key, n in Counter(keys).items() if n > 1]
        assert not twice, f"ledger entries billed twice: {twice}"


StackFactory = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


# A material per tray: (name, density g/cm³, diameter mm); trays not named get 1.75 mm PLA.
Materials = Mapping[int, tuple[str, float, float]]
PLA = ("PLA", 1.24, 1.75)


def seed_spools(store: SpoolmanStore, trays: list[int], materials: Materials | None = None) -> dict[int, int]:
    """One fresh spool per tray (nothing used yet), of the tray's material."""
    vendor = store.create_vendor({"name": "E2E"})["id"]
    filaments: dict[tuple[str, float, float], int] = {}
    spools: dict[int, int] = {}
    for tray in trays:
        material = (materials or {}).get(tray, PLA)
        if material not in filaments:
            name, density, diameter = material
            filaments[material] = store.create_filament({
                "vendor_id": vendor, "name": name, "material": name.split()[0], "density": density,
                "diameter": diameter, "weight": 1000.0})["id"]
        spools[tray] = int(store.create_spool({"filament_id": filaments[material]})["id"])
    return spools


def stack_factory(tmp_path: Path) -> StackFactory:
    """``async with make_stack(("P1S",)) as stack``: one printer per model given, named ``p0``, ``p1``, ..."""

    @contextlib.asynccontextmanager
    async def build(models: tuple[str, ...] = ("P1S",), trays: tuple[int, ...] = (0, 1, 2, 3),
                    seed_state: Mapping[str, dict[str, Any]] | None = None,
                    materials: Materials | None = None, proxy: bool = False,
                    spoolman_timeout: float = 5,
                    settings_extra: Mapping[str, Any] | None = None) -> AsyncIterator[Stack]:
        store = SpoolmanStore()
        async with contextlib.AsyncExitStack() as stack:
            spoolman = await stack.enter_async_context(SpoolmanStandin(store))
            lossy = await stack.enter_async_context(SpoolmanProxy(spoolman.url)) if proxy else None
            rigs: dict[str, Rig] = {}
            for index, model in enumerate(models):
                name = f"p{index}"
                printer = VirtualPrinter(serial=f"01S00E2E{index:07d}", access_code=ACCESS_CODE, model=model,
                                         cert_dir=tmp_path / "certs" / name)
                if seed_state and name in seed_state:
                    printer.load_state(seed_state[name])
                await stack.enter_async_context(printer)
                rigs[name] = Rig(name, printer, seed_spools(store, list(trays), materials))
            data_dir = tmp_path / "data"
            settings = Settings(
                server=ServerConfig(data_dir=data_dir),
                spoolman=SpoolmanConfig(url=lossy.url if lossy else spoolman.url, timeout=spoolman_timeout),
                printers=tuple(rig.config() for rig in rigs.values()),
                seed_mappings={name: dict(rig.spools) for name, rig in rigs.items()},
                **(settings_extra or {}),  # e.g. notifications, home_assistant
            )
            runtime = Runtime.build(settings)
            web = EmbeddedServer(create_app(runtime), lifespan="on", name="layerwise")
            await web.start()
            client = httpx.AsyncClient(base_url=web.url, timeout=20, **csrf_pair())
            result = Stack(runtime, web, client, spoolman, rigs, data_dir, lossy)
            stack.push_async_callback(lambda: result.web.stop())  # the one running then (see restart)
            await stack.enter_async_context(result.client)
            for name in rigs:
                await result.wait_ready(name)
            yield result

    return build
