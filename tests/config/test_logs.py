"""The log handler redacts registered secrets from every part of a record."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from server import logs
from server.config import load_settings

SECRET = "Zq7!x9Lp"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    output = io.StringIO()
    logs.setup_logging("DEBUG", output)
    yield output
    logging.getLogger().removeHandler(logs._handler)  # type: ignore[arg-type]
    logs._handler = None


def test_secret_redacted_from_message_args_and_exceptions(
    log_output: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    logs.register_secret(SECRET)
    log = logging.getLogger("layerwise.test.child")
    log.info("connecting to mqtts://bblp:%s@10.0.0.5:8883", SECRET)
    log.warning("options %s", {"password": SECRET})
    log.debug(f"inline {SECRET}")
    try:
        raise ConnectionError(f"login refused for password {SECRET}")
    except ConnectionError:
        log.exception("login failed")
    err = log_output.getvalue()
    assert SECRET not in err
    assert err.count(logs.REDACTED) == 4
    assert "mqtts://bblp:[redacted]@10.0.0.5:8883" in err
    assert "ConnectionError: login refused for password [redacted]" in err
    # Redacted when the record is made, so handlers installed by others never see it either.
    assert SECRET not in caplog.text
    assert all(SECRET not in f"{r.getMessage()} {r.exc_text}" for r in caplog.records)


def test_one_format_and_no_doubled_lines(log_output: io.StringIO) -> None:
    logs.setup_logging("INFO", log_output)
    logging.getLogger("layerwise.x").info("hello %d", 3)
    logging.getLogger("layerwise.x").debug("hidden")
    lines = log_output.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" INFO    layerwise.x: hello 3")


def test_short_values_are_not_registered() -> None:
    logs.register_secret("ab")
    assert logs.redact("a b ab abc") == "a b ab abc"


def test_loading_settings_registers_access_codes() -> None:
    env = {
        "LAYERWISE_PRINTER_HOST": "10.0.0.5",
        "LAYERWISE_PRINTER_SERIAL": "01P00A123456789",
        "LAYERWISE_PRINTER_ACCESS_CODE": "Kx81mQ2w",
    }
    load_settings(None, env=env)
    assert logs.redact("code Kx81mQ2w") == "code [redacted]"
