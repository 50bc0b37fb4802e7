"""Fixtures for the virtual printer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from printer_clients import ACCESS_CODE, ReportCollector, subscribed

from server.sim.printer import VirtualPrinter


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("printer-certs")


@pytest.fixture
async def printer(cert_dir: Path) -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter(access_code=ACCESS_CODE, cert_dir=cert_dir) as virtual_printer:
        yield virtual_printer


@pytest.fixture
async def reports(printer: VirtualPrinter) -> AsyncIterator[ReportCollector]:
    async with subscribed(printer) as collector:
        yield collector
