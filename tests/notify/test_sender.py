"""The shell end to end: bus events in, Apprise's ``json://`` target posting to a real local HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.config.reach import NotificationsConfig
from server.db import open_database
from server.events import Event, EventBus
from server.notify.rules import Forecast
from server.notify.service import ATTEMPTS, Notifications
from server.spoolman import SpoolmanClient
from server.spoolman.directory import SpoolDirectory
from tests.notify.receiver import Receiver


@contextlib.asynccontextmanager
async def running(tmp_path: Path, url: str, *, spoolman: SpoolmanClient | None = None, online: bool = True,
                  tick_s: float = 30.0, **config: Any) -> AsyncIterator[tuple[EventBus, Notifications]]:
    bus = EventBus()
    db = open_database(tmp_path)
    notifications = Notifications(NotificationsConfig(urls=[url], **config), bus, db, SpoolDirectory(spoolman),
                                  spoolman, lambda: {"X1C": online}, tick_s=tick_s, retry_first_s=0.01,
                                  retry_cap_s=0.02)
    task = asyncio.create_task(notifications.run())
    while bus.subscriber_count == 0:
        await asyncio.sleep(0.01)
    try:
        yield bus, notifications
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        db.close()


FORECAST = {"job_id": 7, "trays": [{"tray": 2, "spool_id": 12, "status": "runs_out", "runout_layer": 143,
                                    "total_layers": 200, "runout_in_s": 7800.0, "needed_g": 35.0,
                                    "remaining_g": 20.0, "filament": "PLA Black"}]}


async def test_a_runout_forecast_arrives_once(tmp_path: Path, receiver: Receiver) -> None:
    async with running(tmp_path, receiver.url) as (bus, _):
        bus.publish(Event("forecast", "X1C", FORECAST))
        bus.publish(Event("forecast", "X1C", FORECAST))  # the same forecast after the next layer
        bus.publish(Event("job", "X1C", {"job_id": 7, "state": "finished", "billed_through": 200}))
        first, second = await receiver.next(), await receiver.next()
    assert first["title"] == "X1C: Filament will run out"
    assert first["message"].startswith("Tray A3 (PLA Black, spool #12) runs out during layer 143 of 200")
    assert (second["title"], second["message"]) == ("X1C: job 7 finished", "Used no filament billed.")
    assert receiver.bodies.empty() and receiver.requests == 2


async def test_failures_are_retried_then_delivered(tmp_path: Path, receiver: Receiver) -> None:
    receiver.failures = ATTEMPTS - 1
    async with running(tmp_path, receiver.url) as (bus, notifications):
        bus.publish(Event("forecast", "X1C", FORECAST))
        body = await receiver.next()
    assert body["title"] == "X1C: Filament will run out"
    assert receiver.requests == ATTEMPTS and notifications.failed == 0


async def test_giving_up_logs_once_without_the_url(tmp_path: Path, receiver: Receiver,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    receiver.failures = 10**6
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path, receiver.url) as (bus, notifications):
        bus.publish(Event("forecast", "X1C", FORECAST))
        while notifications.failed == 0:
            await asyncio.sleep(0.01)
    assert receiver.requests == ATTEMPTS
    given_up = [r for r in caplog.records if "not sent" in r.getMessage()]
    assert len(given_up) == 1
    assert all(str(receiver.server.server_address[1]) not in r.getMessage() for r in caplog.records)


async def test_a_failing_target_never_repeats_a_message_to_the_others(tmp_path: Path, receiver: Receiver) -> None:
    broken = Receiver(failures=10**6)
    thread = threading.Thread(target=broken.server.serve_forever, daemon=True)
    thread.start()
    try:
        bus = EventBus()
        db = open_database(tmp_path)
        config = NotificationsConfig(urls=[broken.url, receiver.url])
        notifications = Notifications(config, bus, db, SpoolDirectory(None), None, dict,
                                      retry_first_s=0.01, retry_cap_s=0.02)
        sent = await notifications.send(notifications.decider.feed(Forecast("X1C", 7, FORECAST["trays"]))[0])
        db.close()
    finally:
        broken.server.shutdown()
        broken.server.server_close()
    assert sent is False and notifications.failed == 1
    assert (broken.requests, receiver.requests) == (ATTEMPTS, 1)



async def test_outages_are_told_from_the_clock(tmp_path: Path, receiver: Receiver) -> None:
    """Ticks feed the timers: a printer that never came online and a Spoolman nobody answers for."""
    with socket.socket() as closed:  # a port with no listener: Spoolman is down
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    spoolman = SpoolmanClient(f"http://127.0.0.1:{port}", timeout=2)
    async with running(tmp_path, receiver.url, spoolman=spoolman, online=False, tick_s=0.05,
                       printer_offline_minutes=0, spoolman_unreachable_minutes=0):
        titles = {(await receiver.next())["title"], (await receiver.next())["title"]}
    await spoolman.aclose()
    assert titles == {"Printer X1C is offline", "Spoolman is unreachable"}
    assert receiver.bodies.empty()  # told once, however many ticks passed
