"""Issue 9 item 5: a spool's negative net (retractions) is carried into its next positive bill when Spoolman
would floor it at 0, so what Spoolman adds equals the ledger to 0.01 mm; one it can absorb goes as is."""

from __future__ import annotations

import pytest
from ledger_helpers import FaultyClient, Line, assign, make_outbox, new_job, seed_spools, used_mm
from ledger_rows import ledger_entries

from server.billing import ledger
from server.billing.settlement import CARRY_NOTE, DELIVERED, READY, carry_forward
from server.db import Database
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import SpoolmanClient

MM = 0.01


def bill(db: Database, job: int, layer: int, mm: float) -> None:
    ledger.record_bills(db, job, [Line(layer, 0, mm)], {0: 0})


def test_the_rule() -> None:
    assert carry_forward(0.0, -0.01)  # a fresh spool cannot go below zero
    assert carry_forward(0.005, -0.01)
    assert not carry_forward(0.01, -0.01)  # absorbed exactly
    assert not carry_forward(5.0, -0.01)
    assert not carry_forward(0.0, 0.01)
    assert not carry_forward(0.0, 0.0)


async def test_a_fresh_spools_prelude_retraction_joins_the_first_layer(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    (spool,) = seed_spools(standin.store, 1)
    assign(db, 0, spool)
    job = new_job(db)
    bill(db, job, 0, -3.8)  # the P2S prelude
    faulty = FaultyClient(client)
    outbox = make_outbox(db, faulty)
    assert not await outbox.deliver_pending()  # held: nothing sent, and no busy loop
    assert not await outbox.deliver_pending()
    (held,) = ledger_entries(db)
    assert (held.state, held.error) == (READY, CARRY_NOTE)
    assert faulty.uses == 0

    bill(db, job, 1, 50.0)
    await outbox.drain()
    assert [e.state for e in ledger_entries(db)] == [DELIVERED, DELIVERED]
    assert faulty.uses == 1
    assert used_mm(standin.store, spool) == pytest.approx(46.2, abs=MM)


async def test_a_retraction_the_spool_can_absorb_is_sent_as_is(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    (spool,) = seed_spools(standin.store, 1)
    standin.store.use_spool(spool, use_length=100.0)
    assign(db, 0, spool)
    bill(db, new_job(db), 1, -3.0)
    await make_outbox(db, client).drain()
    (entry,) = ledger_entries(db)
    assert (entry.state, entry.error) == (DELIVERED, None)
    assert used_mm(standin.store, spool) == pytest.approx(97.0, abs=MM)


async def test_held_retractions_beyond_one_batch_still_meet_the_next_bill(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    (spool,) = seed_spools(standin.store, 1)
    assign(db, 0, spool)
    job = new_job(db)
    for layer in range(3):
        bill(db, job, layer, -1.0)
    bill(db, job, 3, 5.0)
    await make_outbox(db, client, max_batch=2).drain()
    assert {e.state for e in ledger_entries(db)} == {DELIVERED}
    assert used_mm(standin.store, spool) == pytest.approx(2.0, abs=MM)
