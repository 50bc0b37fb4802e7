"""The outbox: delivers the ledger's ready entries to Spoolman's ``PUT /spool/{id}/use``, exactly once.

Per spool, in ledger order, with at most one request in flight. Each request is written
to SQLite (``sending``, with the spool's fresh ``used_weight``/``last_used`` and the weight
it adds) before it leaves. A request whose outcome is unknown (crash, timeout, dropped
connection, 5xx) is settled by reading the spool again before anything else is sent to
that spool (``settlement.settle``). While Spoolman is unreachable the worker backs off
and the bills wait in the ledger; they drain when it returns.

One ``Outbox`` per database: two workers on one file would break the one-in-flight rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from server.analysis.filament import grams
from server.billing import backlog, deliveries, errors, ledger
from server.billing.settlement import (
    CARRY_NOTE,
    DELIVERED,
    DOUBTFUL,
    REJECTED,
    Outcome,
    SpoolReading,
    carry_forward,
    settle,
    settle_grace,
)
from server.db import Database
from server.db.models import jsonable
from server.retry import backoff_delay
from server.spoolman import Spool, SpoolmanNotFound, SpoolmanRejected, SpoolmanUnreachable

log = logging.getLogger(__name__)

MAX_BATCH = 200  # entries per request while draining a backlog
SPOOLS_AT_ONCE = 8  # spools served side by side in one pass (one request in flight each)
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
SETTLE_GRACE = settle_grace(10.0)  # for the client's default timeout; the runtime derives it from the configured one


class SpoolmanUse(Protocol):
    """The two calls the outbox needs (``server.spoolman.SpoolmanClient`` has them)."""

    async def get_spool(self, spool_id: int) -> Spool: ...

    async def use_spool(
        self, spool_id: int, *, length_mm: float | None = None, weight_g: float | None = None
    ) -> Spool: ...


@dataclass(frozen=True)
class OutboxStatus:
    """The backlog for the UI and the API, with the worker's last problem."""

    backlog: backlog.Backlog
    last_error: str | None
    last_error_at: datetime | None
    retry_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values for the API and the pages."""
        data = asdict(self)
        data["backlog"]["count"] = self.backlog.count
        return jsonable(data)


def _reading(spool: Spool) -> SpoolReading:
    return SpoolReading(spool.used_weight, spool.last_used)


class Outbox:
    def __init__(
        self,
        db: Database,
        client: SpoolmanUse,
        *,
        on_change: Callable[[int], None] | None = None,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        max_batch: int = MAX_BATCH,
        settle_grace: float = SETTLE_GRACE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_slot_cleared: Callable[[str, int], None] | None = None,
        on_delivered: Callable[[list[datetime], datetime], None] | None = None,
        on_fresh: Callable[[Spool], None] | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.on_change = on_change  # told the spool id after every delivery (cache, event bus)
        # Told the spool as Spoolman answered a delivery: the cache keeps it instead of every open page
        # fetching it again (a farm's pages did so after each of its bills, bench.farm).
        self.on_fresh = on_fresh
        self.max_batch = max_batch
        self.settle_grace = settle_grace
        self.clock = clock  # wall clock of sent_at and the grace (tests move it by hand)
        self.on_slot_cleared = on_slot_cleared  # told (printer, tray) when a deleted spool leaves a tray
        # Told when a sent batch was applied: its bills' written times and now (the latency metric).
        self.on_delivered = on_delivered
        self._archived_said: set[int] = set()  # spools whose archived state was logged (once each)
        self._settle_due: float | None = None  # seconds until the next deferred settlement
        self._backoff = (backoff_base, backoff_cap)
        self._wake = asyncio.Event()
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.retry_at: datetime | None = None

    def wake(self) -> None:
        """New bills, a new assignment or a learned mapping: look at the ledger now."""
        self._wake.set()

    async def run(self) -> None:
        attempt = 0
        while True:
            self._wake.clear()
            try:
                busy = await self.deliver_pending()
            except SpoolmanUnreachable as error:
                delay = backoff_delay(attempt, base=self._backoff[0], cap=self._backoff[1])
                attempt += 1
                self._note_error(str(error), delay)
                log.warning("Spoolman unreachable (%s); bills wait, retry in %.1fs", error, delay)
                await asyncio.sleep(delay)
                continue
            if attempt:
                log.info("Spoolman reachable again")
            attempt, self.retry_at = 0, None
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._settle_due)

    async def deliver_pending(self) -> bool:
        """One pass over every spool with work; whether anything was sent or settled.

        Raises ``SpoolmanUnreachable`` when Spoolman cannot be reached: the caller backs off.
        """
        self._settle_due = None
        work = await asyncio.to_thread(self._all_work)
        # Spools are served side by side (one request in flight per spool still holds: each spool is
        # served by one task). Every task runs to its end even when another finds Spoolman unreachable:
        # cancelling a request already on its way would turn one unknown outcome into several, each
        # waiting out the settle grace.
        # At most SPOOLS_AT_ONCE at a time: a farm's hundred spools side by side would open a hundred
        # connections, churned past the keep-alive pool, and every request scans the pool (measured: a
        # tenth of the loop's time at 25 printers, bench.farm).
        # Once Spoolman proved unreachable, spools still waiting their turn start nothing: the pass ends
        # and backs off as it did when all were served at once.
        limit, unreachable = asyncio.Semaphore(SPOOLS_AT_ONCE), asyncio.Event()

        async def serve(spool_id: int, found: tuple[ledger.DeliveryData | None, list[ledger.EntryData]]) -> bool:
            async with limit:
                if unreachable.is_set():
                    return False
                try:
                    return await self._serve_spool(spool_id, *found)
                except SpoolmanUnreachable:
                    unreachable.set()
                    raise

        results = await asyncio.gather(*(serve(spool_id, found) for spool_id, found in work.items()),
                                       return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            # Spoolman unreachable: the caller backs off as usual. Anything else goes up as itself.
            raise next((e for e in errors if isinstance(e, SpoolmanUnreachable)), errors[0])
        return any(results)

    async def drain(self) -> None:
        """Deliver until nothing more can be done now (tests, shutdown); raises if Spoolman is unreachable."""
        while await self.deliver_pending():
            pass

    async def backlog(self) -> OutboxStatus:
        waiting = await asyncio.to_thread(backlog.backlog, self.db)
        return OutboxStatus(waiting, self.last_error, self.last_error_at, self.retry_at)

    # --- one spool ------------------------------------------------------------------------------

    def _all_work(self) -> deliveries.Work:
        """Per spool with work, its open delivery or else its ready entries, read in one thread hop
        (each hop costs the billing path a few milliseconds on a busy machine)."""
        return deliveries.all_work(self.db, self.max_batch)

    async def _serve_spool(self, spool_id: int, in_flight: ledger.DeliveryData | None,
                           batch: list[ledger.EntryData]) -> bool:
        if in_flight is not None:
            wait = self._settle_wait(in_flight)
            if wait > 0:
                self._settle_due = min(wait, self._settle_due or wait)
                return False
            await self._settle(in_flight)
            return True
        if not batch:
            return False
        try:
            return await self._send(spool_id, batch)
        except errors.LedgerConflict as conflict:
            # The entries were re-pointed or the like between reading and recording: nothing was
            # sent, so the next pass simply reads them again.
            log.info("spool %d: %s", spool_id, conflict)
        return True

    async def _settle(self, delivery: ledger.DeliveryData) -> None:
        try:
            spool = await self.client.get_spool(delivery.spool_id)
        except SpoolmanNotFound:
            # The spool is gone, and with it whatever was billed to it: the bills wait for their tray's
            # next spool like any bill without one.
            await self._spool_gone(delivery.spool_id, delivery.id)
            return
        verdict = settle(delivery.before, delivery.expected_g, _reading(spool))
        state = {
            Outcome.APPLIED: DELIVERED,
            Outcome.NOT_APPLIED: deliveries.NOT_APPLIED,
            Outcome.DOUBTFUL: DOUBTFUL,
        }[verdict.outcome]
        level = logging.WARNING if verdict.outcome is Outcome.DOUBTFUL else logging.INFO
        log.log(
            level,
            "settled delivery %d to spool %d: %s (%s)",
            delivery.id,
            delivery.spool_id,
            verdict.outcome,
            verdict.reason,
        )
        archived = self._archived_note(spool)
        note = f"{verdict.reason}; {archived}" if archived else verdict.reason
        await self._finish(delivery.id, delivery.spool_id, state, after=spool.used_weight, note=note, fresh=spool)
        if self.on_delivered is not None and state == DELIVERED:
            self.on_delivered(await asyncio.to_thread(deliveries.written_times, self.db, delivery.id),
                              datetime.now(UTC))

    async def _send(self, spool_id: int, batch: list[ledger.EntryData]) -> bool:
        """Send one batch; whether anything changed (False: the batch waits for the spool's next bill)."""
        absurd = [entry for entry in batch if not math.isfinite(entry.mm)]
        if absurd:
            # Never sent (it cannot be encoded, and would poison the batch's sum): out of the queue, visibly.
            await self._reject_unsent(spool_id, absurd, "the bill's length is not a finite number")
            return True
        try:
            # Always a fresh GET: a reading taken before someone else's use would turn a lost request into
            # "doubtful" (counted as applied, never sent), i.e. an under-billed spool.
            spool = await self.client.get_spool(spool_id)
        except SpoolmanNotFound:
            await self._spool_gone(spool_id)
            return True
        except SpoolmanRejected as error:
            await self._reject_unsent(spool_id, batch, f"Spoolman refused spool {spool_id}: {error}")
            return True
        filament = spool.filament
        mm = sum(entry.mm for entry in batch)
        expected = grams(mm, filament.diameter, filament.density)
        if carry_forward(spool.used_weight, expected) and len(batch) >= self.max_batch:
            # The held retractions fill a batch: look at everything queued, the next bill may be behind.
            batch = await asyncio.to_thread(deliveries.ready_entries, self.db, spool_id, None)
            mm = sum(entry.mm for entry in batch)
            expected = grams(mm, filament.diameter, filament.density)
        if carry_forward(spool.used_weight, expected):
            # Spoolman would floor it at 0 and part of it would vanish: it waits, visibly, for the
            # spool's next positive bill, so what Spoolman adds equals the ledger.
            await asyncio.to_thread(deliveries.note_held, self.db, [entry.id for entry in batch], CARRY_NOTE)
            return False
        ids = [entry.id for entry in batch]
        delivery = await asyncio.to_thread(
            deliveries.begin_delivery,
            self.db,
            spool_id,
            ids,
            mm=mm,
            expected_g=expected,
            before=_reading(spool),
            sent_at=self.clock(),
        )
        if mm == 0:
            # Layers that used nothing of this filament: nothing to tell Spoolman.
            await self._finish(delivery.id, spool_id, DELIVERED, after=spool.used_weight, note="nothing to bill")
            return True
        archived = self._archived_note(spool)
        # From here on the request may reach Spoolman: only a settlement may undo "sending".
        try:
            used = await self.client.use_spool(spool_id, length_mm=mm)
        except SpoolmanUnreachable as error:
            if not error.request_sent:
                await self._finish(delivery.id, delivery.spool_id, deliveries.NOT_SENT, note=str(error))
            raise  # request_sent: stays "sending" and is settled first on the next pass
        except SpoolmanNotFound:
            await self._spool_gone(spool_id, delivery.id)
            return True
        except SpoolmanRejected as error:
            # A 4xx answer means Spoolman did not apply it: visible, never retried blindly.
            await self._finish(delivery.id, delivery.spool_id, REJECTED, note=f"Spoolman refused the use: {error}")
            return True
        await self._finish(delivery.id, delivery.spool_id, DELIVERED, after=used.used_weight, note=archived,
                           fresh=used)
        if self.on_delivered is not None:
            self.on_delivered([entry.created_at for entry in batch], datetime.now(UTC))
        return True

    def _archived_note(self, spool: Spool) -> str | None:
        """An archived spool is still billed (the filament really left); the delivery says so."""
        if not spool.archived:
            return None
        note = f"spool #{spool.id} is archived in Spoolman"
        if spool.id not in self._archived_said:
            self._archived_said.add(spool.id)
            log.warning("%s; its bills are still delivered to it", note)
        return note

    async def _spool_gone(self, spool_id: int, delivery_id: int | None = None) -> None:
        gone = await asyncio.to_thread(deliveries.spool_gone, self.db, spool_id, delivery_id=delivery_id)
        log.warning(
            "spool %d was deleted in Spoolman: %d bill(s) wait for their tray's next spool, %s sent to the "
            "spool their tray holds now, %d rejected (no tray); trays emptied: %s",
            spool_id,
            gone.waiting,
            gone.moved or "none",
            gone.rejected,
            gone.cleared or "none",
        )
        if self.on_change is not None:
            self.on_change(spool_id)
        if self.on_slot_cleared is not None:
            for printer, tray in gone.cleared:
                self.on_slot_cleared(printer, tray)
        if gone.moved:
            self.wake()

    async def _reject_unsent(self, spool_id: int, batch: list[ledger.EntryData], note: str) -> None:
        # Nothing was sent; the entries leave the queue visibly and wait to be re-pointed.
        await asyncio.to_thread(ledger.reject, self.db, [entry.id for entry in batch], note)
        log.warning("%d bill(s) for spool %d rejected: %s", len(batch), spool_id, note)

    async def _finish(
        self, delivery: int, spool_id: int, state: str, *, after: float | None = None, note: str | None = None,
        fresh: Spool | None = None,
    ) -> None:
        await asyncio.to_thread(deliveries.finish_delivery, self.db, delivery, state, after_used_weight=after,
                                note=note)
        if state == REJECTED:
            log.warning("delivery %d to spool %d rejected: %s", delivery, spool_id, note)
        if self.on_change is not None and state in (DELIVERED, DOUBTFUL):
            self.on_change(spool_id)
        if self.on_fresh is not None and fresh is not None and state in (DELIVERED, DOUBTFUL):
            self.on_fresh(fresh)

    def _settle_wait(self, delivery: ledger.DeliveryData) -> float:
        """Seconds before a request with a lost answer may be settled.

        A request that timed out may still sit in a proxy or in Spoolman's queue; reading the
        spool too early would call it "not applied" and send it again just before it lands.
        """
        age = (self.clock() - delivery.sent_at).total_seconds()
        return min(self.settle_grace - age, self.settle_grace)  # a clock set back never waits longer

    def _note_error(self, message: str, delay: float) -> None:
        now = self.clock()
        self.last_error, self.last_error_at = message, now
        self.retry_at = now + timedelta(seconds=delay)
