"""Shared pieces of the ledger and outbox tests: a real SQLite file, stand-in spools, fault injection."""

from __future__ import annotations

import asyncio
import math
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.billing.outbox import Outbox, SpoolmanUse
from server.db import Database, open_database, repo
from server.jobs import store as job_store
from server.sim.spoolman import SpoolmanStore
from server.spoolman import Spool, SpoolmanClient, SpoolmanUnreachable

PRINTER = "p1"
DENSITY = 1.24
DIAMETER = 1.75


def grams_by_hand(mm: float, diameter_mm: float, density: float) -> float:
    """The mm -> g formula written out, so tests never take expected grams from Layerwise's own ``grams``:
    the volume in mm³ (length x cross-section) / 1000 = cm³, times g/cm³."""
    return mm * math.pi * (diameter_mm / 2) ** 2 / 1000 * density


@dataclass(frozen=True)
class Line:
    """A bill line as the billing rules produce it."""

    layer: int
    filament_index: int
    mm: float
    grams: float = 0.0
    estimate: bool = False


def open_db(tmp_path: Path, database_url: str | None = None) -> Database:
    """The SQLite file in ``tmp_path``, or PostgreSQL at ``database_url`` (the ``database_url`` fixture)."""
    return open_database(tmp_path / "layerwise.db", database_url)


def new_job(db: Database, printer: str = PRINTER, key: str = "cube.gcode.3mf#1") -> int:
    return job_store.create_job(db, printer, key, state="printing", file_name="cube.gcode.3mf", plate=1).id


def seed_spools(store: SpoolmanStore, count: int) -> list[int]:
    filament = store.create_filament({"name": "PLA", "material": "PLA", "density": DENSITY, "diameter": DIAMETER})
    return [int(store.create_spool({"filament_id": filament["id"]})["id"]) for _ in range(count)]


def assign(db: Database, tray: int, spool_id: int, printer: str = PRINTER) -> None:
    repo.assign_spool(db, printer, tray, spool_id, "manual")


def used_mm(store: SpoolmanStore, spool_id: int) -> float:
    return float(store.get_spool(spool_id)["used_length"])


def quick_client(url: str) -> SpoolmanClient:
    """No internal retries, so an outage shows at once and the outbox's own back-off is what runs."""
    return SpoolmanClient(url, timeout=5.0, retries=0)


def refused_url() -> str:
    """A local address that refuses connections: a port just bound and closed again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_outbox(db: Database, client: SpoolmanUse, **options: Any) -> Outbox:
    """An outbox that settles lost answers at once (the stand-in never holds a request back)."""
    return Outbox(db, client, **{"settle_grace": 0.0, **options})


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the worker catches it."""


class FaultyClient:
    """The real client with scripted faults on the next ``use`` calls.

    - ``"lost_answer"``: Spoolman applies the use, the answer never comes back;
    - ``"lost_request"``: the request is lost on the way (never applied), the outcome looks unknown;
    - ``"crash_after"``: Spoolman applies it, then the worker dies before recording the answer;
    - ``"crash_before"``: the worker dies after writing "sending", before the request leaves;
    - ``"refused"``: the connection is refused (Spoolman went down after the spool was read): the real
      client's ``use`` against a port nothing listens on, so the request certainly never left.
    """

    def __init__(self, inner: SpoolmanClient, faults: list[str] | None = None) -> None:
        self.inner = inner
        self.faults = list(faults or [])
        self.uses = 0  # requests that reached Spoolman

    async def get_spool(self, spool_id: int) -> Spool:
        return await self.inner.get_spool(spool_id)

    async def use_spool(self, spool_id: int, *, length_mm: float | None = None, weight_g: float | None = None) -> Spool:
        fault = self.faults.pop(0) if self.faults else None
        if fault == "lost_request":
            raise SpoolmanUnreachable("injected: request lost", request_sent=True)
        if fault == "crash_before":
            raise Crash("injected: died before sending")
        if fault == "refused":
            async with quick_client(refused_url()) as nowhere:
                return await nowhere.use_spool(spool_id, length_mm=length_mm, weight_g=weight_g)
        spool = await self.inner.use_spool(spool_id, length_mm=length_mm, weight_g=weight_g)
        self.uses += 1
        if fault == "lost_answer":
            raise SpoolmanUnreachable("injected: answer lost", request_sent=True)
        if fault == "crash_after":
            raise Crash("injected: died after sending")
        return spool


class DroppingProxy:
    """A TCP proxy in front of Spoolman that forwards ``PUT`` requests and then withholds the answer:
    Spoolman applied the use, the client sees a dead connection (``hold=False``) or waits forever
    (``hold=True``, e.g. until its process is killed). ``answered`` is set once that happened.
    """

    def __init__(self, upstream_port: int, drops: int = 1, *, hold: bool = False) -> None:
        self.upstream_port = upstream_port
        self.drops = drops
        self.hold = hold
        self.answered = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await _read_message(reader):
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                up_writer.write(request)
                await up_writer.drain()
                answer = await _read_message(up_reader)
                up_writer.close()
                if request.startswith(b"PUT ") and self.drops > 0:
                    self.drops -= 1
                    self.answered.set()
                    if self.hold:
                        await reader.read()  # until the client goes away
                    break  # Spoolman answered; the client never hears it
                writer.write(answer)
                await writer.drain()
        finally:
            writer.close()


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (what httpx and uvicorn send here)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + (await reader.readexactly(length) if length else b"")
