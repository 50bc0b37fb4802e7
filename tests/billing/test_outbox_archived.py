"""Issue 9 item 8 (outbox half): an archived spool keeps being billed (the filament really left), and
each such delivery says so; the log says it once per spool."""

from __future__ import annotations

import logging

import pytest
from ledger_helpers import Line, assign, make_outbox, new_job, seed_spools, used_mm
from ledger_rows import ledger_deliveries, ledger_entries

from server.billing import ledger
from server.billing.settlement import DELIVERED
from server.db import Database
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import SpoolmanClient


async def test_archived_spool_is_billed_and_flagged(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    archived, plain = seed_spools(standin.store, 2)
    standin.store.update_spool(archived, {"archived": True})
    assign(db, 0, archived)
    assign(db, 1, plain)
    job = new_job(db)
    outbox = make_outbox(db, client)
    with caplog.at_level(logging.INFO, logger="server.billing.outbox"):
        for layer in (1, 2):
            ledger.record_bills(db, job, [Line(layer, 0, 4.0), Line(layer, 1, 1.0)], {0: 0, 1: 1})
            await outbox.drain()
    assert {e.state for e in ledger_entries(db)} == {DELIVERED}
    assert used_mm(standin.store, archived) == pytest.approx(8.0, abs=0.01)
    notes = {d.spool_id: d.note for d in ledger_deliveries(db)}
    assert notes[archived] == f"spool #{archived} is archived in Spoolman"
    assert notes[plain] is None
    said = [r for r in caplog.records if "archived" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
