"""Suite-wide set-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Record every answer the Spoolman stand-in gives anywhere in the suite, so the
    # OpenAPI conformance check (tests/spoolman/conftest.py) validates all of them.
    from server.sim.spoolman import RECORDER

    RECORDER.enable()


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
