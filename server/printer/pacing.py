"""Pure pacing for the printer link: the pushall rate limit (the reconnect back-off is server.retry's)."""

from __future__ import annotations


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
