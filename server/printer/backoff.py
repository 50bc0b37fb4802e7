"""Pure pacing decisions for the printer link: reconnect back-off and the pushall rate limit."""

from __future__ import annotations

import random


class Backoff:
    """Capped exponential back-off with jitter for reconnecting to one printer.

    The n-th consecutive failure waits a random time in ``[d/2, d]`` with ``d = min(cap, first * 2**n)``;
    jitter keeps a farm of printers that dropped together (Wi-Fi outage) from reconnecting in lock-step.
    ``reset()`` once a connection has proven itself (a report arrived).
    """

    def __init__(self, first: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> None:
        if first <= 0 or cap < first:
            raise ValueError("need 0 < first <= cap")
        self.first = first
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * 2 ** min(self.failures, 32))
        self.failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class RateLimiter:
    """At most one action per ``min_interval`` seconds; says how long until the next one is allowed.

    ``pushall`` makes a printer serialise its whole state (heavy on P1/A1 boards), so a link that flaps
    every second must not send one per reconnect.
    """

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self.last: float | None = None

    def wait_time(self, now: float) -> float:
        if self.last is None:
            return 0.0
        return max(0.0, self.last + self.min_interval - now)

    def record(self, now: float) -> None:
        self.last = now
