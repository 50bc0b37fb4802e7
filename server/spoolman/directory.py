"""A short-lived cache of Spoolman spools for pages and the API.

A dashboard view shows a dozen slots; fetching each spool on every view would
hammer Spoolman from every phone. Entries live ``ttl`` seconds and are dropped
as soon as Layerwise itself changes a spool (a bill delivered, an assignment).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from server.spoolman import Spool, SpoolmanClient, SpoolmanError, SpoolmanNotFound

log = logging.getLogger(__name__)

# Spools read from Spoolman side by side. A farm's pages ask for hundreds of spools when their entries
# expire together; a hundred requests at once open dozens of connections, and httpx's pool scans its
# queue and every connection on each request and each answer (bench.farm: 2.5 ms of loop CPU per GET
# with 400 at once, 0.9 ms with 8).
FETCHES_AT_ONCE = 8


class SpoolDirectory:
    def __init__(self, client: SpoolmanClient | None, ttl: float = 30.0) -> None:
        self.client = client
        self.ttl = ttl
        self._entries: dict[int, tuple[float, Spool | None]] = {}
        self.last_error: str | None = None
        # Bumped by invalidate(): a read begun before it must not be kept. Per spool, so that one spool's
        # delivery does not throw away the reads of others under way (a farm delivers many times a second:
        # with one counter for all, most reads were discarded and made again, bench.farm).
        self._generation = 0  # invalidate() of every spool
        self._changed: dict[int, int] = {}  # invalidate(spool_id), per spool
        # Reads under way, by spool, with the generation each began in: callers asking for a spool already
        # being read share that read (a farm's pages and forecasts ask for the same spools at once).
        self._reading: dict[int, tuple[tuple[int, int], asyncio.Future[Spool | None]]] = {}
        self._limit: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def invalidate(self, spool_id: int | None = None) -> None:
        if spool_id is None:
            self._generation += 1
            self._entries.clear()
        else:
            self._changed[spool_id] = self._changed.get(spool_id, 0) + 1
            self._entries.pop(spool_id, None)

    def _version(self, spool_id: int) -> tuple[int, int]:
        """Changes on record for this spool: a read is kept only if none happened while it ran."""
        return self._generation, self._changed.get(spool_id, 0)

    def put(self, spool: Spool) -> None:
        self._entries[spool.id] = (time.monotonic(), spool)

    def _fresh(self, spool_id: int, now: float) -> tuple[float, Spool | None] | None:
        cached = self._entries.get(spool_id)
        return cached if cached and now - cached[0] < self.ttl else None

    async def get(self, spool_id: int) -> Spool | None:
        """The spool, ``None`` if Spoolman says it does not exist; raises if unreachable."""
        now = time.monotonic()
        cached = self._fresh(spool_id, now)
        if cached:
            return cached[1]
        if self.client is None:
            return None
        under_way = self._reading.get(spool_id)
        version = self._version(spool_id)
        if under_way is None or under_way[0] != version:  # none, or begun before a change: read anew
            reading = asyncio.ensure_future(self._read(self.client, spool_id, version))
            self._reading[spool_id] = under_way = (version, reading)
            reading.add_done_callback(lambda done: self._read_done(spool_id, done))
        # Shielded: one caller giving up (a page closed) does not cancel the read the others wait for.
        return await asyncio.shield(under_way[1])

    async def _read(self, client: SpoolmanClient, spool_id: int, version: tuple[int, int]) -> Spool | None:
        async with self._semaphore():
            now = time.monotonic()
            try:
                spool: Spool | None = await client.get_spool(spool_id)
            except SpoolmanNotFound:
                spool = None
        if version == self._version(spool_id):  # else the spool changed while it was read: the answer may be stale
            self._entries[spool_id] = (now, spool)
        return spool

    def _read_done(self, spool_id: int, done: asyncio.Future[Spool | None]) -> None:
        if self._reading.get(spool_id, ((0, 0), None))[1] is done:
            del self._reading[spool_id]
        if not done.cancelled():
            done.exception()  # taken by its callers; looked at here so that none left is not logged as lost

    def _semaphore(self) -> asyncio.Semaphore:
        # Made in the running loop (the directory may outlive one, as in tests).
        loop = asyncio.get_running_loop()
        if self._limit is None or self._limit[0] is not loop:
            self._limit = (loop, asyncio.Semaphore(FETCHES_AT_ONCE))
        return self._limit[1]

    async def get_many(self, spool_ids: Iterable[int]) -> dict[int, Spool | None]:
        """Spools by id; on an outage the ones not cached are left out and ``last_error`` says why."""
        ids = sorted(set(spool_ids))
        now = time.monotonic()
        found: dict[int, Spool | None] = {}
        for spool_id in ids:  # the cached ones without a task each (pages ask for a farm's spools every second)
            if cached := self._fresh(spool_id, now):
                found[spool_id] = cached[1]
        ids = [spool_id for spool_id in ids if spool_id not in found]
        results = await asyncio.gather(*(self.get(i) for i in ids), return_exceptions=True)
        errors = []
        for spool_id, result in zip(ids, results, strict=True):
            if isinstance(result, SpoolmanError):
                errors.append(str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                found[spool_id] = result
        self.last_error = errors[0] if errors else None
        return found
