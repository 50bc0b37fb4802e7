"""Issue 9 item 6: the settle grace follows the configured Spoolman timeout (production rule, simulated clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_helpers import FaultyClient, Line, assign, new_job, seed_spools, used_mm
from ledger_rows import ledger_entries

from server.billing import ledger
from server.billing.outbox import Outbox
from server.billing.settlement import DELIVERED, SENDING, settle_grace
from server.config import ServerConfig, Settings, SpoolmanConfig
from server.db import Database
from server.runtime import Runtime
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import SpoolmanClient, SpoolmanUnreachable


class Clock:
    """A clock the test moves by hand: the grace is simulated, never slept."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@given(st.floats(min_value=0.001, max_value=3600, allow_nan=False))
def test_grace_outlasts_everything_the_client_may_spend_on_one_request(timeout: float) -> None:
    # httpx applies the timeout per phase (pool, connect, write, read): the request may still be
    # written up to three timeouts after it was recorded, and Spoolman may take a moment to apply it.
    assert settle_grace(timeout) > 3 * timeout
    assert settle_grace(timeout) >= settle_grace(timeout / 2)


def test_runtime_derives_the_grace_from_the_configured_timeout(tmp_path: Path) -> None:
    settings = Settings(
        server=ServerConfig(data_dir=tmp_path / "data"),
        spoolman=SpoolmanConfig(url="http://127.0.0.1:9", timeout=30),
    )
    runtime = Runtime.build(settings)
    try:
        assert runtime.outbox is not None
        assert runtime.outbox.settle_grace == settle_grace(30) > 30
    finally:
        runtime.db.close()


async def lost_request(db: Database, standin: SpoolmanStandin, client: SpoolmanClient,
                       grace: float | None) -> tuple[int, Outbox, Clock]:
    """A bill whose request was lost on its way, under a clock the test moves (``grace`` None: the default)."""
    (spool,) = seed_spools(standin.store, 1)
    assign(db, 0, spool)
    ledger.record_bills(db, new_job(db), [Line(1, 0, 3.0)], {0: 0})
    clock = Clock()
    faulty = FaultyClient(client, ["lost_request"])
    outbox = Outbox(db, faulty, clock=clock) if grace is None else Outbox(db, faulty, settle_grace=grace, clock=clock)
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    return spool, outbox, clock


async def test_a_lost_request_waits_the_production_grace_for_a_30_second_timeout(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    grace = settle_grace(30)
    spool, outbox, clock = await lost_request(db, standin, client, grace)
    # Past the timeout and the old fixed 15 s, but not past the grace: the request may still land.
    clock.advance(max(30, 15) + 1)
    assert grace > 31
    assert not await outbox.deliver_pending()
    assert [e.state for e in ledger_entries(db)] == [SENDING]
    clock.advance(grace)
    await outbox.drain()  # settled as not applied, then sent once
    assert [e.state for e in ledger_entries(db)] == [DELIVERED]
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=0.01)


async def test_an_outbox_built_with_its_defaults_waits_the_production_grace(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """Every other outbox test passes its own grace (0 or a derived one); this one uses the module's
    SETTLE_GRACE, the grace for the client's default 10 s timeout, so that value is tested too."""
    spool, outbox, clock = await lost_request(db, standin, client, None)  # no settle_grace: the default
    assert outbox.settle_grace == settle_grace(10.0) > 3 * 10.0
    clock.advance(3 * 10.0 + 1)  # past every timeout the client may spend on the lost request
    assert not await outbox.deliver_pending()
    assert [e.state for e in ledger_entries(db)] == [SENDING]  # still inside the grace: not sent again
    clock.advance(settle_grace(10.0))
    await outbox.drain()
    assert [e.state for e in ledger_entries(db)] == [DELIVERED]
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=0.01)


async def test_a_lost_request_waits_out_the_last_second_of_its_grace_and_is_settled_when_it_ends(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """Half a second before the grace ends the request may still land: not read, not sent again. Once the
    grace has run out (exactly), it is settled in the same pass."""
    grace = settle_grace(10.0)
    spool, outbox, clock = await lost_request(db, standin, client, grace)
    clock.advance(grace - 0.5)
    assert not await outbox.deliver_pending()
    assert [e.state for e in ledger_entries(db)] == [SENDING]
    clock.advance(0.5)
    assert await outbox.deliver_pending()  # settled: not applied
    await outbox.drain()
    assert [e.state for e in ledger_entries(db)] == [DELIVERED]
    assert used_mm(standin.store, spool) == pytest.approx(3.0, abs=0.01)
