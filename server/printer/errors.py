"""Errors the printer adapters raise; messages are safe to show (they never contain the access code)."""

from __future__ import annotations


class PrinterError(Exception):
    """Base for every failure talking to a printer."""


class PrinterTLSError(PrinterError):
    """The printer's certificate was not accepted (chain, CN or pinned fingerprint)."""


class PrinterAuthError(PrinterError):
    """The printer refused the access code."""


class PrinterUnreachable(PrinterError):
    """No connection could be made (refused, timed out, reset)."""


class JobFileNotFound(PrinterError):
    """The job's file is not on the printer (or not yet)."""


class BadReport(ValueError):
    """A report that cannot be understood (too big, too deep, not a JSON object): it is skipped, the link
    stays up (so not a ``PrinterError``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # the same for every report with this problem: logged once
