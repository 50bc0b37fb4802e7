"""Exactly once, by property: any interleaving of bills, outages, lost answers, crashes and worker
restarts ends with Spoolman's used length per spool equal to the ledger's sum, nothing lost, nothing twice.

Each example runs the real outbox against the stand-in over HTTP with a real SQLite file.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_helpers import (
    PRINTER,
    Crash,
    FaultyClient,
    Line,
    assign,
    make_outbox,
    new_job,
    open_db,
    quick_client,
    seed_spools,
)
from ledger_rows import ledger_entries
from sqlmodel import col, select

from server.billing import ledger
from server.billing.settlement import DELIVERED, WAITING_SPOOL
from server.db import Database, SpoolDelivery
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore
from server.spoolman import SpoolmanClient, SpoolmanUnreachable

LATE_TRAY = 3  # no spool until an "assign" step (or the end) puts one there
FAULTS = ("lost_answer", "lost_request", "crash_after", "crash_before")


class CountingStore(SpoolmanStore):
    """Records every ``use`` Spoolman really applied."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[tuple[int, float]] = []

    def use_spool(self, spool_id: int, *, use_weight: float | None = None, use_length: float | None = None) -> Any:
        item = super().use_spool(spool_id, use_weight=use_weight, use_length=use_length)
        self.applied.append((spool_id, use_length or 0.0))
        return item


steps = st.one_of(
    st.tuples(st.just("bill"), st.integers(0, LATE_TRAY), st.integers(1, 5000)),  # tray, hundredths of mm
    st.tuples(st.just("deliver")),
    st.tuples(st.just("outage")),
    st.tuples(st.just("restore")),
    st.tuples(st.just("fault"), st.sampled_from(FAULTS)),
    st.tuples(st.just("restart")),
    st.tuples(st.just("assign")),
)


class Scenario:
    def __init__(self, db: Database, standin: SpoolmanStandin, client: SpoolmanClient, spools: list[int]) -> None:
        self.db = db
        self.standin = standin
        self.faulty = FaultyClient(client)
        self.spools = spools
        self.outbox = make_outbox(db, self.faulty)
        self.job = new_job(db)
        self.layer = 0

    async def step(self, kind: str, *args: Any) -> None:
        if kind == "bill":
            tray, hundredths = args
            self.layer += 1
            line = Line(self.layer, tray, hundredths / 100)
            await asyncio.to_thread(ledger.record_bills, self.db, self.job, [line], {t: t for t in range(4)})
        elif kind == "deliver":
            await self.deliver_once()
        elif kind == "outage":
            await self.standin.stop()
        elif kind == "restore":
            await self.standin.start()
        elif kind == "fault":
            self.faulty.faults.append(args[0])
        elif kind == "restart":
            self.outbox = make_outbox(self.db, self.faulty)
        elif kind == "assign":
            await self.assign_late_tray()

    async def deliver_once(self) -> None:
        try:
            await self.outbox.deliver_pending()
        except SpoolmanUnreachable:
            pass  # the worker would back off and come again
        except Crash:
            self.outbox = make_outbox(self.db, self.faulty)  # the process died; a new one starts

    async def assign_late_tray(self) -> None:
        if not await asyncio.to_thread(ledger_entries, self.db, states=[WAITING_SPOOL]):
            return
        assign(self.db, LATE_TRAY, self.spools[LATE_TRAY])
        ledger.on_assignment(self.db, PRINTER, LATE_TRAY, self.spools[LATE_TRAY])

    async def finish(self) -> None:
        """Spoolman comes back, faults stop, the late tray gets its spool: everything must drain."""
        await self.standin.start()
        self.faulty.faults.clear()
        await self.assign_late_tray()
        for _ in range(3):  # a crash or lost answer queued earlier may still fire once
            await self.deliver_once()
        await self.outbox.drain()


async def run_scenario(workdir: Path, plan: list[tuple[Any, ...]]) -> list[tuple[str, str | None]]:
    """Runs the plan, checks the totals; returns each delivery's (state, note) for further checks."""
    store = CountingStore()
    spools = seed_spools(store, LATE_TRAY + 1)
    db = open_db(workdir)
    for tray in range(LATE_TRAY):
        assign(db, tray, spools[tray])
    try:
        async with SpoolmanStandin(store) as standin, quick_client(standin.url) as client:
            scenario = Scenario(db, standin, client, spools)
            for step in plan:
                await scenario.step(*step)
            await scenario.finish()
    finally:
        db.close()

    db = open_db(workdir)
    entries = ledger_entries(db)
    assert {e.state for e in entries} <= {DELIVERED}, "every bill delivered, none doubtful or stuck"
    billed: dict[int, float] = defaultdict(float)
    for entry in entries:
        assert entry.spool_id is not None
        billed[entry.spool_id] += entry.mm
    applied: dict[int, float] = defaultdict(float)
    for spool_id, mm in store.applied:
        applied[spool_id] += mm
    for spool_id in spools:
        assert applied[spool_id] == pytest.approx(billed[spool_id], abs=0.01), f"spool {spool_id}"
        assert store.get_spool(spool_id)["used_length"] == pytest.approx(billed[spool_id], abs=0.01)
    # Each delivery reached Spoolman exactly once: as many applied uses as delivered requests.
    deliveries = {e.delivery_id for e in entries}
    assert len(store.applied) == len(deliveries)
    with db.session() as session:
        return [(d.state, d.note) for d in session.exec(select(SpoolDelivery).order_by(col(SpoolDelivery.id)))]


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(steps, min_size=1, max_size=40))
def test_any_interleaving_bills_each_spool_exactly_once(plan: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        asyncio.run(run_scenario(Path(workdir), plan))


@pytest.mark.slow
def test_a_busy_fixed_scenario() -> None:
    """A hand-written run through every fault, so the property is never satisfied vacuously."""
    plan: list[tuple[Any, ...]] = [("bill", 0, 1234), ("bill", 3, 50), ("deliver",)]
    for fault in FAULTS:
        plan += [("fault", fault), ("bill", 1, 777), ("bill", 1, 1), ("deliver",), ("deliver",)]
    plan += [("outage",), ("bill", 2, 999), ("deliver",), ("restart",), ("restore",), ("assign",), ("deliver",)]
    with tempfile.TemporaryDirectory() as workdir:
        deliveries = asyncio.run(run_scenario(Path(workdir), plan))
    states = [state for state, _note in deliveries]
    assert {"not_applied", "delivered"} <= set(states)  # a lost request found not applied, then re-sent
    settled_applied = [note for state, note in deliveries if state == "delivered" and note]
    assert any("moved by" in note for note in settled_applied)  # a lost answer found applied
