"""The bench rig: a virtual printer and the Spoolman stand-in in this process, Layerwise in its own.

Shared by ``bench.faults`` and ``bench.latency``. The stand-in's store records every
``use`` it applies (time, spool, mm), so a benchmark knows exactly what reached Spoolman
and when, on this process's monotonic clock; uses by "someone else" (the campaign's foreign
uses) are kept apart, and a deleted spool's last ``used_length`` is kept for the accounting.
With ``proxy=True`` Layerwise talks to the stand-in through ``bench.faults.proxy``.
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

from bench.faults.proxy import SpoolmanProxy
from server.config import PrinterConfig
from server.db.engine import database_path
from server.sim.printer import VirtualPrinter
from server.sim.process import LayerwiseProcess, restartable_port
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore
from server.web import csrf

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
        self.foreign: dict[int, float] = {}  # spool -> mm used by someone else (not Layerwise)
        self.floored: dict[int, float] = {}  # spool -> mm of Layerwise's uses Spoolman did not apply (floor at 0)
        self.deleted: dict[int, float] = {}  # spool -> its used_length when it was deleted

    def use_spool(self, spool_id: int, *, use_weight: float | None = None, use_length: float | None = None) -> Any:
        with self._lock:
            before = self.get_spool(spool_id)["used_length"]
            item = super().use_spool(spool_id, use_weight=use_weight, use_length=use_length)
        mm = float(use_length or 0.0)
        lost = mm - (item["used_length"] - before)
        if abs(lost) > 1e-6:
            self.floored[spool_id] = self.floored.get(spool_id, 0.0) + lost
        self.uses.append(Use(time.monotonic(), spool_id, mm))
        self.arrived.set()
        return item

    def foreign_use(self, spool_id: int, mm: float) -> None:
        """Someone else (a print elsewhere, a hand edit) calls ``use`` on the spool: not Layerwise's."""
        SpoolmanStore.use_spool(self, spool_id, use_length=mm)
        self.foreign[spool_id] = self.foreign.get(spool_id, 0.0) + mm

    def delete_spool(self, spool_id: int) -> None:
        with self._lock:
            used = float(self.get_spool(spool_id)["used_length"])
            super().delete_spool(spool_id)
            self.deleted[spool_id] = used

    def used_mm(self) -> dict[int, float]:
        """mm of the ``use`` requests Layerwise made that Spoolman applied (as asked, before any floor)."""
        totals: dict[int, float] = {}
        for use in self.uses:
            totals[use.spool_id] = totals.get(use.spool_id, 0.0) + use.mm
        return totals

    def used_length(self) -> dict[int, float]:
        """What Spoolman shows as each spool's ``used_length`` (a deleted spool: as it was when deleted)."""
        with self._lock:
            shown = {int(item["id"]): float(item["used_length"])
                     for item in self.list_spools({"allow_archived": "true"})[0]}
        return {**self.deleted, **shown}


def bench_filament(store: SpoolmanStore) -> int:
    """The one filament every bench spool is of (created on first call)."""
    found, _ = store.list_filaments({"name": "Bench PLA"})
    if found:
        return int(found[0]["id"])
    vendor = store.create_vendor({"name": "Bench"})["id"]
    return int(store.create_filament(
        {"vendor_id": vendor, "name": "Bench PLA", "material": "PLA", "density": 1.24, "diameter": 1.75,
         "weight": 1000.0}
    )["id"])


def new_spool(store: SpoolmanStore) -> int:
    return int(store.create_spool({"filament_id": bench_filament(store), "used_weight": 0.0})["id"])


def seed_spools(store: SpoolmanStore) -> dict[int, int]:
    """One PLA spool per tray; returns tray -> spool id. No RFID tags, so assignments never move."""
    return {tray: new_spool(store) for tray in TRAYS}


