"""The bench rig: a virtual printer and the Spoolman stand-in in this process, Layerwise in its own.

Shared by ``bench.faults`` and ``bench.latency``. The stand-in's store records every
``use`` it applies (time, spool, mm), so a benchmark knows exactly what reached Spoolman
and when, on this process's monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from server.config import PrinterConfig
from server.db.engine import database_path
from server.sim.printer import VirtualPrinter
from server.sim.process import LayerwiseProcess
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore

PRINTER = "Bench P1S"
SERIAL = "01P00A000000077"
ACCESS_CODE = "b3nch123"
TRAYS = (0, 1, 2, 3)  # AMS unit 0, one spool per tray


@dataclass(frozen=True)
class Use:
    at: float  # time.monotonic() when the stand-in had applied it
    spool_id: int
    mm: float


class RecordingStore(SpoolmanStore):
    """The stand-in's store, noting each applied ``use`` (length uses only: Layerwise sends lengths)."""

    def __init__(self) -> None:
        super().__init__()
        self.uses: list[Use] = []
        self.arrived = asyncio.Event()  # set on every use; waiters clear it

    def use_spool(self, spool_id: int, *, use_weight: float | None = None, use_length: float | None = None) -> Any:
        item = super().use_spool(spool_id, use_weight=use_weight, use_length=use_length)
        self.uses.append(Use(time.monotonic(), spool_id, float(use_length or 0.0)))
        self.arrived.set()
        return item

    def used_mm(self) -> dict[int, float]:
        totals: dict[int, float] = {}
        for use in self.uses:
            totals[use.spool_id] = totals.get(use.spool_id, 0.0) + use.mm
        return totals


def seed_spools(store: SpoolmanStore) -> dict[int, int]:
    """One PLA spool per tray; returns tray -> spool id. No RFID tags, so assignments never move."""
    vendor = store.create_vendor({"name": "Bench"})["id"]
    filament = store.create_filament(
        {"vendor_id": vendor, "name": "Bench PLA", "material": "PLA", "density": 1.24, "diameter": 1.75,
         "weight": 1000.0}
    )["id"]
    return {tray: int(store.create_spool({"filament_id": filament, "used_weight": 0.0})["id"]) for tray in TRAYS}


@dataclass
class Rig:
    printer: VirtualPrinter
    spoolman: SpoolmanStandin
    store: RecordingStore
    layerwise: LayerwiseProcess
    spool_for_tray: dict[int, int]
    client: httpx.AsyncClient = field(repr=False)

    @property
    def database(self) -> Path:
        return database_path(self.layerwise.data_dir)

    def read_db(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read Layerwise's SQLite file read-only while it runs (WAL lets readers in beside the writer)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)) as db:
            return db.execute(query, params).fetchall()

    async def get_json(self, path: str) -> Any:
        response = await self.client.get(f"{self.layerwise.url}{path}")
        response.raise_for_status()
        return response.json()

    async def wait_online(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    printers = await self.get_json("/api/v1/printers")
                    if printers and all(p.get("online") for p in printers):
                        return
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def rig(workdir: Path, *, log_level: str = "WARNING") -> AsyncIterator[Rig]:
    store = RecordingStore()
    spool_for_tray = seed_spools(store)
    async with SpoolmanStandin(store) as spoolman, VirtualPrinter(
        serial=SERIAL, access_code=ACCESS_CODE, model="P1S", cert_dir=workdir / "certs"
    ) as printer:
        config = PrinterConfig(name=PRINTER, host=printer.host, serial=printer.serial,
                               access_code=SecretStr(ACCESS_CODE), mqtt_port=printer.mqtt_port,
                               ftps_port=printer.ftps_port, ca_file=printer.ca_cert_path)
        async with LayerwiseProcess(
            workdir / "layerwise", spoolman_url=spoolman.url, printers=[config],
            seed_mappings={PRINTER: spool_for_tray}, log_level=log_level,
        ) as layerwise, httpx.AsyncClient(timeout=10) as client:
            bench = Rig(printer, spoolman, store, layerwise, spool_for_tray, client)
            await bench.wait_online()
            yield bench


def ams_mapping(filaments: list[int]) -> list[int]:
    """Slicer filament index -> tray: the used filaments onto trays 0.. in order, -1 for unused indexes."""
    if len(filaments) > len(TRAYS):
        raise ValueError(f"{len(filaments)} filaments, {len(TRAYS)} trays")
    mapping = [-1] * (max(filaments, default=0) + 1)
    for tray, filament in zip(TRAYS, sorted(filaments), strict=False):
        mapping[filament] = tray
    return mapping
