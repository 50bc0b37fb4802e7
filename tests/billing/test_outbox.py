"""The outbox against the Spoolman stand-in over real HTTP and a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import pytest
from ledger_helpers import (
    Crash,
    DroppingProxy,
    FaultyClient,
    Line,
    assign,
    make_outbox,
    new_job,
    quick_client,
    seed_spools,
    used_mm,
)
from ledger_rows import ledger_entries

from server.billing import backlog, deliveries, ledger
from server.billing.outbox import Outbox
from server.billing.settlement import DELIVERED, DOUBTFUL, READY, SENDING, WAITING_SPOOL
from server.db import Database
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import Spool, SpoolmanClient, SpoolmanUnreachable
from tests.waiting import until

MM = 0.01  # totals must match to this


def bill(db: Database, job: int, mm_by_filament: dict[int, float], layer: int, mapping: dict[int, int]) -> None:
    lines = [Line(layer, index, mm) for index, mm in mm_by_filament.items()]
    ledger.record_bills(db, job, lines, mapping)


def one_spool_job(db: Database, standin: SpoolmanStandin) -> tuple[int, int]:
    """A fresh spool in tray 0 and a job printing."""
    (spool,) = seed_spools(standin.store, 1)
    assign(db, 0, spool)
    return spool, new_job(db)


async def wait_until(predicate: object, timeout: float = 20.0) -> None:
    """Poll a condition the worker should reach (a generous bound, not a timing assertion)."""
    assert callable(predicate)
    await until(lambda: asyncio.to_thread(predicate), "the outbox", timeout)


@contextlib.asynccontextmanager
async def running(outbox: Outbox) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(outbox.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Crash):
            await task


async def test_bills_reach_each_spool_in_order(db: Database, standin: SpoolmanStandin, client: SpoolmanClient) -> None:
    spools = seed_spools(standin.store, 2)
    assign(db, 0, spools[0])
    assign(db, 1, spools[1])
    job = new_job(db)
    for layer in range(1, 6):
        bill(db, job, {0: 10.5 * layer, 1: 1.25}, layer, {0: 0, 1: 1})
    changed: list[int] = []
    outbox = make_outbox(db, client, on_change=changed.append, max_batch=2)
    await outbox.drain()

    assert used_mm(standin.store, spools[0]) == pytest.approx(10.5 * 15, abs=MM)
    assert used_mm(standin.store, spools[1]) == pytest.approx(1.25 * 5, abs=MM)
    assert {e.state for e in ledger_entries(db)} == {DELIVERED}
    # Batches of two, oldest first: each delivery covers consecutive layers of one spool.
    by_delivery: dict[int, list[int]] = {}
    for entry in ledger_entries(db, spool_id=spools[0]):
        assert entry.delivery_id is not None
        by_delivery.setdefault(entry.delivery_id, []).append(entry.layer)
    assert sorted(by_delivery.values()) == [[1, 2], [3, 4], [5]]
    assert set(changed) == set(spools)
    assert (await outbox.backlog()).backlog.count == 0


async def test_the_spool_spoolman_answers_a_use_with_is_handed_on(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """The cache keeps Spoolman's answer to a use (pages need not fetch the spool again)."""
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 12.5}, 1, {0: 0})
    fresh: list[Spool] = []
    await make_outbox(db, client, on_fresh=fresh.append).drain()

    assert [s.id for s in fresh] == [spool]
    assert fresh[0].used_weight == pytest.approx(standin.store.get_spool(spool)["used_weight"])


async def test_zero_length_bills_are_settled_without_a_request(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 0.0}, 1, {0: 0})
    faulty = FaultyClient(client)
    await make_outbox(db, faulty).drain()
    assert faulty.uses == 0
    assert [e.state for e in ledger_entries(db)] == [DELIVERED]
    assert standin.store.get_spool(spool)["last_used"] is None


