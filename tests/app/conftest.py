"""A whole Layerwise (runtime + web app) wired to a virtual printer and the Spoolman stand-in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from server.config import PrinterConfig, ServerConfig, Settings, SpoolmanConfig
from server.runtime import Runtime
from server.sim.printer import VirtualPrinter
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore, seed_demo
from server.web.app import create_app
from server.web.embedded import EmbeddedServer
from tests.web.credentials import csrf_pair

ACCESS_CODE = "s3cr3t42"
PRINTER = "Workshop P1S"


@dataclass
class Stack:
    runtime: Runtime
    client: httpx.AsyncClient
    printer: VirtualPrinter
    spoolman: SpoolmanStandin

    async def wait_online(self, timeout: float = 15.0) -> None:
        task = self.runtime.printers[PRINTER]
        async with asyncio.timeout(timeout):
            while not (task.online and task.state.get("ams")):
                await asyncio.sleep(0.05)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with make_stack(tmp_path) as built:
        yield built


@contextlib.asynccontextmanager
async def make_stack(tmp_path: Path, settings_options: dict[str, Any] | None = None,
                     **printer_options: Any) -> AsyncIterator[Stack]:
    store = SpoolmanStore()
    seed_demo(store)
    printer_options.setdefault("model", "P1S")
    async with SpoolmanStandin(store) as spoolman, VirtualPrinter(
        serial="01P00A000000042", access_code=ACCESS_CODE, cert_dir=tmp_path / "certs", **printer_options,
    ) as printer:
        settings = Settings(
            server=ServerConfig(data_dir=tmp_path / "data"),
            spoolman=SpoolmanConfig(url=spoolman.url, timeout=5),
            printers=(
                PrinterConfig(name=PRINTER, host=printer.host, serial=printer.serial,
                              access_code=SecretStr(ACCESS_CODE), mqtt_port=printer.mqtt_port,
                              ftps_port=printer.ftps_port, ca_file=printer.ca_cert_path),
            ),
            seed_mappings={PRINTER: {0: 3}},
            **(settings_options or {}),
        )
        runtime = Runtime.build(settings)
        async with EmbeddedServer(create_app(runtime), lifespan="on", name="layerwise") as web, \
                httpx.AsyncClient(base_url=web.url, timeout=20, **csrf_pair()) as client:
            yield Stack(runtime, client, printer, spoolman)
