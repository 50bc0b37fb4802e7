"""Suite-wide set-up."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Record every answer the Spoolman stand-in gives anywhere in the suite, so the
    # OpenAPI conformance check (tests/spoolman/conftest.py) validates all of them.
    from server.sim.spoolman import RECORDER

    RECORDER.enable()