async def test_outage_queues_bills_and_drains_when_spoolman_returns(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    spools = seed_spools(standin.store, 2)
    assign(db, 0, spools[0])
    assign(db, 254, spools[1])  # the external spool works like any tray
    job = new_job(db)
    outbox = make_outbox(db, client, backoff_base=0.05, backoff_cap=0.2)
    async with running(outbox):
        bill(db, job, {0: 3.0, 1: 2.0}, 1, {0: 0, 1: 254})
        outbox.wake()
        await wait_until(lambda: not backlog.backlog(db).spools)
        await standin.stop()

        for layer in range(2, 12):
            bill(db, job, {0: 3.0, 1: 2.0}, layer, {0: 0, 1: 254})
            outbox.wake()
        await wait_until(lambda: outbox.last_error is not None)
        status = await outbox.backlog()
        assert status.retry_at is not None
        queued = {s.spool_id: s for s in status.backlog.spools}
        assert queued[spools[0]].count == 10
        assert queued[spools[0]].mm == pytest.approx(30.0)
        assert queued[spools[1]].mm == pytest.approx(20.0)
        assert queued[spools[0]].grams == 0.0  # the lines carried no grams here
        as_json = json.loads(json.dumps(status.to_dict()))
        assert as_json["backlog"]["count"] == 20 and as_json["last_error"]
        assert used_mm(standin.store, spools[0]) == pytest.approx(3.0, abs=MM)

        await standin.start()
        await wait_until(lambda: backlog.backlog(db).count == 0)

    assert used_mm(standin.store, spools[0]) == pytest.approx(33.0, abs=MM)
    assert used_mm(standin.store, spools[1]) == pytest.approx(22.0, abs=MM)
    assert {e.state for e in ledger_entries(db)} == {DELIVERED}


async def test_dropped_answer_is_settled_as_applied_and_not_sent_again(db: Database, standin: SpoolmanStandin) -> None:
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 12.34}, 1, {0: 0})
    delivered: list[int] = []  # bills per delivery told to the latency metric: the settled one too
    async with DroppingProxy(standin.port, drops=1) as proxy, quick_client(proxy.url) as through_proxy:
        outbox = make_outbox(db, through_proxy, on_delivered=lambda written, _now: delivered.append(len(written)))
        with pytest.raises(SpoolmanUnreachable) as caught:
            await outbox.deliver_pending()
        assert caught.value.request_sent
        (entry,) = ledger_entries(db)
        assert entry.state == SENDING
        assert used_mm(standin.store, spool) == pytest.approx(12.34, abs=MM)  # Spoolman did apply it

        bill(db, job, {0: 1.0}, 2, {0: 0})
        await outbox.drain()  # settles the first request before sending the second

    assert used_mm(standin.store, spool) == pytest.approx(13.34, abs=MM)
    assert [e.state for e in ledger_entries(db)] == [DELIVERED, DELIVERED]
    assert delivered == [1, 1]


async def test_request_that_never_arrived_is_sent_again_once(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 7.5}, 1, {0: 0})
    faulty = FaultyClient(client, ["lost_request"])
    outbox = make_outbox(db, faulty)
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    assert used_mm(standin.store, spool) == 0.0
    await outbox.drain()
    assert faulty.uses == 1
    assert used_mm(standin.store, spool) == pytest.approx(7.5, abs=MM)
    assert [e.state for e in ledger_entries(db)] == [DELIVERED]


async def test_worker_killed_after_sending_is_settled_by_the_next_worker(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 5.0}, 1, {0: 0})
    applied = asyncio.Event()

    class KilledAfterRequest(FaultyClient):
        async def use_spool(self, spool_id: int, **amount: float | None) -> object:  # type: ignore[override]
            await self.inner.use_spool(spool_id, **amount)
            applied.set()
            await asyncio.Event().wait()  # the answer is "in the air" when the task is killed
            raise AssertionError("not reached")

    task = asyncio.create_task(make_outbox(db, KilledAfterRequest(client)).run())
    await applied.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [e.state for e in ledger_entries(db)] == [SENDING]

    restarted = make_outbox(db, client)
    await restarted.drain()
    assert used_mm(standin.store, spool) == pytest.approx(5.0, abs=MM)
    assert [e.state for e in ledger_entries(db)] == [DELIVERED]


async def test_crash_before_the_request_left_sends_it_once_after_restart(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 4.25}, 1, {0: 0})
    with pytest.raises(Crash):
        await make_outbox(db, FaultyClient(client, ["crash_before"])).drain()
    assert [e.state for e in ledger_entries(db)] == [SENDING]
    await make_outbox(db, client).drain()
    assert used_mm(standin.store, spool) == pytest.approx(4.25, abs=MM)


async def test_deleted_spool_waits_visibly_and_can_be_repointed(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    gone, other = seed_spools(standin.store, 2)
    assign(db, 0, gone)
    job = new_job(db)
    bill(db, job, {0: 2.0}, 1, {0: 0})
    standin.store.delete_spool(gone)
    outbox = make_outbox(db, client)
    await outbox.drain()
    (entry,) = ledger_entries(db)
    assert entry.state == WAITING_SPOOL  # for the tray's next spool (test_outbox_spool_gone.py)
    assert entry.error and str(gone) in entry.error
    assert (await outbox.backlog()).backlog.rejected == 0

    assert ledger.repoint(db, [entry.id], other) == 1
    await outbox.drain()
    assert used_mm(standin.store, other) == pytest.approx(2.0, abs=MM)
    assert [e.state for e in ledger_entries(db)] == [DELIVERED]


async def test_spool_changed_outside_while_outcome_unknown_is_doubtful_never_resent(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 6.0}, 1, {0: 0})
    outbox = make_outbox(db, FaultyClient(client, ["lost_request"]))
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    standin.store.use_spool(spool, use_length=100.0)  # someone else uses the spool meanwhile
    await outbox.drain()
    (entry,) = ledger_entries(db)
    assert entry.state == DOUBTFUL
    assert used_mm(standin.store, spool) == pytest.approx(100.0, abs=MM)  # not sent again on a guess
    assert (await outbox.backlog()).backlog.doubtful == 1

    # A person knows better: it was not applied; re-queue and it goes out once.
    assert entry.delivery_id is not None
    assert deliveries.resolve_doubtful(db, entry.delivery_id, applied=False) == 1
    assert [e.state for e in ledger_entries(db)] == [READY]
    await outbox.drain()
    assert used_mm(standin.store, spool) == pytest.approx(106.0, abs=MM)


