"""Fixtures shared by the outbox and ledger tests: a Spoolman stand-in, a client with short
timeouts for it, and a fresh ledger database file. A module may override any of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from ledger_helpers import open_db, quick_client

from server.db import Database
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import SpoolmanClient


@pytest.fixture
async def standin() -> AsyncIterator[SpoolmanStandin]:
    async with SpoolmanStandin() as server:
        yield server


@pytest.fixture
async def client(standin: SpoolmanStandin) -> AsyncIterator[SpoolmanClient]:
    async with quick_client(standin.url) as spoolman:
        yield spoolman


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = open_db(tmp_path, database_url)  # both backends: SQLite, PostgreSQL
    yield database
    database.close()
