"""Scripted refusals: the stand-in answers a chosen request with a 4xx and applies nothing, as Spoolman
does for a request it will not take (400 with ``{"message": ...}``, FastAPI's 422 with ``{"detail": [...]}``,
404 for an item it does not have) or an HTTP proxy in front of it may (400, 413, 429 with a message).

A test names the request (method and path after ``/api/v1``, e.g. ``PUT /spool/3/use``) and how often it
is refused; the next matching requests get the answer, the rest are served as usual. The faults that are not
an answer (connection refused, a lost request or answer) belong to the network: stop the stand-in, or put a
proxy in front of it (``tests/billing/ledger_helpers.py``, ``bench/faults/proxy.py``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Refusal:
    method: str
    path: str  # after the API prefix, e.g. "/spool/3/use"
    status: int  # 400-499
    message: str

    def body(self) -> dict[str, Any]:
        """Spoolman's error shape for the status."""
        if self.status == 422:
            return {"detail": [{"loc": ["body"], "msg": self.message, "type": "value_error"}]}
        return {"message": self.message}


class Refusals:
    """The refusals still to give, in the order they were scripted (thread safe: the stand-in may serve
    from another thread than the test's)."""

    def __init__(self) -> None:
        self._pending: list[Refusal] = []
        self._lock = threading.Lock()

    def add(self, method: str, path: str, status: int, message: str, *, times: int = 1) -> None:
        if not 400 <= status < 500:
            raise ValueError(f"a refusal is a 4xx answer, not {status}")
        with self._lock:
            self._pending.extend([Refusal(method.upper(), path, status, message)] * times)

    def take(self, method: str, path: str) -> Refusal | None:
        """The refusal for this request, if one is scripted (it is used up)."""
        with self._lock:
            for i, refusal in enumerate(self._pending):
                if refusal.method == method.upper() and refusal.path == path:
                    return self._pending.pop(i)
        return None

    def pending(self) -> list[Refusal]:
        with self._lock:
            return list(self._pending)