async def test_waiting_bills_go_out_once_their_tray_and_spool_are_known(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    (spool,) = seed_spools(standin.store, 1)
    job = new_job(db)
    outbox = make_outbox(db, client)
    async with running(outbox):
        bill(db, job, {0: 2.0}, 1, {})  # the mapping is learned during the print
        outbox.wake()
        ledger.on_mapping_learned(db, job, 0, 6)  # tray 6, still empty
        bill(db, job, {0: 3.0}, 2, {0: 6})
        outbox.wake()
        assert {s.tray: s.mm for s in (await outbox.backlog()).backlog.waiting} == {6: 5.0}

        assign(db, 6, spool)
        assert ledger.on_assignment(db, "p1", 6, spool) == 2
        outbox.wake()
        await wait_until(lambda: backlog.backlog(db).count == 0)
    assert used_mm(standin.store, spool) == pytest.approx(5.0, abs=MM)


async def test_lost_answer_is_not_settled_before_the_grace_has_passed(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """A request that timed out may still be on its way: reading the spool too early would re-send it."""
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 3.0}, 1, {0: 0})
    patient = Outbox(db, FaultyClient(client, ["lost_request"]), settle_grace=3600)
    with pytest.raises(SpoolmanUnreachable):
        await patient.deliver_pending()
    assert not await patient.deliver_pending()  # nothing to do yet for this spool
    assert [e.state for e in ledger_entries(db)] == [SENDING]
    await make_outbox(db, client).drain()  # later (no grace left): settled, then sent once
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=MM)


async def test_before_reading_is_fresh_so_a_foreign_use_then_a_lost_request_is_sent_again(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """Issue 9 item 3: the "before" reading of a request comes from a fresh GET, never from the answer to
    our previous use; else a foreign use in between makes a lost request doubtful (counted, never sent)."""
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 5.0}, 1, {0: 0})
    faulty = FaultyClient(client)
    outbox = make_outbox(db, faulty)
    await outbox.drain()
    standin.store.use_spool(spool, use_length=100.0)  # someone else prints from the spool
    bill(db, job, {0: 7.0}, 2, {0: 0})
    faulty.faults.append("lost_request")
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    await outbox.drain()
    assert [e.state for e in ledger_entries(db)] == [DELIVERED, DELIVERED]
    assert used_mm(standin.store, spool) == pytest.approx(112.0, abs=MM)


async def test_a_non_finite_bill_is_rejected_visibly_and_the_others_still_go(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 9 item 13, the outbox's side: an infinite length never reaches Spoolman nor counts as applied."""
    caplog.set_level(logging.WARNING, logger="server.billing.outbox")
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: float("inf")}, 1, {0: 0})
    bill(db, job, {0: 2.0}, 2, {0: 0})
    await make_outbox(db, client).drain()
    bad, good = ledger_entries(db)
    assert (bad.state, good.state) == ("rejected", DELIVERED)
    assert bad.error and "finite" in bad.error
    assert used_mm(standin.store, spool) == pytest.approx(2.0, abs=MM)
    # The log says which spool and why (the reason, not a placeholder), once.
    assert f"1 bill(s) for spool {spool} rejected: the bill's length is not a finite number" in caplog.messages


class _OneLostOneInFlight:
    """Spool ``lost``'s request is lost on the way while the other spool's request is in flight."""

    def __init__(self, inner: SpoolmanClient, lost: int) -> None:
        self.inner = inner
        self.lost = lost
        self.failed = asyncio.Event()

    async def get_spool(self, spool_id: int) -> Spool:
        return await self.inner.get_spool(spool_id)

    async def use_spool(self, spool_id: int, *, length_mm: float | None = None, weight_g: float | None = None) -> Spool:
        if spool_id == self.lost:
            self.failed.set()
            raise SpoolmanUnreachable("injected: request lost", request_sent=True)
        await self.failed.wait()  # on its way when the other spool's request fails
        return await self.inner.use_spool(spool_id, length_mm=length_mm, weight_g=weight_g)


async def test_a_lost_request_to_one_spool_does_not_cut_off_another_spools_request(
    standin: SpoolmanStandin, client: SpoolmanClient, db: Database
) -> None:
    # Failed before the fix: the task group cancelled spool b's request, which then stayed "sending"
    # for a settle grace although nothing was wrong with it.
    a, b = seed_spools(standin.store, 2)
    assign(db, 0, a)
    assign(db, 1, b)
    job = new_job(db)
    ledger.record_bills(db, job, [Line(1, 0, 10.0), Line(1, 1, 20.0)], {0: 0, 1: 1})
    outbox = make_outbox(db, _OneLostOneInFlight(client, lost=a), settle_grace=3600.0)
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    assert used_mm(standin.store, b) == pytest.approx(20.0, abs=MM)
    states = {entry.spool_id: entry.state for entry in ledger_entries(db)}
    assert states == {a: SENDING, b: DELIVERED}
