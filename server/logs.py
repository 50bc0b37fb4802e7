"""Logging set-up with secret redaction.

Access codes are kept in ``SecretStr`` so they never reach a log line by design;
the redacting filter here is the second line of defence for the day someone
logs a raw MQTT URL, an exception from a library, or a dict that holds one.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDACTED = "[redacted]"
# Shorter values would redact ordinary words and numbers all over the log.
MIN_SECRET_LENGTH = 4

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Redact ``value`` from every log record from now on."""
    if len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[redacted]``."""
    # Longest first, so a secret that contains another is removed whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite a record's message, exception text and stack text without secrets.

    The message is formatted here (``msg % args``) because a secret can hide in any
    argument's ``str()``; the record then carries the finished text and no args.
    """
    if not _secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: leave it for the handler to report as usual
        return
    clean = redact(message)
    if clean != message:  # records without a secret keep their msg and args as they were
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class SecretRedactingFilter(logging.Filter):
    """Redacts registered secrets from every record that passes the handler it is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_handler: logging.Handler | None = None
_base_factory: Callable[..., logging.LogRecord] | None = None


# uvicorn logs its own start and stop lines as "uvicorn.error", errors or not; users read that as a fault.
RELABELLED = {"uvicorn.error": "web", "uvicorn": "web"}


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    assert _base_factory is not None
    record = _base_factory(*args, **kwargs)
    record.name = RELABELLED.get(record.name, record.name)  # the label only: the logger and its level stay
    redact_record(record)
    return record


QUIET_LIBRARIES = ("amqtt", "transitions", "httpx", "httpcore", "pyftpdlib", "uvicorn.access")


def setup_logging(level: str, stream: TextIO | None = None) -> None:
    """One handler on the root logger (stderr by default), one format, secrets redacted.

    Redaction happens twice: when a record is created (so handlers that others install,
    such as a server's or a test runner's, never see a secret) and in our handler's filter
    (for records made before this ran). Calling it again replaces the handler it installed
    before, so lines are never doubled.
    """
    global _handler, _base_factory
    if _base_factory is None:
        _base_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_redacting_factory)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(SecretRedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    _handler = handler
    # Libraries that narrate every connection at INFO: only their warnings matter to a user.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
