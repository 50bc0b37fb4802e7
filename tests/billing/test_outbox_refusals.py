"""What the outbox does when Spoolman refuses, or the request never leaves (docs/tracking.md, "Delivering"):
a 4xx other than 404 on the spool's read or on the ``use`` rejects the bills visibly with Spoolman's message
and sends nothing, without holding up the spool's later bills; a ``use`` whose connection was refused never
left, so its bills are queued again at once, with no settlement; and a batch another worker on the same
database sent meanwhile is not sent again, the loser saying why. Billing stays exact throughout: what
Spoolman adds equals the ledger's delivered bills, nothing twice. Written from survivors of
``python -m bench.mutation`` (issue 16): ``Outbox._send`` 18, 112, 134 and ``_serve_spool`` 22."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import pytest
from ledger_helpers import FaultyClient, make_outbox, used_mm
from ledger_rows import ledger_deliveries, ledger_entries
from test_outbox import MM, bill, one_spool_job, running, wait_until

from server.billing import attention, backlog, deliveries
from server.billing.attention import Selector
from server.billing.outbox import Outbox
from server.billing.settlement import DELIVERED, READY, REJECTED
from server.db import Database
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import Spool, SpoolmanClient, SpoolmanUnreachable

LOGGER = "server.billing.outbox"


def states(db: Database) -> list[tuple[float, str]]:
    return [(e.mm, e.state) for e in ledger_entries(db)]


@pytest.fixture
def said(caplog: pytest.LogCaptureFixture) -> Callable[[], list[tuple[int, str]]]:
    """The outbox's log lines so far, (level, message)."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    return lambda: [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]


async def test_a_refused_read_rejects_the_bills_visibly_and_sends_nothing(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, said: Callable[[], list[tuple[int, str]]]
) -> None:
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 3.0}, 1, {0: 0})
    bill(db, job, {0: 4.0}, 2, {0: 0})
    standin.refuse("GET", f"/spool/{spool}", 400, "Bad request")
    await make_outbox(db, client).drain()
    assert states(db) == [(3.0, REJECTED), (4.0, REJECTED)]
    assert {e.error for e in ledger_entries(db)} == {f"Spoolman refused spool {spool}: Bad request"}
    assert used_mm(standin.store, spool) == 0.0  # nothing sent
    assert deliveries.open_delivery(db, spool) is None
    assert backlog.backlog(db).rejected == 2
    assert [m for level, m in said() if level == logging.WARNING] == [
        f"2 bill(s) for spool {spool} rejected: Spoolman refused spool {spool}: Bad request"
    ]

    # A person sends them again ("Send again" in the web app): delivered once, the ledger and Spoolman agree.
    assert attention.retry(db, Selector(job, REJECTED, spool_id=spool)) == 2
    await make_outbox(db, client).drain()
    assert states(db) == [(3.0, DELIVERED), (4.0, DELIVERED)]
    assert used_mm(standin.store, spool) == pytest.approx(7.0, abs=MM)


