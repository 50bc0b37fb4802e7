"""What the outbox tells a person: its log lines (outage, recovery, each settlement at its level) and the
time of its last problem; and that a lost answer is settled once its grace has passed without anything
else waking the worker. Written from survivors of ``python -m bench.mutation`` (issue 16)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from ledger_helpers import PRINTER, FaultyClient, assign, make_outbox, new_job, seed_spools, used_mm
from ledger_rows import ledger_deliveries, ledger_entries
from test_outbox import MM, bill, one_spool_job, running, wait_until

from server.billing import backlog
from server.billing.outbox import Outbox
from server.billing.settlement import DELIVERED, DOUBTFUL, SENDING, WAITING_SPOOL
from server.db import Database
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import Spool, SpoolmanClient, SpoolmanUnreachable

LOGGER = "server.billing.outbox"
NOON = datetime(2026, 12, 6, 12, tzinfo=UTC)  # a still clock: the announced retry time is exactly now + delay


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
    assert [e.state for e in ledger_entries(db)] == [DELIVERED, DOUBTFUL]

    applied, doubtful = records(caplog, "settled delivery ")
    first, second = (e.delivery_id for e in ledger_entries(db))
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
        await wait_until(lambda: [e.state for e in ledger_entries(db)] == [DELIVERED])
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=MM)



class DownFor(FaultyClient):
    """Spoolman unreachable for the next ``failures`` reads; records, at each read, the back-off the outbox
    announced after the previous failure (its status: ``retry_at`` minus ``last_error_at``) and its message."""

    def __init__(self, inner: SpoolmanClient) -> None:
        super().__init__(inner)
        self.failures = 0
        self.outbox: Outbox | None = None
        self.announced: list[tuple[str | None, float]] = []

    async def get_spool(self, spool_id: int) -> Spool:
        assert self.outbox is not None
        status = await self.outbox.backlog()
        if status.retry_at is not None and status.last_error_at is not None:
            self.announced.append((status.last_error, (status.retry_at - status.last_error_at).total_seconds()))
        if self.failures:
            self.failures -= 1
            raise SpoolmanUnreachable("injected: connection refused", request_sent=False)
        return await super().get_spool(spool_id)


async def test_the_retry_delay_doubles_from_its_base_after_each_failure_and_says_why(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    spool, job = one_spool_job(db, standin)
    down = DownFor(client)
    base, failures = 0.01, 5
    outbox = Outbox(db, down, settle_grace=0.0, backoff_base=base, backoff_cap=1.0, clock=lambda: NOON)
    down.outbox = outbox
    async with running(outbox):
        bill(db, job, {0: 1.0}, 1, {0: 0})
        outbox.wake()
        await wait_until(lambda: backlog.backlog(db).count == 0)
        assert not records(caplog, "Spoolman reachable again")  # it never was unreachable
        down.failures = failures
        bill(db, job, {0: 2.0}, 2, {0: 0})
        outbox.wake()
        await wait_until(lambda: backlog.backlog(db).count == 0)
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=MM)
    # The n-th retry (from 0) waits between half and all of base * 2**n ("equal jitter"), the reason shown.
    assert [message for message, _delay in down.announced] == ["injected: connection refused"] * failures
    for n, (_message, delay) in enumerate(down.announced):
        assert base * 2**n / 2 - 1e-6 <= delay <= base * 2**n + 1e-6, (n, delay)
    outages = records(caplog, "Spoolman unreachable (")
    assert len(outages) == failures
    assert all(r.getMessage().startswith("Spoolman unreachable (injected: connection refused); ") for r in outages)
    assert len(records(caplog, "Spoolman reachable again")) == 1


async def test_a_deleted_spool_is_reported_in_one_line_saying_where_its_bills_went(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    changed: list[int] = []
    outbox = make_outbox(db, client, on_change=changed.append)
    job = new_job(db)
    # Tray 1 holds a spool that is deleted: its bill waits for the tray's next spool, the tray is emptied.
    gone, swapped, new = seed_spools(standin.store, 3)
    assign(db, 1, gone)
    bill(db, job, {0: 2.0}, 1, {0: 1})
    standin.store.delete_spool(gone)
    await outbox.drain()
    # Tray 2's spool is deleted after another spool was put in: the bill goes on to that spool.
    assign(db, 2, swapped)
    bill(db, job, {0: 3.0}, 2, {0: 2})
    standin.store.delete_spool(swapped)
    assign(db, 2, new)
    await outbox.drain()

    assert [(e.tray, e.spool_id, e.state) for e in ledger_entries(db)] == [
        (1, None, WAITING_SPOOL), (2, new, DELIVERED)]
    first, second = records(caplog, "spool ")
    assert first.levelno == second.levelno == logging.WARNING
    assert first.getMessage() == (
        f"spool {gone} was deleted in Spoolman: 1 bill(s) wait for their tray's next spool, none sent to the "
        f"spool their tray holds now, 0 rejected (no tray); trays emptied: [('{PRINTER}', 1)]")
    assert second.getMessage() == (
        f"spool {swapped} was deleted in Spoolman: 0 bill(s) wait for their tray's next spool, {{{new}: 1}} sent "
        "to the spool their tray holds now, 0 rejected (no tray); trays emptied: none")
    assert changed == [gone, swapped, new]  # the deleted spools' cached figures are dropped, then the delivery


async def test_a_settled_request_says_how_and_tells_the_cache_and_the_latency_metric(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Both answers lost, both settled as applied: each delivery's note gives the reason (and that spool #N is
    archived, for the archived one) and keeps the reading for a person comparing the ledger with Spoolman; the
    cache is told the spool and handed the reading; the latency metric gets each bill's written time and an
    aware "now"."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    archived, plain = seed_spools(standin.store, 2)
    standin.store.update_spool(archived, {"archived": True})
    assign(db, 0, archived)
    assign(db, 1, plain)
    bill(db, new_job(db), {0: 4.0, 1: 1.0}, 1, {0: 0, 1: 1})
    changed: list[int] = []
    fresh: list[Spool] = []
    latencies: list[float] = []
    outbox = make_outbox(db, FaultyClient(client, ["lost_answer", "lost_answer"]), on_change=changed.append,
                         on_fresh=fresh.append,
                         on_delivered=lambda written, now: latencies.extend((now - at).total_seconds()
                                                                            for at in written))
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    assert [e.state for e in ledger_entries(db)] == [SENDING, SENDING] and not changed and not latencies
    await outbox.drain()

    assert [e.state for e in ledger_entries(db)] == [DELIVERED, DELIVERED]
    notes = {d.spool_id: d.note or "" for d in ledger_deliveries(db)}
    assert notes[archived].startswith("used_weight moved by ")
    assert notes[archived].endswith(f" g as expected; spool #{archived} is archived in Spoolman")
    assert notes[plain].startswith("used_weight moved by ") and notes[plain].endswith(" g as expected")
    assert {d.spool_id: d.after_used_weight for d in ledger_deliveries(db)} == {
        spool: pytest.approx(standin.store.get_spool(spool)["used_weight"]) for spool in (archived, plain)}
    assert sorted(changed) == sorted([archived, plain])
    assert sorted(s.id for s in fresh) == sorted([archived, plain])
    assert {s.id: s.used_weight for s in fresh} == {
        spool: pytest.approx(standin.store.get_spool(spool)["used_weight"]) for spool in (archived, plain)}
    assert len(latencies) == 2 and all(0 <= seconds < 3600 for seconds in latencies)
    (said,) = records(caplog, f"spool #{archived} ")  # once, however often the spool is read
    assert (said.levelno, said.getMessage()) == (
        logging.WARNING, f"spool #{archived} is archived in Spoolman; its bills are still delivered to it")


async def test_a_lost_request_is_doubtful_when_someone_else_touched_the_spool_even_without_a_net_change(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """Someone else used 5 g and took it back while our request's outcome was unknown: used_weight is as before,
    last_used is not, so Layerwise cannot tell whether its request was applied and says so."""
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 3.0}, 1, {0: 0})
    outbox = make_outbox(db, FaultyClient(client, ["lost_request"]))
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    standin.store.use_spool(spool, use_weight=5.0)
    standin.store.use_spool(spool, use_weight=-5.0)
    await outbox.drain()
    assert [e.state for e in ledger_entries(db)] == [DOUBTFUL]
    assert used_mm(standin.store, spool) == pytest.approx(0.0, abs=MM)  # counted as applied, never sent twice


async def test_a_refused_use_is_logged_with_its_request_its_spool_and_spoolmans_reason(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    spool, job = one_spool_job(db, standin)
    bill(db, job, {0: 2.0}, 1, {0: 0})
    standin.refuse("PUT", f"/spool/{spool}/use", 422, "Input should be a valid number")
    await make_outbox(db, client).drain()
    (entry,) = ledger_entries(db)
    assert entry.error and "Input should be a valid number" in entry.error
    (said,) = records(caplog, "delivery ")
    assert (said.levelno, said.getMessage()) == (
        logging.WARNING, f"delivery {entry.delivery_id} to spool {spool} rejected: {entry.error}")


async def test_a_batch_that_nets_to_nothing_is_recorded_without_a_request_and_the_queue_goes_on(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """A retraction that cancels the layer before it: one delivery noted "nothing to bill", no ``use`` sent, the
    spool's later bills still go in the same drain, and the cache and the latency metric hear of each."""
    spool, job = one_spool_job(db, standin)
    for layer, mm in enumerate((2.0, -2.0, 3.0), start=1):
        bill(db, job, {0: mm}, layer, {0: 0})
    faulty = FaultyClient(client)
    changed: list[int] = []
    latencies: list[float] = []
    outbox = make_outbox(db, faulty, max_batch=2, on_change=changed.append,
                         on_delivered=lambda written, now: latencies.extend((now - at).total_seconds()
                                                                            for at in written))
    await outbox.drain()
    assert [e.state for e in ledger_entries(db)] == [DELIVERED] * 3
    assert faulty.uses == 1 and used_mm(standin.store, spool) == pytest.approx(3.0, abs=MM)
    assert [(d.mm, d.note) for d in ledger_deliveries(db)] == [(0.0, "nothing to bill"), (3.0, None)]
    assert changed == [spool, spool]
    assert len(latencies) == 1 and 0 <= latencies[0] < 3600  # the sent bill (the netted pair sent nothing)


async def test_a_new_outbox_reports_no_problem_and_no_retry(db: Database, client: SpoolmanClient) -> None:
    status = (await make_outbox(db, client).backlog()).to_dict()
    assert (status["last_error"], status["last_error_at"], status["retry_at"]) == (None, None, None)
