"""Fixtures for the Spoolman client and stand-in tests, and the suite-wide OpenAPI conformance check.

Every response the stand-in serves while recording is on is checked, at the end of the session,
against the schemas of Spoolman's OpenAPI document. Recording starts when the first test of this
folder runs; to cover stand-in responses served by tests in folders collected earlier, the
top-level conftest enables it at start-up (`server.sim.spoolman.RECORDER.enable()` in
`pytest_configure`) or the run sets `LAYERWISE_SPOOLMAN_RECORD=1`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.sim.spoolman import RECORDER, SpoolmanStandin, SpoolmanStore, seed_demo
from server.sim.spoolman.conformance import OpenApiCheck
from server.spoolman import SpoolmanClient

OPENAPI_PATH = Path(__file__).parents[1] / "fixtures" / "spoolman" / "openapi-0.26.1.json"


def load_openapi() -> dict[str, Any]:
    return dict(json.loads(OPENAPI_PATH.read_text(encoding="utf-8")))


@pytest.fixture(scope="session", autouse=True)
def _spoolman_responses_conform() -> Iterator[None]:
    RECORDER.enable()
    yield
    exchanges = RECORDER.exchanges()
    problems = OpenApiCheck(load_openapi()).problems(exchanges)
    assert not problems, f"{len(problems)} stand-in responses break Spoolman's OpenAPI schemas:\n" + "\n".join(
        problems[:30]
    )


@pytest.fixture
def openapi_check() -> OpenApiCheck:
    return OpenApiCheck(load_openapi())


@pytest.fixture
def demo_store() -> SpoolmanStore:
    store = SpoolmanStore()
    seed_demo(store)
    return store


@pytest.fixture
async def standin(demo_store: SpoolmanStore) -> AsyncIterator[SpoolmanStandin]:
    async with SpoolmanStandin(demo_store) as running:
        yield running


@pytest.fixture
async def spoolman(standin: SpoolmanStandin) -> AsyncIterator[SpoolmanClient]:
    # Short back-off keeps retry tests quick; the behaviour is the same at production delays.
    async with SpoolmanClient(standin.url, timeout=5.0, retries=2, backoff_base=0.01, backoff_cap=0.05) as client:
        yield client
