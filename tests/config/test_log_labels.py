"""Issue 12 item 5: one log format; uvicorn's start/stop lines are labelled ``web``, not ``uvicorn.error``."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from server import logs


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    output = io.StringIO()
    logs.setup_logging("INFO", output)
    yield output
    logging.getLogger().removeHandler(logs._handler)  # type: ignore[arg-type]
    logs._handler = None


def test_uvicorn_lines_are_relabelled_and_keep_their_level(log_output: io.StringIO) -> None:
    uvicorn_log = logging.getLogger("uvicorn.error")
    before = uvicorn_log.level
    uvicorn_log.setLevel(logging.INFO)  # as `serve` runs it (an embedded server in another test raises it)
    try:
        uvicorn_log.info("Application startup complete.")
        uvicorn_log.warning("Invalid HTTP request received.")
    finally:
        uvicorn_log.setLevel(before)
    logging.getLogger("server.web.serve").info("own line")
    lines = log_output.getvalue().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "INFO    web: Application startup complete.",
        "WARNING web: Invalid HTTP request received.",
        "INFO    server.web.serve: own line",
    ]