async def test_a_refused_read_rejects_a_backlog_longer_than_one_request_in_one_drain(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """Each request's read is refused: every batch is rejected in turn, none waits for a later bill to wake it."""
    spool, job = one_spool_job(db, standin)
    for layer, mm in enumerate((2.0, 5.0, 6.0), start=1):
        bill(db, job, {0: mm}, layer, {0: 0})
    standin.refuse("GET", f"/spool/{spool}", 400, "Bad request", times=3)
    await make_outbox(db, client, max_batch=1).drain()
    assert states(db) == [(2.0, REJECTED), (5.0, REJECTED), (6.0, REJECTED)]
    assert used_mm(standin.store, spool) == 0.0


async def test_a_refused_use_is_rejected_and_the_spools_later_bills_still_go(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """A backlog longer than one request (``max_batch``, 200 in production): the first request is refused,
    the rest of the queue still drains in the same pass instead of waiting for the next bill to wake it."""
    spool, job = one_spool_job(db, standin)
    for layer, mm in enumerate((2.0, 5.0, 6.0), start=1):
        bill(db, job, {0: mm}, layer, {0: 0})
    standin.refuse("PUT", f"/spool/{spool}/use", 422, "Input should be a valid number")
    await make_outbox(db, client, max_batch=1).drain()
    assert states(db) == [(2.0, REJECTED), (5.0, DELIVERED), (6.0, DELIVERED)]
    refused = ledger_entries(db)[0]
    assert refused.error and refused.error.startswith("Spoolman refused the use: ")
    assert "Input should be a valid number" in refused.error
    assert used_mm(standin.store, spool) == pytest.approx(11.0, abs=MM)  # the refused 2 mm were not applied
    assert attention.retry(db, Selector(job, REJECTED, spool_id=spool)) == 1  # "Send again"
    await make_outbox(db, client).drain()
    assert used_mm(standin.store, spool) == pytest.approx(13.0, abs=MM)


async def test_a_use_whose_connection_was_refused_is_queued_again_at_once(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """Spoolman goes down between the read and the ``use``: the request certainly never left, so no settlement
    is needed. The grace here is an hour: had the request been left "sending", nothing would go for an hour."""
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 3.5}, 1, {0: 0})
    outbox = Outbox(db, FaultyClient(client, ["refused"]), settle_grace=3600)
    with pytest.raises(SpoolmanUnreachable) as refused:
        await outbox.deliver_pending()
    assert not refused.value.request_sent
    (delivery,) = ledger_deliveries(db, spool_id=spool)
    assert delivery.state == deliveries.NOT_SENT and delivery.note and "unreachable" in delivery.note
    assert states(db) == [(3.5, READY)]
    assert not any(s.sending for s in backlog.backlog(db).spools)  # nothing awaits settlement
    assert used_mm(standin.store, spool) == 0.0

    await outbox.drain()  # Spoolman is back: sent now, once
    assert states(db) == [(3.5, DELIVERED)]
    assert [d.state for d in ledger_deliveries(db, spool_id=spool)] == [deliveries.NOT_SENT, DELIVERED]
    assert used_mm(standin.store, spool) == pytest.approx(3.5, abs=MM)


class _OtherWorkerFirst(FaultyClient):
    """While this worker reads the spool, another worker on the same database delivers the same batch (say an
    old process still draining while a new one starts on the same data directory)."""

    def __init__(self, inner: SpoolmanClient, other: Outbox) -> None:
        super().__init__(inner)
        self.other: Outbox | None = other

    async def get_spool(self, spool_id: int) -> Spool:
        other, self.other = self.other, None
        if other is not None:
            with contextlib.suppress(SpoolmanUnreachable):  # the other worker's request may be lost
                await other.drain()
        return await super().get_spool(spool_id)


async def test_a_batch_another_worker_sent_meanwhile_is_not_sent_again(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, said: Callable[[], list[tuple[int, str]]]
) -> None:
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 4.25}, 1, {0: 0})
    late = make_outbox(db, _OtherWorkerFirst(client, make_outbox(db, client)))
    await late.drain()
    assert states(db) == [(4.25, DELIVERED)]
    assert len(ledger_deliveries(db, spool_id=spool)) == 1
    assert used_mm(standin.store, spool) == pytest.approx(4.25, abs=MM)  # once
    assert [(level, m) for level, m in said() if m.startswith(f"spool {spool}: ")] == [
        (logging.INFO, f"spool {spool}: entries of spool {spool} changed before sending")
    ]


async def test_a_request_another_worker_lost_meanwhile_is_settled_when_its_grace_ends_without_another_wake(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """The other worker's request for the batch is lost and that worker gives up: this one, finding the batch
    taken, looks again at once, sees the request in flight, and settles it when its grace is over."""
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 4.25}, 1, {0: 0})
    other = make_outbox(db, FaultyClient(client, ["lost_request"]))
    late = Outbox(db, _OtherWorkerFirst(client, other), settle_grace=0.3)
    async with running(late):
        late.wake()  # the only wake
        await wait_until(lambda: states(db) == [(4.25, DELIVERED)])
    assert used_mm(standin.store, spool) == pytest.approx(4.25, abs=MM)  # settled as not applied, sent once


@pytest.mark.parametrize("status", [408, 429])
async def test_a_busy_spoolman_is_an_outage_not_a_refusal(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, status: int
) -> None:
    """A rate limit (429) or a proxy's timeout (408) in front of Spoolman says nothing about the bill: it
    waits like in an outage, is settled by a fresh read and delivered once, with no person needed."""
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 3.0}, 1, {0: 0})
    standin.refuse("PUT", f"/spool/{spool}/use", status, "Too Many Requests")
    outbox = make_outbox(db, client)
    with pytest.raises(SpoolmanUnreachable, match=f"busy: {status}"):
        await outbox.drain()
    assert backlog.backlog(db).rejected == 0
    assert [state for _, state in states(db)] != [REJECTED]
    await outbox.drain()  # the limit has passed: settled by a fresh read, then sent once
    assert states(db) == [(3.0, DELIVERED)]
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=MM)
