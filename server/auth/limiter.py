"""Sign-in rate limit: at most ``max_failures`` failed sign-ins per window, per client address and per name.

The rule is a pure function of the failure times (``retry_after``); ``LoginLimiter`` only keeps those
times in memory (a restart forgets them, which costs an attacker a restart they cannot cause).
Keyed per address *and* per name: one address cannot try many names, many addresses cannot try one name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LimitPolicy:
    max_failures: int = 5
    window: float = 15 * 60.0  # seconds


def recent(failures: Sequence[float], now: float, policy: LimitPolicy) -> tuple[float, ...]:
    """The failures still inside the window at ``now``."""
    return tuple(t for t in failures if now - policy.window < t <= now)


def retry_after(failures: Sequence[float], now: float, policy: LimitPolicy) -> int | None:
    """Whole seconds until another try is allowed, or ``None`` when one is allowed now."""
    inside = sorted(recent(failures, now, policy))
    if len(inside) < policy.max_failures:
        return None
    # Allowed again when enough of the oldest failures have left the window.
    oldest = inside[len(inside) - policy.max_failures]
    wait = max(1, math.ceil(oldest + policy.window - now))
    while now + wait - policy.window < oldest:  # float rounding can leave it inside by a hair: one more second
        wait += 1
    return wait


class LoginLimiter:
    """Failure times per key (``addr:...``, ``user:...``), in memory, bounded in size."""

    def __init__(self, policy: LimitPolicy | None = None, max_keys: int = 10_000) -> None:
        self.policy = policy or LimitPolicy()
        self.max_keys = max_keys
        self._failures: dict[str, tuple[float, ...]] = {}

    def retry_after(self, keys: Iterable[str], now: float) -> int | None:
        waits = [w for key in keys if (w := retry_after(self._failures.get(key, ()), now, self.policy)) is not None]
        return max(waits) if waits else None

    def failed(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            self._failures[key] = (*recent(self._failures.get(key, ()), now, self.policy), now)
        if len(self._failures) > self.max_keys:
            self._forget_old(now)

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _forget_old(self, now: float) -> None:
        """Drop keys with no recent failure; if still too many, the ones whose last failure is oldest."""
        kept = {k: r for k, v in self._failures.items() if (r := recent(v, now, self.policy))}
        if len(kept) > self.max_keys:
            kept = dict(sorted(kept.items(), key=lambda item: item[1][-1])[-self.max_keys:])
        self._failures = kept


def limit_keys(client: str | None, name: str) -> tuple[str, ...]:
    return (f"addr:{client or '?'}", f"user:{name.casefold()}")
