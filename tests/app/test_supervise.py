"""Supervision: a crash restarts the task; stopping ends tasks even when a cancellation is lost."""

from __future__ import annotations

import asyncio

from server import supervise
from server.supervise import RestartPolicy, stop_tasks


async def test_a_crashing_task_is_restarted_and_its_crash_reported() -> None:
    runs: list[int] = []
    crashes: list[BaseException] = []

    async def run() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await asyncio.Event().wait()

    task = asyncio.create_task(supervise.supervise("t", run, policy=RestartPolicy(first=0.001, cap=0.001),
                                                   on_crash=crashes.append))
    while len(runs) < 3:
        await asyncio.sleep(0.01)
    await stop_tasks(task)
    assert task.cancelled() and len(crashes) == 2 and all(isinstance(c, RuntimeError) for c in crashes)


async def test_a_task_that_loses_a_cancellation_is_still_stopped(monkeypatch) -> None:
    """Python 3.11's wait_for can swallow a cancel (gh-86296); here the task swallows the first one itself."""
    monkeypatch.setattr(supervise, "RECANCEL_S", 0.01)
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # as the lost cancellation leaves it
        await asyncio.Event().wait()

    async def failing() -> None:
        raise ValueError("logged where it happened")

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(failing())]
    await asyncio.sleep(0)
    await stop_tasks(*tasks)
    assert swallowed.is_set() and tasks[0].cancelled() and isinstance(tasks[1].exception(), ValueError)
