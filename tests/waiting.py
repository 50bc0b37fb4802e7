"""Waiting in tests for a condition the code under test should reach: a generous bound, never a timing claim.

The loop checks its own deadline instead of relying on ``asyncio.timeout`` alone: on Python 3.11 a
timeout's cancellation can be swallowed by an ``asyncio.wait_for`` underneath (gh-86296), and a wait
that should have failed after 30 s then spins until the suite's 300 s guard kills it, saying nothing.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest


async def until(condition: Callable[[], Any], what: str = "the condition", timeout: float = 30.0,
                poll: float = 0.02) -> Any:
    """Poll ``condition`` (plain or async) until it returns something true, and return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            async with asyncio.timeout(max(deadline - loop.time(), 1.0)):
                result = await result
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(poll)
