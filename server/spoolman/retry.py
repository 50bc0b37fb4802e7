"""Back-off between retries of idempotent Spoolman calls (pure)."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0-based): capped exponential, with jitter.

    Half the delay is fixed and half random ("equal jitter"), so clients that lost Spoolman at
    the same moment do not all come back in step, yet none retries immediately.
    """
    ceiling = min(cap, base * 2**attempt)
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
