"""The few ways a Spoolman call fails, as the callers need to tell them apart."""

from __future__ import annotations

import httpx


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


def error_kind(error: SpoolmanError) -> str:
    """A short label for the metrics: what went wrong, never where (no URL, no message)."""
    if isinstance(error, SpoolmanNotFound):
        return "not_found"
    if isinstance(error, SpoolmanRejected):
        return "rejected"
    if isinstance(error, SpoolmanUnreachable):
        code = error.status_code
        if code is None:
            return "no_answer" if error.request_sent else "unreachable"
        if code in (401, 403):
            return "unauthorised"
        return "server_error" if code >= 500 else "wrong_url"  # a 404 that is not Spoolman's
    return "other"


# --- reading an answer that is an error -------------------------------------------------------------


def describe(error: Exception) -> str:
    return str(error) or type(error).__name__


def spoolmans_not_found(response: httpx.Response) -> bool:
    """Spoolman answers a missing item with its `Message` schema, `{"message": "..."}` (OpenAPI 0.26.1)."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("message"), str)


def message_of(response: httpx.Response) -> str:
    """Spoolman's `{"message": ...}`, or FastAPI's `{"detail": ...}` (a string or a list of errors)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return str(body["message"])
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            parts = [
                f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
                for item in detail
                if isinstance(item, dict)
            ]
            return "; ".join(parts) or response.reason_phrase
    return response.reason_phrase


def resource_of(path: str) -> tuple[str, int | str | None]:
    """`/spool/7/use` -> ("spool", 7); `/field/spool/tag` -> ("field", "tag")."""
    parts = [part for part in path.split("/") if part]
    resource = parts[0] if parts else "?"
    if resource == "field":
        return resource, parts[2] if len(parts) > 2 else None
    if len(parts) > 1:
        return resource, int(parts[1]) if parts[1].isdigit() else parts[1]
    return resource, None


def answer_error(response: httpx.Response, where: str, path: str) -> SpoolmanError | None:
    """What an answer of Spoolman's (or of a proxy in front of it) to ``path`` means for the caller:
    None for success, else the error to raise. ``where`` names Spoolman in messages."""
    if response.status_code >= 500:
        return SpoolmanUnreachable(
            f"{where} failed with {response.status_code}: {message_of(response)}",
            request_sent=True,
            status_code=response.status_code,
        )
    if response.status_code == 404:
        if not spoolmans_not_found(response):
            # A proxy's page or a wrong base path, not "this item was deleted": acting on it would
            # empty trays. Treated like an outage: bills wait and the error is shown.
            return SpoolmanUnreachable(
                f"{where} answered 404 {message_of(response)[:80]!r}, not Spoolman's own 'not found': "
                "check [spoolman] url",
                request_sent=True,
                status_code=404,
            )
        resource, item_id = resource_of(path)
        return SpoolmanNotFound(message_of(response), resource=resource, id=item_id)
    if response.status_code in (401, 403):
        # Spoolman has no login: this is the authenticating proxy in front of it, which passed nothing
        # on. Like an outage (bills wait, the error is shown), and safe to send again once the key is right.
        return SpoolmanUnreachable(
            f"{where} answered {response.status_code} {message_of(response)[:80]!r}: "
            "check [spoolman] api_key (LAYERWISE_SPOOLMAN_API_KEY)",
            request_sent=False,
            status_code=response.status_code,
        )
    if response.status_code in (408, 429):
        # A rate limit or a proxy's timeout in front of Spoolman: busy, not a refusal of this bill. Like
        # an outage; counted as possibly sent, so a fresh read settles it before anything is sent again.
        return SpoolmanUnreachable(
            f"{where} is busy: {response.status_code} {message_of(response)[:80]!r}",
            request_sent=True,
            status_code=response.status_code,
        )
    if response.status_code >= 400:
        return SpoolmanRejected(message_of(response), status_code=response.status_code)
    return None
