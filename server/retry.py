"""One back-off policy for everything Layerwise tries again, with tenacity running the retries.

Capped exponential back-off with "equal jitter": the n-th retry (0-based) waits a random time in
``[d/2, d]`` with ``d = min(cap, first * 2**n)``. Half the delay is fixed so none retries at once; half is
random so clients that lost a server at the same moment (a Wi-Fi outage, a Spoolman restart) do not all
come back in step.

tenacity runs the bounded retries of idempotent calls (Spoolman reads, FTPS fetches), with
:class:`EqualJitter` as its wait. Loops that never give up (the MQTT link's reconnects, the outbox waiting
for Spoolman) count their failures with :class:`Backoff`, which draws from the same policy. Never used
around Spoolman's ``use``: it is not idempotent; the outbox settles an unknown outcome instead of
repeating the request.
"""

from __future__ import annotations

import random

from tenacity import RetryCallState
from tenacity.wait import wait_base


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based)."""
    ceiling = min(cap, base * 2 ** min(attempt, 32))  # the exponent is bounded: outages may last for days
    return (rng or random).uniform(ceiling / 2, ceiling)


class EqualJitter(wait_base):
    """The policy as a tenacity wait (``wait=EqualJitter(first, cap)``)."""

    def __init__(self, first: float, cap: float, rng: random.Random | None = None) -> None:
        if first <= 0 or cap < first:
            raise ValueError("need 0 < first <= cap")
        self.first = first
        self.cap = cap
        self.rng = rng

    def delay(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self.first, cap=self.cap, rng=self.rng)

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.delay(retry_state.attempt_number - 1)


class Backoff:
    """The policy for a loop that retries forever: ``next_delay()`` after each failure, ``reset()`` once
    the connection has proven itself."""

    def __init__(self, first: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> None:
        self.wait = EqualJitter(first, cap, rng or random.Random())
        self.failures = 0

    @property
    def first(self) -> float:
        return self.wait.first

    @property
    def cap(self) -> float:
        return self.wait.cap

    def next_delay(self) -> float:
        delay = self.wait.delay(self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
