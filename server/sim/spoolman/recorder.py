"""A record of every exchange the stand-in serves (the request and its answer), for checking both against
Spoolman's OpenAPI document: the answers against its schemas (`conformance.OpenApiCheck`), the requests
Layerwise's client sent against its operations (`request_conformance.RequestCheck`).

Off by default (the demo never records). Tests switch it on with `RECORDER.enable()` or by setting
the environment variable `LAYERWISE_SPOOLMAN_RECORD=1` before the stand-in answers its first request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ENV_FLAG = "LAYERWISE_SPOOLMAN_RECORD"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # as requested, e.g. "/api/v1/spool/3/use"
    status: int
    body: Any  # the decoded JSON response body
    headers: dict[str, str]
    # The request: its query as sent (pairs, repeats kept), its JSON body (NO_BODY when it had none,
    # BAD_JSON when it was not JSON) and its User-Agent (Layerwise's client says "layerwise").
    query: tuple[tuple[str, str], ...] = ()
    request_body: Any = field(default=None)
    agent: str = ""
    deliberate: bool = False  # recorded inside `RECORDER.deliberately_invalid()`: a test's bad request


NO_BODY = "<no body>"
BAD_JSON = "<not JSON>"


class ExchangeRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._enabled = False
        self._deliberate = 0

    @property
    def enabled(self) -> bool:
        return self._enabled or bool(os.environ.get(ENV_FLAG))

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    @contextlib.contextmanager
    def deliberately_invalid(self) -> Iterator[None]:
        """Requests sent meanwhile are a test's deliberate mistakes (a negative density, to see the 422),
        left out of the suite-wide request check."""
        with self._lock:
            self._deliberate += 1
        try:
            yield
        finally:
            with self._lock:
                self._deliberate -= 1

    def record(self, exchange: Exchange) -> None:
        if self.enabled:
            with self._lock:
                if self._deliberate:
                    exchange = dataclasses.replace(exchange, deliberate=True)
                self._exchanges.append(exchange)

    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def clear(self) -> None:
        with self._lock:
            self._exchanges.clear()


RECORDER = ExchangeRecorder()
