"""Suite-wide set-up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

SPOOLMAN_OPENAPI = Path(__file__).parent / "fixtures" / "spoolman" / "openapi-0.26.1.json"


def pytest_configure(config: pytest.Config) -> None:
    # Record every answer the Spoolman stand-in gives anywhere in the suite, so the
    # OpenAPI conformance check (tests/spoolman/conftest.py) validates all of them.
    from server.sim.spoolman import RECORDER

    RECORDER.enable()


@pytest.fixture(scope="session", autouse=True)
def _spoolman_client_requests_conform() -> Iterator[None]:
    """Every request Layerwise's Spoolman client sent to the stand-in in this session (whichever tests
    ran) is checked at its end against Spoolman's OpenAPI document: path, method, query, body, no
    unknown keys. Requests sent in other processes (the `layerwise` processes some tests start) are
    not recorded here; the stand-in itself refuses unknown body keys there too."""
    from server.sim.spoolman import RECORDER
    from server.sim.spoolman.request_conformance import RequestCheck

    yield
    check = RequestCheck(json.loads(SPOOLMAN_OPENAPI.read_text(encoding="utf-8")))
    problems = check.problems(RECORDER.exchanges())
    assert not problems, f"{len(problems)} requests of Layerwise's Spoolman client break Spoolman's OpenAPI " \
        "document:\n" + "\n".join(problems[:30])


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """Each test leaves logging as it found it. Tests that run Layerwise's entry points in-process run
    ``setup_logging``: it sets the root logger's level (later tests then saw INFO lines of libraries in
    caplog) and adds a handler on the stderr of the moment, which pytest closes after the test (later log
    lines then printed "--- Logging error --- I/O operation on closed file"). Fixtures of a wider scope
    are set up before this one, so what they install is kept."""
    import logging

    from server import logs

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET_LIBRARIES}
    yield
    for handler in root.handlers[:]:
        if handler not in handlers and any(isinstance(f, logs.SecretRedactingFilter) for f in handler.filters):
            root.removeHandler(handler)  # only setup_logging's: pytest's own capture handlers are its to remove
    root.setLevel(level)
    for name, was in quiet.items():
        logging.getLogger(name).setLevel(was)


# ---- both storage backends: SQLite (the default) and PostgreSQL ----------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for the session: $LAYERWISE_TEST_POSTGRES_URL, else a throw-away
    cluster started here. Skipped only when LAYERWISE_NO_POSTGRES=1 says PostgreSQL is unavailable."""
    import os

    from tests.pgcluster import NO_POSTGRES_ENV, URL_ENV, start_cluster

    if os.environ.get(NO_POSTGRES_ENV) == "1":
        pytest.skip(f"{NO_POSTGRES_ENV}=1")
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    cluster = start_cluster()
    try:
        yield cluster.url()
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite; for PostgreSQL the URL of a fresh, empty schema. ``open_database(dir, database_url)``."""
    if request.param == "sqlite":
        return None
    from tests.pgcluster import new_schema_url

    return new_schema_url(request.getfixturevalue("postgres_server"))
