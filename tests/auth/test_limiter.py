"""The sign-in limiter: 5 failures per 15 minutes per key, then a wait."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.auth.limiter import LimitPolicy, LoginLimiter, limit_keys, retry_after

POLICY = LimitPolicy(max_failures=5, window=900)


def test_four_failures_leave_a_try() -> None:
    assert retry_after([0, 1, 2, 3], 10, POLICY) is None


def test_the_fifth_failure_closes_until_the_oldest_leaves_the_window() -> None:
    failures = [0, 100, 200, 300, 400]
    assert retry_after(failures, 400, POLICY) == 500
    assert retry_after(failures, 899.5, POLICY) == 1  # whole seconds, never 0 while closed
    assert retry_after(failures, 900, POLICY) is None


def test_old_failures_do_not_count() -> None:
    assert retry_after([-1000, -950, 0, 1, 2, 3], 10, POLICY) is None


def test_a_wait_is_long_enough_despite_float_rounding() -> None:
    # 2.2e-311 + 900 rounds to 900.0: 899 s would leave that failure inside the window (found by hypothesis).
    assert retry_after([1.0] * 4 + [2.2e-311], 1.0, POLICY) == 900


@given(st.lists(st.floats(0, 10_000), max_size=20), st.floats(0, 10_000))
def test_the_wait_ends_exactly_when_a_try_is_allowed(failures: list[float], now: float) -> None:
    failures = [t for t in failures if t <= now]  # failures are recorded as they happen, never ahead of now
    wait = retry_after(failures, now, POLICY)
    inside = [t for t in failures if now - 900 < t <= now]
    assert (wait is None) == (len(inside) < 5)
    if wait is not None:
        assert 1 <= wait <= 900
        assert retry_after(failures, now + wait, POLICY) is None


def test_limiter_keys_by_address_and_by_name() -> None:
    limiter = LoginLimiter(POLICY)
    for second in range(5):
        limiter.failed(limit_keys("10.0.0.9", f"name{second}"), second)
    assert limiter.retry_after(limit_keys("10.0.0.9", "ann"), 5) == 895  # that address, any name
    assert limiter.retry_after(limit_keys("10.0.0.8", "ann"), 5) is None
    for second in range(5):
        limiter.failed(limit_keys(f"10.0.1.{second}", "Ann"), second)
    assert limiter.retry_after(limit_keys("10.0.2.1", "ann"), 5) == 895  # that name, from anywhere
    limiter.succeeded(limit_keys("10.0.2.1", "ann"))
    assert limiter.retry_after(limit_keys("10.0.2.1", "ann"), 5) is None


def test_limiter_stays_bounded() -> None:
    limiter = LoginLimiter(POLICY, max_keys=10)
    for second in range(100):
        limiter.failed([f"addr:{second}"], second)
    assert len(limiter._failures) <= 11
    limiter.failed(["addr:x"], 5000)  # everything else is out of the window by now
    assert list(limiter._failures) == ["addr:x"]
