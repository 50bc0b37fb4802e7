"""Model-based test of the ledger + outbox + settlement against an in-process model of Spoolman.

Hypothesis drives random interleavings of: bills (positive and negative, four materials) for trays
with and without spools and for filaments whose tray is not known yet; mappings learned late;
(re)assignments; spools deleted or archived in Spoolman; foreign uses; lost requests, lost answers
and slow answers that land after the timeout but within the settle grace (a simulated clock, the
production grace rule); restarts (a new Outbox on the same SQLite file); delivery passes; and a
person settling doubtful deliveries the way the model knows is true.

At quiescence (faults stop, slow requests have landed, the grace has passed, doubtful deliveries
are settled by the truth, everything drains):
- for every spool Spoolman still has, its used length equals what the ledger says was delivered to
  it plus the foreign uses, to 0.01 mm;
- every entry not delivered shows why: waiting for a tray, waiting for a spool in a tray that has
  none (with the note when its spool was deleted), a net retraction carried to the next bill, or
  rejected with a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from ledger_helpers import PRINTER, Line, new_job, open_db
from ledger_helpers import grams_by_hand as weight_from_length
from ledger_rows import ledger_deliveries, ledger_entries

from server.billing import deliveries, ledger
from server.billing.outbox import Outbox
from server.billing.settlement import (
    CARRY_NOTE,
    DELIVERED,
    DOUBTFUL,
    READY,
    REJECTED,
    SENDING,
    WAITING_SPOOL,
    WAITING_TRAY,
    settle_grace,
)
from server.db import repo
from server.events import EventBus
from server.slots.errors import SlotError
from server.slots.service import SlotService
from server.spoolman import Filament, Spool, SpoolmanNotFound, SpoolmanUnreachable
from server.spoolman.directory import SpoolDirectory

T = TypeVar("T")

MM = 0.01
TIMEOUT = 10.0  # the client's default; the grace comes from the production rule
GRACE = settle_grace(TIMEOUT)
TRAYS = range(6)  # 0-3 start with a spool, 4 and 5 are empty
FILAMENTS = range(3)
MATERIALS = {  # name -> (density g/cm³, diameter mm)
    "PLA": (1.24, 1.75),
    "PETG": (1.27, 1.75),
    "TPU": (1.21, 1.75),
    "PLA 2.85": (1.24, 2.85),
}
FAULTS = ("lost_request", "lost_answer", "slow")


class InlineExecutor(ThreadPoolExecutor):
    """Runs ``asyncio.to_thread`` work at once on the loop's thread: one deterministic interleaving
    per example (hypothesis replays it exactly), and no write left running after a step."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the awaiting task, as a thread would
            future.set_exception(error)
        return future


@dataclass
class ModelSpool:
    id: int
    density: float
    diameter: float
    used_weight: float = 0.0
    last_used: str | None = None
    archived: bool = False
    deleted: bool = False

    def length(self) -> float:
        return self.used_weight / weight_from_length(1.0, diameter_mm=self.diameter, density=self.density)


