"""The thin shell of notifications: bus events and a clock in, Apprise out.

Tracking never waits for it: the bus drops what a slow subscriber cannot take, messages wait in a
bounded queue, and Apprise (blocking HTTP) runs in a worker thread. A message Apprise could not deliver
is tried a few more times with the project's back-off (``server.retry``), then logged once, without
its target (Apprise URLs hold tokens).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import apprise
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt

from server.billing import attention, statements
from server.config.reach import NotificationsConfig, masked_url
from server.db import Database
from server.events import Event, EventBus
from server.notify.rules import (
    ENDINGS,
    Attention,
    Decider,
    Forecast,
    JobEnded,
    Message,
    Observation,
    Progress,
    Reachability,
    SpoolLevel,
    Tick,
)
from server.retry import EqualJitter
from server.spoolman import SpoolmanClient, SpoolmanError
from server.spoolman.directory import SpoolDirectory
from server.supervise import stop_tasks

log = logging.getLogger(__name__)
# Apprise logs its targets (hosts, sometimes tokens) on failure; this module says what failed instead.
# urllib3 (under Apprise's requests) logs each request's path at DEBUG, and webhook paths hold tokens.
logging.getLogger("apprise").setLevel(logging.CRITICAL)
logging.getLogger("urllib3").setLevel(logging.WARNING)

TICK_S = 30.0
ATTEMPTS = 4
QUEUE_SIZE = 100


class NotSent(Exception):
    pass


class Notifications:
    def __init__(self, config: NotificationsConfig, bus: EventBus, db: Database, spools: SpoolDirectory,
                 spoolman: SpoolmanClient | None, online: Callable[[], Mapping[str, bool]], *,
                 tick_s: float = TICK_S, retry_first_s: float = 2.0, retry_cap_s: float = 30.0) -> None:
        self.config = config
        self.bus = bus
        self.db = db
        self.spools = spools
        self.spoolman = spoolman
        self.online = online
        self.tick_s = tick_s
        self.decider = Decider(config)
        self.queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_SIZE)
        self._wait = EqualJitter(retry_first_s, retry_cap_s)
        # One Apprise per URL: a failure is retried for that target alone, never sent twice to the others.
        self._targets: list[tuple[str, apprise.Apprise]] = []
        for url in config.urls:
            target = apprise.Apprise()
            target.add(url.get_secret_value())
            self._targets.append((masked_url(url.get_secret_value()), target))
        self.failed = 0  # messages given up on (for tests and the log)

    @property
    def enabled(self) -> bool:
        return bool(self.config.urls)

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_forever(), name="notifications sender")
        try:
            async with self.bus.subscribe() as events:
                await self._tick()
                next_tick = time.monotonic() + self.tick_s
                while True:
                    try:
                        event = await asyncio.wait_for(events.get(), max(0.0, next_tick - time.monotonic()))
                    except TimeoutError:
                        await self._tick()
                        next_tick = time.monotonic() + self.tick_s
                        continue
                    for seen in await self.observe(event):
                        self.emit(self.decider.feed(seen))
        finally:
            await stop_tasks(sender)

    # --- in: what the bus and the clock say ------------------------------------------------------------

    async def observe(self, event: Event) -> list[Observation]:
        """The observations an event stands for, reading the ledger and Spoolman where the event is short."""
        data = event.data
        if event.kind == "forecast" and event.printer and data.get("job_id") is not None:
            return [Forecast(event.printer, int(data["job_id"]), list(data.get("trays") or []))]
        if event.kind == "job" and event.printer and data.get("job_id") is not None:
            job_id = int(data["job_id"])
            seen: list[Observation] = [Progress(event.printer, job_id, data.get("billed_through"))]
            if str(data.get("state") or "").lower() in ENDINGS:
                seen.append(await self._job_ended(event.printer, job_id, str(data["state"]).lower()))
            return [*seen, await self._attention()]
        if event.kind == "spool" and data.get("spool_id") is not None:
            return await self._spool_level(int(data["spool_id"]))
        if event.kind == "ledger":
            return [await self._attention()]
        if event.kind == "printer" and event.printer and "online" in data:
            return [Reachability(event.printer, bool(data["online"]), time.monotonic())]
        return []

    async def _job_ended(self, printer: str, job_id: int, state: str) -> JobEnded:
        detail = await asyncio.to_thread(statements.job_detail, self.db, job_id)
        parts = detail.parts if detail is not None else []
        names = await self._spool_names([p.spool_id for p in parts if p.spool_id is not None])
        grams = [(names.get(p.spool_id, f"spool #{p.spool_id}") if p.spool_id is not None
                  else f"tray {', '.join(p.tray_labels) or '?'} (no spool)", p.grams) for p in parts]
        return JobEnded(printer, job_id, state, detail.name if detail else f"job {job_id}", grams)

    async def _spool_names(self, spool_ids: list[int]) -> dict[int, str]:
        try:
            spools = await self.spools.get_many(spool_ids)
        except SpoolmanError:
            return {}
        return {i: f"{_spool_name(s)} (spool #{i})" for i, s in spools.items() if s is not None}

    async def _spool_level(self, spool_id: int) -> list[Observation]:
        try:
            spool = await self.spools.get(spool_id)
        except SpoolmanError:
            return []
        if spool is None:
            return []
        return [SpoolLevel(spool_id, _spool_name(spool), spool.remaining_weight)]

    async def _attention(self) -> Attention:
        return Attention(await asyncio.to_thread(attention.attention_groups_count, self.db))

    async def _tick(self) -> None:
        now = time.monotonic()
        seen: list[Observation] = [Reachability(name, up, now) for name, up in self.online().items()]
        if self.spoolman is not None:
            seen.append(Reachability(None, await self.spoolman.health(), time.monotonic()))
        seen += [await self._attention(), Tick(time.monotonic())]
        for one in seen:
            self.emit(self.decider.feed(one))

    # --- out: Apprise ---------------------------------------------------------------------------------

    def emit(self, messages: list[Message]) -> None:
        if not self.enabled:
            return
        for message in messages:
            try:
                self.queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("notification dropped (%d waiting): %s", self.queue.qsize(), message.title)

    async def _send_forever(self) -> None:
        while True:
            message = await self.queue.get()
            await self.send(message)

    async def send(self, message: Message) -> bool:
        """Deliver to every target; True when all took it."""
        results = [await self._send_to(shown, target, message) for shown, target in self._targets]
        return all(results)

    async def _send_to(self, shown: str, target: apprise.Apprise, message: Message) -> bool:
        """One target, retried with back-off while Apprise reports a failure; logged once when given up."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(ATTEMPTS), wait=self._wait,
                retry=retry_if_exception_type(Exception),
            ):
                with attempt:
                    if not await asyncio.to_thread(target.notify, body=message.body, title=message.title):
                        raise NotSent  # Apprise answers False rather than raising
        except RetryError:
            self.failed += 1
            log.warning("notification %r (%s) not sent to %s after %d tries", message.title, message.event, shown,
                        ATTEMPTS)
            return False
        return True


def _spool_name(spool: Any) -> str:
    filament = spool.filament
    parts = [filament.vendor.name if filament and filament.vendor else None, filament.name if filament else None]
    return " ".join(p for p in parts if p) or f"Spool {spool.id}"
