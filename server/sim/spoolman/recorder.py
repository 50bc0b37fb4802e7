"""A record of every response the stand-in serves, for checking them against Spoolman's OpenAPI schemas.

Off by default (the demo never records). Tests switch it on with `RECORDER.enable()` or by setting
the environment variable `LAYERWISE_SPOOLMAN_RECORD=1` before the stand-in answers its first request.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

ENV_FLAG = "LAYERWISE_SPOOLMAN_RECORD"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # as requested, e.g. "/api/v1/spool/3/use"
    status: int
    body: Any  # the decoded JSON response body
    headers: dict[str, str]


class ExchangeRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._enabled = False

    @property
    def enabled(self) -> bool:
        return self._enabled or bool(os.environ.get(ENV_FLAG))

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def record(self, exchange: Exchange) -> None:
        if self.enabled:
            with self._lock:
                self._exchanges.append(exchange)

    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def clear(self) -> None:
        with self._lock:
            self._exchanges.clear()


RECORDER = ExchangeRecorder()
