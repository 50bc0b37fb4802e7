"""Reconnect back-off and the pushall limiter."""

from __future__ import annotations

import random

import pytest

from server.printer.pacing import RateLimiter
from server.retry import Backoff


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(first=1.0, cap=30.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [min(30.0, 2.0**n) for n in range(10)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 30.0 and delays[-1] >= 15.0
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_backoff_jitter_spreads_printers() -> None:
    delays = {Backoff(rng=random.Random(seed)).next_delay() for seed in range(20)}
    assert len(delays) == 20


def test_backoff_survives_very_long_outages() -> None:
    backoff = Backoff(first=0.5, cap=60.0)
    for _ in range(10_000):
        assert backoff.next_delay() <= 60.0


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(first=0)
    with pytest.raises(ValueError):
        Backoff(first=10, cap=1)


def test_rate_limiter() -> None:
    limiter = RateLimiter(min_interval=30.0)
    assert limiter.wait_time(100.0) == 0.0
    limiter.record(100.0)
    assert limiter.wait_time(101.0) == 29.0
    assert limiter.wait_time(130.0) == 0.0
    # A link flapping every second sends at most one pushall per interval.
    sent = 0
    for second in range(200, 320):
        if limiter.wait_time(float(second)) == 0.0:
            limiter.record(float(second))
            sent += 1
    assert sent == 4