@dataclass
class ModelSpoolman:
    """Spoolman as the outbox sees it (``SpoolmanUse``): ``used_weight += w`` floored at 0, ``last_used``,
    archived spools, deletion (404), and scripted faults on the next ``use`` calls."""

    delivery_of: Callable[[int], int | None]  # the spool's request in flight (at most one)
    spools: dict[int, ModelSpool] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    slow: list[tuple[int, float, int | None]] = field(default_factory=list)  # (spool, mm, delivery) not landed
    applied: dict[int, bool] = field(default_factory=dict)  # delivery id -> did Spoolman apply it
    foreign: dict[int, float] = field(default_factory=lambda: defaultdict(float))  # spool -> mm used by others
    uses: int = 0

    def add(self, material: str) -> int:
        density, diameter = MATERIALS[material]
        spool_id = len(self.spools) + 1
        self.spools[spool_id] = ModelSpool(spool_id, density, diameter)
        return spool_id

    def _find(self, spool_id: int) -> ModelSpool:
        spool = self.spools.get(spool_id)
        if spool is None or spool.deleted:
            raise SpoolmanNotFound(f"No spool with ID {spool_id} found.", resource="spool", id=spool_id)
        return spool

    def _apply(self, spool: ModelSpool, mm: float) -> None:
        self.uses += 1
        spool.used_weight = max(
            spool.used_weight + weight_from_length(mm, diameter_mm=spool.diameter, density=spool.density), 0.0
        )
        spool.last_used = f"2026-12-04T12:00:{self.uses:06d}Z"

    def _view(self, spool: ModelSpool) -> Spool:
        filament = Filament(id=spool.id, density=spool.density, diameter=spool.diameter)
        return Spool(
            id=spool.id,
            filament=filament,
            used_weight=spool.used_weight,
            last_used=spool.last_used,
            archived=spool.archived,
        )

    async def get_spool(self, spool_id: int) -> Spool:
        return self._view(self._find(spool_id))

    async def use_spool(self, spool_id: int, *, length_mm: float | None = None, weight_g: float | None = None) -> Spool:
        assert length_mm is not None and weight_g is None
        spool = self._find(spool_id)
        delivery = self.delivery_of(spool_id)
        assert delivery is not None, "every use is recorded as sending before it leaves"
        fault = self.faults.pop(0) if self.faults else None
        if fault == "lost_request":
            self.applied[delivery] = False
            raise SpoolmanUnreachable("model: request lost", request_sent=True)
        if fault == "slow":
            # Held up on the way: lands after our timeout, before the grace is over.
            self.slow.append((spool_id, length_mm, delivery))
            self.applied[delivery] = False
            raise SpoolmanUnreachable("model: no answer within the timeout", request_sent=True)
        self._apply(spool, length_mm)
        self.applied[delivery] = True
        if fault == "lost_answer":
            raise SpoolmanUnreachable("model: answer lost", request_sent=True)
        return self._view(spool)

    def land_slow_requests(self) -> None:
        for spool_id, mm, delivery in self.slow:
            spool = self.spools[spool_id]
            if not spool.deleted:
                self._apply(spool, mm)
                if delivery is not None:
                    self.applied[delivery] = True
        self.slow.clear()

    def foreign_use(self, spool_id: int, mm: float) -> None:
        spool = self.spools[spool_id]
        if not spool.deleted:
            self._apply(spool, mm)
            self.foreign[spool_id] += mm


@dataclass
class Job:
    id: int
    mapping: dict[int, int]  # slicer filament -> tray, as known so far
    layer: int = 0


class LedgerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        shm = Path("/dev/shm")
        self.workdir = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else None))
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(InlineExecutor())
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
        self.spoolman = ModelSpoolman(delivery_of=self._delivery_of)
        self.db = open_db(self.workdir)
        self.jobs: list[Job] = []
        self.outbox, self.slots = self._start()

    # --- plumbing -------------------------------------------------------------------------------

    def _clock(self) -> datetime:
        return self.now

    def _delivery_of(self, spool_id: int) -> int | None:
        open_delivery = deliveries.open_delivery(self.db, spool_id)
        return open_delivery.id if open_delivery else None

    def _start(self) -> tuple[Outbox, SlotService]:
        outbox = Outbox(self.db, self.spoolman, settle_grace=GRACE, clock=self._clock, max_batch=3)
        directory = SpoolDirectory(self.spoolman, ttl=0)  # type: ignore[arg-type]  # the model speaks SpoolmanUse
        slots = SlotService(self.db, directory, EventBus(), [PRINTER], outbox=outbox)
        outbox.on_slot_cleared = slots.spool_deleted
        return outbox, slots

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self.quiesce_and_check()
        finally:
            self.loop.close()
            self.db.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- rules ----------------------------------------------------------------------------------

    @initialize(materials=st.lists(st.sampled_from(sorted(MATERIALS)), min_size=4, max_size=4))
    def setup(self, materials: list[str]) -> None:
        for tray, material in enumerate(materials):
            spool_id = self.spoolman.add(material)
            self.run(self.slots.assign(PRINTER, tray, spool_id))
        self.new_job(stated={0: 0, 1: 1})

    @precondition(lambda self: len(self.jobs) < 3)
    @rule(stated=st.dictionaries(st.sampled_from(FILAMENTS), st.sampled_from(TRAYS), max_size=2))
    def new_job(self, stated: dict[int, int]) -> None:
        self.jobs.append(Job(new_job(self.db, key=f"job{len(self.jobs)}"), dict(stated)))

    @rule(
        data=st.data(),
        usage=st.dictionaries(
            st.sampled_from(FILAMENTS),
            # hundredths of mm; net retractions are common (a third here)
            st.one_of(st.integers(-600, -1), st.integers(0, 6000), st.integers(1, 6000)),
            min_size=1,
        ),
        then_deliver=st.booleans(),
    )
    def layer(self, data: st.DataObject, usage: dict[int, int], then_deliver: bool) -> None:
        """A layer of a job is billed (one line per filament it used), and the outbox may run at once."""
        job = data.draw(st.sampled_from(self.jobs))
        job.layer += 1
        lines = [Line(job.layer, filament, hundredths / 100) for filament, hundredths in sorted(usage.items())]
        ledger.record_bills(self.db, job.id, lines, dict(job.mapping))
        if then_deliver:
            self.deliver()

    @rule(
        data=st.data(),
        usage=st.dictionaries(st.sampled_from(FILAMENTS), st.integers(-600, 6000), min_size=1),
        then_deliver=st.booleans(),
    )
    def another_layer(self, data: st.DataObject, usage: dict[int, int], then_deliver: bool) -> None:
        """Printing is what happens most: a second rule doubles its share of the steps."""
        self.layer(data, usage, then_deliver)

    @rule(data=st.data(), filament=st.sampled_from(FILAMENTS), tray=st.sampled_from(TRAYS))
    def learn_mapping(self, data: st.DataObject, filament: int, tray: int) -> None:
        job = data.draw(st.sampled_from(self.jobs))
        if filament in job.mapping:
            return  # a job's tray for a filament is learned once
        job.mapping[filament] = tray
        ledger.on_mapping_learned(self.db, job.id, filament, tray)

    @rule(data=st.data(), tray=st.sampled_from(TRAYS), empty=st.booleans())
    def slot(self, data: st.DataObject, tray: int, empty: bool) -> None:
        """A person puts another spool in a tray (moving it from another tray), or empties the tray."""
        if empty:
            self.run(self.slots.unassign(PRINTER, tray))
            return
        spool_id = data.draw(st.sampled_from(sorted(self.spoolman.spools)))
        try:
            self.run(self.slots.assign(PRINTER, tray, spool_id, move=True))
        except SlotError:
            assert self.spoolman.spools[spool_id].deleted  # Spoolman has no such spool any more

    @rule(
        data=st.data(),
        change=st.sampled_from(("new", "delete", "archive", "foreign use")),
        material=st.sampled_from(sorted(MATERIALS)),
        hundredths=st.integers(1, 20000),
    )
    def in_spoolman(self, data: st.DataObject, change: str, material: str, hundredths: int) -> None:
        """Someone else changes Spoolman: a new spool, a spool deleted or archived, a spool used."""
        if change == "new":
            if len(self.spoolman.spools) < 9:
                self.spoolman.add(material)
            return
        spool = self.spoolman.spools[data.draw(st.sampled_from(sorted(self.spoolman.spools)))]
        if change == "delete":
            spool.deleted = True
        elif change == "archive":
            spool.archived = True
        else:
            self.spoolman.foreign_use(spool.id, hundredths / 100)

    @rule(fault=st.sampled_from(FAULTS), passes=st.integers(1, 3), foreign=st.integers(0, 5000))
    def faulty_delivery(self, fault: str, passes: int, foreign: int) -> None:
        """A request's outcome gets lost; the worker comes again within the grace (the request may still
        be on its way); someone else may use the spool before it is settled."""
        self.spoolman.faults.append(fault)
        for _ in range(passes):
            self.deliver()
        if foreign:
            in_flight = [s for s in self.spoolman.spools if self._delivery_of(s) is not None]
            if in_flight:
                self.spoolman.foreign_use(in_flight[0], foreign / 100)

    @rule()
    def deliver(self) -> None:
        with contextlib.suppress(SpoolmanUnreachable):  # the worker backs off and comes again
            self.run(self.outbox.deliver_pending())

    @rule()
    def time_passes(self) -> None:
        """Past the grace: whatever was held up on the way has landed by then."""
        self.spoolman.land_slow_requests()
        self.now += timedelta(seconds=GRACE + 1)

    @rule()
    def restart(self) -> None:
        """The process stops and starts again on the same file; requests in the air stay in the air."""
        self.db.close()
        self.db = open_db(self.workdir)
        self.outbox, self.slots = self._start()

    @rule(settles_all=st.booleans())
    def person(self, settles_all: bool) -> None:
        """A person settles the doubtful deliveries; or everything comes to rest and is checked."""
        if settles_all:
            self.quiesce_and_check()
        else:
            self.settle_doubtful()

    # --- quiescence -----------------------------------------------------------------------------

    def settle_doubtful(self) -> int:
        doubtful = {e.delivery_id for e in ledger_entries(self.db, states=[DOUBTFUL])}
        for delivery_id in doubtful:
            assert delivery_id is not None
            deliveries.resolve_doubtful(self.db, delivery_id, applied=self.spoolman.applied.get(delivery_id, False))
        return len(doubtful)

    def quiesce_and_check(self) -> None:
        self.spoolman.faults.clear()
        self.time_passes()
        for _ in range(20):
            self.drain()
            if not self.settle_doubtful() and not ledger_entries(self.db, states=[SENDING]):
                break
        else:
            raise AssertionError("the ledger did not come to rest")
        self.check()

    def drain(self) -> None:
        """Like ``Outbox.drain``, but a worker that never comes to rest (bills bouncing) fails the test."""
        for _ in range(50):
            if not self.run(self.outbox.deliver_pending()):
                return
        raise AssertionError("the outbox keeps finding work: bills bounce between states")

    def check(self) -> None:
        entries = ledger_entries(self.db)
        for entry in entries:  # what the run exercised (pytest --hypothesis-show-statistics)
            event(f"entry {entry.state}" + (" with a note" if entry.error else ""))
        for delivery in ledger_deliveries(self.db):
            event(f"delivery {delivery.state}")
        delivered: dict[int, float] = defaultdict(float)
        for entry in entries:
            if entry.state == DELIVERED:
                assert entry.spool_id is not None
                delivered[entry.spool_id] += entry.mm
            elif entry.state == WAITING_TRAY:
                job = next(j for j in self.jobs if j.id == entry.job_id)
                assert entry.tray is None and entry.filament_index not in job.mapping
            elif entry.state == WAITING_SPOOL:
                assert entry.tray is not None and entry.spool_id is None
                # Never stranded: a bill waits for a spool only while its tray has none.
                assert repo.get_assignment(self.db, entry.printer, entry.tray) is None, entry
            elif entry.state == READY:
                assert entry.error == CARRY_NOTE, entry  # the only reason a queued bill stays queued
            else:
                # Rejected is for a bill with no tray to wait on; every bill here has one or waits for it.
                assert entry.state == REJECTED and entry.error and entry.tray is None, entry
            if entry.state == READY:
                assert entry.spool_id is not None and not self.spoolman.spools[entry.spool_id].deleted, entry
        for spool in self.spoolman.spools.values():
            if spool.deleted:
                continue
            expected = delivered[spool.id] + self.spoolman.foreign[spool.id]
            assert math.isclose(spool.length(), expected, abs_tol=MM), (spool, delivered[spool.id])
        held: dict[int, float] = defaultdict(float)
        for entry in entries:
            if entry.state == READY and entry.spool_id is not None:
                held[entry.spool_id] += entry.mm
        for spool_id, mm in held.items():
            spool = self.spoolman.spools[spool_id]
            # Only a net retraction the spool cannot absorb stays queued (Spoolman would floor it).
            assert spool.used_weight + weight_from_length(mm, diameter_mm=spool.diameter, density=spool.density) < 0


LedgerModel.TestCase.settings = settings(
    max_examples=35,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_ledger_model = LedgerModel.TestCase
