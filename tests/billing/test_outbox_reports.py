"""What the outbox tells a person: its log lines (outage, recovery, each settlement at its level) and the
time of its last problem; and that a lost answer is settled once its grace has passed without anything
else waking the worker. Written from survivors of ``python -m bench.mutation`` (issue 16)."""

from __future__ import annotations

import logging

import pytest
from ledger_helpers import FaultyClient, make_outbox, used_mm
from test_outbox import MM, bill, one_spool_job, running, wait_until

from server.billing import backlog, ledger
from server.billing.outbox import Outbox
from server.billing.settlement import DELIVERED, DOUBTFUL
from server.db import Database
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import SpoolmanClient, SpoolmanUnreachable

LOGGER = "server.billing.outbox"


def records(caplog: pytest.LogCaptureFixture, start: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.getMessage().startswith(start)]


async def test_an_outage_is_logged_with_its_retry_and_the_recovery_once(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    spool, job = one_spool_job(db, standin)
    outbox = make_outbox(db, client, backoff_base=0.05, backoff_cap=0.2)
    await standin.stop()
    async with running(outbox):
        bill(db, job, {0: 3.0}, 1, {0: 0})
        outbox.wake()
        await wait_until(lambda: outbox.last_error is not None)
        status = await outbox.backlog()
        assert status.last_error_at is not None and status.retry_at is not None
        assert status.last_error_at <= status.retry_at  # the retry is planned after the failure it follows
        assert status.to_dict()["last_error_at"]
        await standin.start()
        await wait_until(lambda: backlog.backlog(db).count == 0)
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=MM)
    (outage, *_) = records(caplog, "Spoolman unreachable (")
    assert outage.levelno == logging.WARNING and "; bills wait, retry in " in outage.getMessage()
    assert outage.getMessage().endswith("s")  # "retry in 0.1s"
    (recovered,) = records(caplog, "Spoolman reachable again")
    assert recovered.levelno == logging.INFO


async def test_settlements_are_logged_with_their_reason_a_doubtful_one_as_a_warning(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 6.0}, 1, {0: 0})
    outbox = make_outbox(db, FaultyClient(client, ["lost_answer"]))
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    await outbox.drain()  # settled: applied
    bill(db, job, {0: 2.0}, 2, {0: 0})
    outbox = make_outbox(db, FaultyClient(client, ["lost_request"]))
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    standin.store.use_spool(spool, use_length=100.0)  # someone else uses the spool meanwhile
    await outbox.drain()  # settled: doubtful
    assert [e.state for e in ledger.entries(db)] == [DELIVERED, DOUBTFUL]

    applied, doubtful = records(caplog, "settled delivery ")
    first, second = (e.delivery_id for e in ledger.entries(db))
    assert applied.levelno == logging.INFO and doubtful.levelno == logging.WARNING
    assert applied.getMessage().startswith(f"settled delivery {first} to spool {spool}: applied (")
    assert doubtful.getMessage().startswith(f"settled delivery {second} to spool {spool}: doubtful (")
    for record in (applied, doubtful):  # the reason is said, in brackets, and the line ends there
        reason = record.getMessage().split(" (", 1)[1]
        assert reason.endswith(")") and len(reason) > 10 and reason != "None)"


async def test_a_lost_request_is_settled_when_its_grace_ends_without_another_wake(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    spool, job = one_spool_job(db, standin)
    outbox = Outbox(db, FaultyClient(client, ["lost_request"]), settle_grace=0.3,
                    backoff_base=0.05, backoff_cap=0.2)
    async with running(outbox):
        bill(db, job, {0: 3.0}, 1, {0: 0})
        outbox.wake()  # the only wake: the worker must come back by itself when the grace is over
        await wait_until(lambda: [e.state for e in ledger.entries(db)] == [DELIVERED])
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=MM)

