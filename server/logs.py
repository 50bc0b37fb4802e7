"""Logging set-up with secret redaction.

Access codes are kept in ``SecretStr`` so they never reach a log line by design;
the redacting filter here is the second line of defence for the day someone
logs a raw MQTT URL, an exception from a library, or a dict that holds one.
"""

from __future__ import annotations

import logging
import sys
import threading

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


class SecretRedactingFilter(logging.Filter):
    """Rewrites a record's message, exception text and stack text without secrets.

    The message is formatted here (``msg % args``) because a secret can hide in
    any argument's ``str()``; the record then carries the finished text and no args.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as usual
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_handler: logging.Handler | None = None


def setup_logging(level: str) -> None:
    """One stderr handler on the root logger, one format, secrets redacted.

    Calling it again replaces the handler it installed before (tests, ``demo``
    after ``serve``), so lines are never doubled.
    """
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(SecretRedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    _handler = handler
