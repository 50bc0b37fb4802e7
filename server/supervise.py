"""Supervision of long-lived tasks.

Every printer gets one task; a crash in it is logged, backed off and restarted,
and never reaches the web app or another printer's task.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

RECANCEL_S = 1.0


async def stop_tasks(*tasks: asyncio.Task[object]) -> None:
    """Cancel the tasks and wait until every one has ended, cancelling again while one lives on.

    On Python 3.11 a cancellation can be lost: ``asyncio.wait_for`` (inside aiomqtt, for one) swallows it
    when the awaited future completes at the same moment (gh-86296). A single ``cancel()`` then leaves
    the task running and the caller waiting for ever; shutting down must not depend on that race.
    Their exceptions are not raised here: each task logs its own failure where it happens.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it again as never retrieved


class RestartPolicy:
    """Capped exponential back-off with jitter; resets after a run that lasted."""

    def __init__(self, first: float = 1.0, cap: float = 60.0, healthy_after: float = 120.0) -> None:
        self.first = first
        self.cap = cap
        self.healthy_after = healthy_after
        self.failures = 0

    def next_delay(self, ran_for: float) -> float:
        if ran_for >= self.healthy_after:
            self.failures = 0
        delay = min(self.cap, self.first * (2**self.failures))
        self.failures += 1
        # Full jitter keeps several crashing printers from retrying in lock-step.
        return random.uniform(delay / 2, delay)


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    policy: RestartPolicy | None = None,
    on_crash: Callable[[BaseException], None] | None = None,
) -> None:
    """Run ``run()`` until cancelled, restarting it whenever it returns or raises."""
    policy = policy or RestartPolicy()
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await run()
            log.warning("%s stopped by itself; restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s crashed; restarting", name)
            if on_crash is not None:
                on_crash(exc)
        await asyncio.sleep(policy.next_delay(loop.time() - started))