@dataclass
class Rig:
    printer: VirtualPrinter
    spoolman: SpoolmanStandin
    store: RecordingStore
    layerwise: LayerwiseProcess
    spool_for_tray: dict[int, int]  # the spool assigned to each tray now
    client: httpx.AsyncClient = field(repr=False)
    proxy: SpoolmanProxy | None = None
    tray_of_spool: dict[int, int] = field(default_factory=dict)  # every spool ever assigned -> its tray
    # A printer that refuses requests gives no full state: an end (FINISH, a cancel) reported while Layerwise
    # is down is seen by no client. In those modes the print's end waits for Layerwise (set: up and online;
    # see wait_watched).
    tracking: asyncio.Event = field(default_factory=asyncio.Event)
    # Held by a fault while it takes Layerwise's view of the printer away (a kill; a broker outage or a
    # dropped connection), and by the print around its end on a refusing printer (see watched_end).
    outages: dict[str, asyncio.Lock] = field(default_factory=lambda: {"kill": asyncio.Lock(),
                                                                      "broker": asyncio.Lock()})

    def __post_init__(self) -> None:
        self.tray_of_spool.update({spool: tray for tray, spool in self.spool_for_tray.items()})
        self.tracking.set()

    async def wait_watched(self, timeout: float = 120.0) -> None:
        """Until Layerwise is up and subscribed to the printer's reports, so the next one reaches it.

        Not only a kill leaves no client: after a broker outage or a dropped connection Layerwise is
        away until its reconnect (backoff up to seconds), and a report published meanwhile reaches no one.
        """
        async with asyncio.timeout(timeout):
            await self.tracking.wait()
            while not self.printer.report_subscribers():
                await asyncio.sleep(0.01)

    @contextlib.asynccontextmanager
    async def watched_end(self) -> AsyncIterator[None]:
        """No kill, broker outage or drop from when Layerwise watches until the block (the end) is done.

        Waiting until it watches is not enough on its own: a kill that starts just after would still
        take away the end reported next.
        """
        async with self.outages["kill"], self.outages["broker"]:
            await self.wait_watched()
            yield

    @property
    def refusing(self) -> bool:
        return self.printer.mode in ("cloud", "silent")

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

    async def spoolman_down(self) -> None:
        """Connections refused, as with Spoolman itself down (the proxy first: it mirrors the stand-in)."""
        if self.proxy is not None:
            await self.proxy.pause()
        await self.spoolman.stop()

    async def spoolman_up(self) -> None:
        await self.spoolman.start()
        if self.proxy is not None:
            await self.proxy.start()

    async def assign(self, tray: int, spool_id: int, timeout: float = 120.0) -> None:
        """Assign a spool to a tray through Layerwise's API, as a person would: tried again while
        Layerwise or Spoolman is down (an assignment is idempotent)."""
        url = f"{self.layerwise.url}/api/v1/printers/{PRINTER}/slots/{tray}"
        self.tray_of_spool[spool_id] = tray
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    response = await self.client.put(url, json={"spool_id": spool_id})
                    if response.status_code == 200:
                        self.spool_for_tray[tray] = spool_id
                        return
                await asyncio.sleep(0.1)

    async def unassign(self, tray: int, timeout: float = 120.0) -> None:
        """Empty a tray's slot through Layerwise's API (tried again while Layerwise is down)."""
        url = f"{self.layerwise.url}/api/v1/printers/{PRINTER}/slots/{tray}"
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await self.client.delete(url)).status_code == 204:
                        return
                await asyncio.sleep(0.1)

    async def wait_online(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    printers = await self.get_json("/api/v1/printers")
                    if printers and all(p.get("online") for p in printers):
                        return
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def rig(workdir: Path, *, log_level: str = "WARNING", proxy: bool = False,
              spoolman_timeout: float = 5.0, printer_mode: str = "lan") -> AsyncIterator[Rig]:
    store = RecordingStore()
    spool_for_tray = seed_spools(store)
    async with contextlib.AsyncExitStack() as stack:
        spoolman = await stack.enter_async_context(SpoolmanStandin(store, port=restartable_port()))
        lossy = await stack.enter_async_context(SpoolmanProxy(spoolman.url, port=restartable_port())) if proxy else None
        printer = await stack.enter_async_context(VirtualPrinter(
            serial=SERIAL, access_code=ACCESS_CODE, model="P1S", cert_dir=workdir / "certs",
            mqtt_port=restartable_port(), ftps_port=restartable_port(), mode=printer_mode))
        config = PrinterConfig(name=PRINTER, host=printer.host, serial=printer.serial,
                               access_code=SecretStr(ACCESS_CODE), mqtt_port=printer.mqtt_port,
                               ftps_port=printer.ftps_port, ca_file=printer.ca_cert_path)
        layerwise = await stack.enter_async_context(LayerwiseProcess(
            workdir / "layerwise", spoolman_url=(lossy or spoolman).url, printers=[config],
            seed_mappings={PRINTER: spool_for_tray}, log_level=log_level, spoolman_timeout=spoolman_timeout,
        ))
        token = csrf.new_token()  # the CSRF pair a script sends to change slots (no API tokens yet)
        client = await stack.enter_async_context(httpx.AsyncClient(
            timeout=10, cookies={csrf.COOKIE_NAME: token}, headers={csrf.HEADER_NAME: token}))
        bench = Rig(printer, spoolman, store, layerwise, dict(spool_for_tray), client, lossy)
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
