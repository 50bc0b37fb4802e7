"""The few ways a Spoolman call fails, as the callers need to tell them apart."""

from __future__ import annotations


class SpoolmanError(Exception):
    """Base of every error the Spoolman client raises."""


class SpoolmanNotFound(SpoolmanError):
    """Spoolman answered 404: the spool, filament, vendor or field does not exist."""

    def __init__(self, message: str, *, resource: str, id: int | str | None = None) -> None:
        super().__init__(message)
        self.resource = resource
        self.id = id


class SpoolmanRejected(SpoolmanError):
    """Spoolman answered with a 4xx other than 404: the request itself is wrong; retrying will not help."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class SpoolmanUnreachable(SpoolmanError):
    """No usable answer: connection refused, DNS failure, timeout, dropped connection or a 5xx.

    `request_sent` is False only when the request certainly never reached Spoolman (it could not
    connect), so repeating a non-idempotent call is safe. True means it may have been applied.
    """

    def __init__(self, message: str, *, request_sent: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.request_sent = request_sent
        self.status_code = status_code
