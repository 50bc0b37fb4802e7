"""Fault campaign, one command: ``python -m bench.faults --runs 50 --seed 1``.

Layerwise runs as its own process (``server.sim.process``); the virtual printer (P1S, TLS MQTT and
FTPS), the Spoolman stand-in and a lossy proxy between Layerwise and the stand-in
(``bench.faults.proxy``) run in this one. Each run prints one real sliced file (or the synthetic
demo file) while a seeded RNG schedules 2-4 faults at random moments of the print:

* ``kill``: SIGKILL Layerwise, restart it on the same data directory after a random delay;
* ``drop``: the printer cuts every MQTT/FTPS connection (clients reconnect);
* ``broker``: the printer's MQTT broker goes away for a while (reports published meanwhile are lost);
* ``spoolman``: the stand-in stops ("connection refused") for a while;
* ``delete``: the spool of one of the print's trays is deleted in Spoolman; a while later a new
  spool is assigned to that tray through Layerwise's API;
* ``reassign``: a new spool is assigned to one of the print's trays while its layers are billed
  (half the time the slot is emptied first, and the new spool assigned after a while);
* ``foreign``: someone else calls ``use`` on the spool of one of the print's trays (50-500 mm);
* ``lost_answer`` / ``lost_request``: the proxy loses the answer to, or the request of, the next
  ``use`` (the client cannot tell which);
* ``slow``: the proxy holds the next ``use`` past the client's timeout, then lets it through;
* ``late_mapping``: the print is a LAN print (no ``project_file`` echo) whose printer states its
  slot ``mapping`` only at layer 1-5.

Some runs end with a cancel at a random layer and a random point inside it. After each run every
fault is healed and the outbox drains; then the ledger (read-only from the SQLite file) is
compared layer by layer with the analysis (lost: billed nowhere; waiting: undelivered with a visible
reason; billed twice), each spool's ``used_length`` in the stand-in with what the ledger delivered
to it plus the foreign uses, and each tray's gain with the mm the analysis owes it. Exit status 1
when any layer was lost, waits or was billed twice, a spool differs, or a run did not drain. Each
run's schedule depends only on ``--seed``, ``--kinds`` and the run number, so ``--run N`` repeats
one run (the moments are wall-clock, so a repeat is close, not identical).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.faults.accounting import (
    PENDING_STATES,
    WAITING_STATES,
    Bill,
    LayerCounts,
    count_layers,
    owed_layers,
    owed_per_tray,
    per_tray,
    spool_differences,
    spoolman_vs_ledger,
)
from bench.faults.harness import Rig, ams_mapping, new_spool, rig
from bench.faults.proxy import ProxyFault
from server.analysis import PrintAnalysis, analyze_file
from server.logs import setup_logging
from server.sim.demo_print import demo_3mf
from server.sim.printer.printer import MODES

PRINT_FILES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "print-files"
REAL_FILES = ("testqube-a1-4colour-bs2.04.gcode.3mf", "p1s-2colour-bs2.05.gcode.3mf", "xmas-pud-x1c-4colour.gcode.3mf")
SYNTHETIC = "bench-demo-40.gcode.3mf"
# How often each kind is drawn. Lost and slow requests are rarer: each costs its spool the outbox's
# settle grace (15 s) before anything more is sent to it, which would otherwise double the campaign.
FAULT_WEIGHTS = {
    "kill": 1.0, "drop": 1.0, "broker": 1.0, "spoolman": 1.0,
    "delete": 0.7, "reassign": 0.7, "foreign": 0.7,
    "lost_answer": 0.25, "lost_request": 0.25, "slow": 0.25,
    "late_mapping": 0.5,
}  # fmt: skip
FAULT_KINDS = tuple(FAULT_WEIGHTS)
TRAY_KINDS = ("delete", "reassign", "foreign")
PROXY_KINDS = tuple(kind.value for kind in ProxyFault)
SPOOLMAN_TIMEOUT = 3.0  # Layerwise's [spoolman] timeout in the campaign: a slow request is held past it
WAITING_GRACE = 5.0  # seconds a drained run's waiting bills get to be released before they are judged


@dataclass(frozen=True)
class PrintFile:
    name: str
    analysis: PrintAnalysis
    mapping: list[int]

    @property
    def remote_path(self) -> str:
        return f"/cache/{self.name}"


@dataclass(frozen=True)
class Fault:
    kind: str
    at: float  # seconds after the print started
    hold: float  # seconds it lasts (kill: until the restart; delete: until a new spool; slow: past the timeout)
    tray: int = 0  # delete, reassign, foreign: which of the print's trays
    mm: float = 0.0  # foreign: how much someone else uses
    layer: int = 0  # late_mapping: the layer that states the mapping
    emptied: bool = False  # reassign: the slot is emptied first, the new spool assigned ``hold`` s later

    def __str__(self) -> str:
        if self.kind == "late_mapping":
            return f"late_mapping@L{self.layer}"
        if self.kind == "foreign":
            return f"foreign@{self.at:.1f}s/t{self.tray}/{self.mm:.0f}mm"
        if self.kind == "reassign" and self.emptied:
            return f"reassign@{self.at:.1f}s/{self.hold:.1f}s/t{self.tray}/emptied"
        if self.kind == "reassign":
            return f"reassign@{self.at:.1f}s/t{self.tray}"
        if self.kind == "delete":
            return f"delete@{self.at:.1f}s/{self.hold:.1f}s/t{self.tray}"
        return f"{self.kind}@{self.at:.1f}s/{self.hold:.1f}s"


@dataclass(frozen=True)
class Plan:
    run: int
    file: PrintFile
    cancel: tuple[int, float] | None  # (layer K, fraction of layer K printed) or None: prints to the end
    faults: tuple[Fault, ...]

    @property
    def late_mapping(self) -> Fault | None:
        return next((fault for fault in self.faults if fault.kind == "late_mapping"), None)


@dataclass
class Outcome:
    plan: Plan
    counts: LayerCounts
    spool_diff: dict[int, float]  # spool -> used_length in Spoolman minus (ledger delivered + foreign), when off
    drained: bool
    seconds: float
    drain_seconds: float
    cancelled_at: tuple[int, int] | None = None  # (layer, mc_percent) the printer stopped at
    jobs: list[tuple[int, str, str | None]] = field(default_factory=list)
    pushalls: int = 0  # pushall requests the printer answered during the run (for a run that did not drain)
    owed_trays: dict[int, float] = field(default_factory=dict)  # mm the analysis owes each tray for this run
    acted: list[str] = field(default_factory=list)  # proxy faults that acted: "kind: request line"
    floored: dict[int, float] = field(default_factory=dict)  # spool -> mm of uses Spoolman floored at 0 (cumulative)
    problems: list[str] = field(default_factory=list)  # faults that could not be applied as planned

    @property
    def ok(self) -> bool:
        counts = self.counts
        return (self.drained and not counts.lost and not counts.waiting and not counts.twice
                and not self.spool_diff and not self.problems)


def load_files() -> list[PrintFile]:
    sources: list[tuple[str, bytes]] = [(name, (PRINT_FILES / name).read_bytes()) for name in REAL_FILES]
    sources.append((SYNTHETIC, demo_3mf(layers=40)))
    files = []
    for name, data in sources:
        with tempfile.NamedTemporaryFile(suffix=".gcode.3mf") as tmp:
            tmp.write(data)
            tmp.flush()
            analysis = analyze_file(tmp.name, 1)
        filaments = [f for f, usage in sorted(analysis.filaments.items()) if usage.mm > 0]
        files.append(PrintFile(name, analysis, ams_mapping(filaments)))
    return files


def plan_run(seed: int, run: int, files: list[PrintFile], layer_seconds: float,
             kinds: tuple[str, ...] = FAULT_KINDS) -> Plan:
    rng = random.Random(f"{seed}:{run}")
    file = rng.choice(files)
    layers = file.analysis.layer_count
    cancel = (rng.randint(1, layers), rng.random()) if rng.random() < 0.3 else None
    duration = ((cancel[0] if cancel else layers) + 1) * layer_seconds
    trays = sorted({tray for tray in file.mapping if tray >= 0})
    weights = [FAULT_WEIGHTS[kind] for kind in kinds]
    faults: list[Fault] = []
    for _ in range(rng.randint(2, 4)):
        # Every fault draws the same values whatever its kind, so one kind's details never shift
        # the rest of a schedule.
        kind = rng.choices(kinds, weights)[0]
        at, hold = rng.uniform(0, duration), rng.uniform(0.1, 1.5)
        tray, mm, layer = rng.choice(trays), round(rng.uniform(50, 500), 2), rng.randint(1, 5)
        emptied = rng.random() < 0.5
        if kind == "late_mapping" and any(f.kind == kind for f in faults):
            continue  # a print states its mapping once
        faults.append(Fault(kind, at, hold, tray, mm, layer, emptied and kind == "reassign"))
    return Plan(run, file, cancel, tuple(sorted(faults, key=lambda fault: fault.at)))


class FaultInjector:
    """Applies faults; one lock per resource, so two faults on one resource take turns."""

    def __init__(self, bench: Rig, spoolman_timeout: float = SPOOLMAN_TIMEOUT) -> None:
        self.bench = bench
        self.spoolman_timeout = spoolman_timeout
        self._locks = {**bench.outages, "spoolman": asyncio.Lock()}
        self._trays: dict[int, asyncio.Lock] = {}

    async def apply(self, fault: Fault, started: float, ended: asyncio.Event,
                    known: asyncio.Event | None = None) -> str | None:
        """Apply one fault at its moment; a message when it could not be applied as planned.

        ``known``, when given, holds every fault until Layerwise has recorded the print (see run_one).
        """
        if fault.kind == "late_mapping":
            return None  # the printer does it (drive_print)
        if known is not None:
            await known.wait()
        await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
        bench = self.bench
        if fault.kind == "drop":
            async with self._locks["broker"]:
                await bench.printer.drop_connections()
            return None
        if fault.kind in TRAY_KINDS:
            async with self._trays.setdefault(fault.tray, asyncio.Lock()):
                return await self._tray_fault(fault)
        if fault.kind in PROXY_KINDS:
            return await self._proxy_fault(fault, ended)
        async with self._locks[fault.kind]:
            if fault.kind == "kill":
                bench.tracking.clear()
                await bench.layerwise.kill()
                await asyncio.sleep(fault.hold)
                await bench.layerwise.start()
                await bench.wait_online()
                bench.tracking.set()
            elif fault.kind == "broker":
                await bench.printer.stop_broker()
                await asyncio.sleep(fault.hold)
                await bench.printer.start_broker()
            elif fault.kind == "spoolman":
                await bench.spoolman_down()
                await asyncio.sleep(fault.hold)
                await bench.spoolman_up()
        return None

    async def _tray_fault(self, fault: Fault) -> str | None:
        bench, tray = self.bench, fault.tray
        spool = bench.spool_for_tray[tray]
        if fault.kind == "foreign":
            bench.store.foreign_use(spool, fault.mm)
            return None
        try:
            if fault.kind == "delete":
                bench.store.delete_spool(spool)
                await asyncio.sleep(fault.hold)
            elif fault.emptied:  # bills meanwhile wait for a spool in the tray
                await bench.unassign(tray)
                await asyncio.sleep(fault.hold)
            await bench.assign(tray, new_spool(bench.store))
        except TimeoutError:
            return f"{fault}: Layerwise did not take the slot change"
        return None

    async def _proxy_fault(self, fault: Fault, ended: asyncio.Event) -> str | None:
        proxy = self.bench.proxy
        if proxy is None:
            return f"{fault}: no proxy"
        hold = self.spoolman_timeout + fault.hold if fault.kind == "slow" else 0.0
        done = proxy.arm(ProxyFault(fault.kind), hold=hold)
        # It acts on the next `use`; once the print has ended, the last bills get a moment to go.
        print_ended = asyncio.ensure_future(ended.wait())
        try:
            await asyncio.wait({done, print_ended}, return_when=asyncio.FIRST_COMPLETED)
            if not done.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(done), timeout=2.0)
        finally:
            print_ended.cancel()
        if not done.done():
            proxy.disarm(done)
        return None


async def drive_print(bench: Rig, plan: Plan, layer_seconds: float,
                      recorded: Callable[[], Awaitable[None]] | None = None) -> tuple[int, int] | None:
    """Print ``plan.file`` half a layer at a time; returns (layer, mc_percent) when it cancels.

    On a printer that refuses requests the start and the end must reach a Layerwise that watches: such a
    printer never repeats them in a full state. Its end (from the layer before a cancel, whose layer
    number the cancel's bill needs) runs under :meth:`Rig.watched_end` until ``recorded`` returns (Layerwise
    has closed the job), so no kill or outage takes it away.
    """
    printer, half = bench.printer, layer_seconds / 2
    late = plan.late_mapping
    if bench.refusing:
        await bench.wait_watched()
    # A late mapping comes with a LAN print: no project_file echo tells the mapping either.
    await printer.start_print(plan.file.remote_path, ams_mapping=plan.file.mapping, announce=late is None,
                              task_id=str(100_000 + plan.run), state_mapping_at=late.layer if late else None)
    total = plan.file.analysis.layer_count
    async with contextlib.AsyncExitStack() as stack:
        while True:
            await asyncio.sleep(half)
            if plan.cancel is not None and printer.layer == plan.cancel[0]:
                await printer.progress_within_layer(plan.cancel[1])
                stopped = (printer.layer, int(printer.state["print"]["mc_percent"]))
                await printer.cancel()
                await asyncio.sleep(half)
                await printer.clear_print_error()
                break
            await printer.progress_within_layer(0.5)
            await asyncio.sleep(half)
            ending = printer.layer >= total or (plan.cancel is not None and printer.layer + 1 == plan.cancel[0])
            if ending and bench.refusing:
                await stack.enter_async_context(bench.watched_end())
            if printer.layer >= total:
                await printer.finish()
                stopped = None
                break
            await printer.advance(1)
        if bench.refusing and recorded is not None:
            await recorded()
    return stopped


async def drained(bench: Rig, after_job: int) -> bool:
    jobs = bench.read_db(
        "SELECT final, json_extract(checkpoint_json, '$.billing.settled')"
        " OR json_extract(checkpoint_json, '$.untracked_reason') IS NOT NULL FROM jobs WHERE id > ?",
        (after_job,),
    )
    # Closed, and billed to the end (settled) or given up on with a reason: a job can close before its
    # file is read (it ended while Layerwise was down, or while a fetch is retried) and be billed later.
    if not jobs or not all(final and done for final, done in jobs):
        return False
    # Nothing left for the outbox to do. Bills waiting with a reason (a tray, a spool, a rejection)
    # may stay: the accounting counts them apart from lost ones.
    pending = bench.read_db(f"SELECT count(*) FROM ledger_entries WHERE state IN {tuple(PENDING_STATES)!r}")[0][0]
    return not pending


def _waiting(bench: Rig, after_job: int) -> int:
    query = f"SELECT count(*) FROM ledger_entries WHERE job_id > ? AND state IN {tuple(WAITING_STATES)!r}"
    return int(bench.read_db(query, (after_job,))[0][0])


async def wait_drained(bench: Rig, after_job: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    waiting_since: float | None = None
    while time.monotonic() < deadline:
        done = False
        with contextlib.suppress(Exception):  # Layerwise may still be starting
            done = await drained(bench, after_job)
        if done:
            # Bills still waiting get a moment to be released (an assignment or a mapping just taken in).
            if not _waiting(bench, after_job):
                return True
            waiting_since = waiting_since or time.monotonic()
            if time.monotonic() - waiting_since > WAITING_GRACE:
                return True
        else:
            waiting_since = None
        await asyncio.sleep(0.1)
    return False


async def _note_job(bench: Rig, after_job: int, known: asyncio.Event) -> None:
    """Set ``known`` once Layerwise has recorded a job newer than ``after_job``."""
    while True:
        with contextlib.suppress(sqlite3.Error):
            if bench.read_db("SELECT count(*) FROM jobs WHERE id > ?", (after_job,))[0][0]:
                known.set()
                return
        await asyncio.sleep(0.02)


async def _job_closed(bench: Rig, after_job: int, timeout: float = 60.0) -> None:
    """Until Layerwise has closed its jobs newer than ``after_job`` (it has seen the print's end)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(sqlite3.Error):
                    rows = bench.read_db("SELECT final FROM jobs WHERE id > ?", (after_job,))
                    if rows and all(final for (final,) in rows):
                        return
                await asyncio.sleep(0.02)


async def run_one(bench: Rig, injector: FaultInjector, plan: Plan, layer_seconds: float,
                  drain_timeout: float) -> Outcome:
    started = time.monotonic()
    last_job = bench.read_db("SELECT coalesce(max(id), 0) FROM jobs")[0][0]
    requests = len(bench.printer.requests)
    acted = len(bench.proxy.fired) if bench.proxy else 0
    ended = asyncio.Event()
    # A printer that refuses requests names the job's file only as the print starts: a start Layerwise
    # misses (killed, or its link down) cannot be billed later, which is the documented limit of those
    # modes, not a fault to measure. There, faults wait until Layerwise has recorded the job.
    known = asyncio.Event() if bench.refusing else None
    faults = [asyncio.create_task(injector.apply(fault, started, ended, known)) for fault in plan.faults]
    watch = asyncio.create_task(_note_job(bench, last_job, known)) if known is not None else None
    try:
        cancelled_at = await drive_print(bench, plan, layer_seconds, lambda: _job_closed(bench, last_job))
    finally:
        if watch is not None:
            watch.cancel()
        if known is not None:
            known.set()  # a job never recorded must not leave its faults waiting
        ended.set()
        problems = [p for p in await asyncio.gather(*faults) if p]  # every fault heals before the run is judged
    if not bench.layerwise.running:
        await bench.layerwise.start()
    printed = time.monotonic()
    ok = await wait_drained(bench, last_job, drain_timeout)
    rows = bench.read_db(
        "SELECT layer, filament_index, mm, spool_id, state, error FROM ledger_entries WHERE job_id > ?", (last_job,)
    )
    bills = [Bill(*row) for row in rows]
    owed = owed_layers(plan.file.analysis, cancelled_at)
    # Delivery check, cumulative over the campaign (a run that did not drain delivers into the next one):
    # each spool's used_length in Spoolman against what the ledger says was delivered to it plus what
    # others used of it.
    ledger = dict(bench.read_db(
        "SELECT spool_id, sum(mm) FROM ledger_entries WHERE state IN ('delivered', 'doubtful') GROUP BY spool_id"
    ))
    jobs = bench.read_db("SELECT id, state, reason FROM jobs WHERE id > ?", (last_job,))
    pushalls = sum(1 for request in bench.printer.requests[requests:] if "pushing" in request)
    fired = [f"{kind}: {line}" for kind, line in bench.proxy.fired[acted:]] if bench.proxy else []
    return Outcome(plan, count_layers(owed, bills), spoolman_vs_ledger(bench.store.used_length(), ledger,
                                                                       bench.store.foreign),
                   ok, time.monotonic() - started, time.monotonic() - printed, cancelled_at, jobs, pushalls,
                   owed_per_tray(owed, plan.file.mapping), fired, dict(bench.store.floored), problems)


def describe(outcome: Outcome) -> str:
    plan, counts = outcome.plan, outcome.counts
    end = f"cancel L{outcome.cancelled_at[0]} @{outcome.cancelled_at[1]}%" if outcome.cancelled_at else "finish"
    line = (f"run {plan.run:3d} {plan.file.name[:34]:<34} {plan.file.analysis.layer_count:4d} layers {end:<17} "
            f"faults {' '.join(map(str, plan.faults)):<62} billed {counts.billed:4d} lost {counts.lost} "
            f"waiting {counts.waiting} twice {counts.twice} {outcome.seconds:5.1f}s "
            f"(drain {outcome.drain_seconds:4.1f}s)")
    if outcome.acted:
        line += f"\n    proxy: {'; '.join(outcome.acted)}"
    if not outcome.ok:
        waiting = {reason: round(mm, 2) for reason, mm in counts.waiting_mm.items()}
        line += (f"\n    FAIL: drained={outcome.drained} lost layers={counts.lost_keys}"
                 f" waiting layers={counts.waiting_keys} (mm by reason: {waiting}) twice={counts.twice_keys}"
                 f"\n          Spoolman - (ledger + foreign) (mm)={_rounded(outcome.spool_diff)}"
                 f" floored by Spoolman (mm)={_rounded(outcome.floored)} jobs={outcome.jobs}"
                 f" pushalls={outcome.pushalls}")
        if counts.other_states:
            line += f" bills in states the judge does not know={counts.other_states}"
        for problem in outcome.problems:
            line += f"\n    {problem}"
    return line


def _rounded(values: dict[int, float]) -> dict[int, float]:
    return {key: round(value, 2) for key, value in values.items()}


def summary(outcomes: list[Outcome], bench: Rig, seconds: float, seed: int, kinds: tuple[str, ...]) -> str:
    owed: dict[int, float] = {}
    for outcome in outcomes:
        for tray, mm in outcome.owed_trays.items():
            owed[tray] = owed.get(tray, 0.0) + mm
    store = bench.store
    # Each tray's spools together (a deleted one as it was when deleted), less what others used of them.
    gained = per_tray({spool: mm - store.foreign.get(spool, 0.0) for spool, mm in store.used_length().items()
                       if spool in bench.tray_of_spool}, bench.tray_of_spool)
    totals = " ".join(f"t{tray} {gained.get(tray, 0.0):.2f}/{mm:.2f}" for tray, mm in sorted(owed.items()))
    last = outcomes[-1] if outcomes else None
    waiting_mm: dict[str, float] = {}
    for outcome in outcomes:
        for reason, mm in outcome.counts.waiting_mm.items():
            waiting_mm[reason] = waiting_mm.get(reason, 0.0) + mm
    acted = {kind: sum(1 for o in outcomes for a in o.acted if a.startswith(kind + ":")) for kind in PROXY_KINDS}

    def injected(kind: str) -> str:
        count = sum(1 for o in outcomes for f in o.plan.faults if f.kind == kind)
        return f"{count} ({acted[kind]} acted on a use)" if kind in PROXY_KINDS else str(count)

    rows = [
        ("runs", len(outcomes)),
        ("  finished / cancelled", f"{sum(1 for o in outcomes if not o.cancelled_at)} / "
                                   f"{sum(1 for o in outcomes if o.cancelled_at)}"),
        ("faults injected", sum(len(o.plan.faults) for o in outcomes)),
        *((f"  {kind}", injected(kind)) for kind in kinds),
        ("layers billed", sum(o.counts.billed for o in outcomes)),
        ("layers lost (billed nowhere, no reason)", sum(o.counts.lost for o in outcomes)),
        ("layers waiting (undelivered, reason shown)", sum(o.counts.waiting for o in outcomes)),
        *((f"  mm {reason}", f"{mm:.2f}") for reason, mm in sorted(waiting_mm.items())),
        ("layers billed twice", sum(o.counts.twice for o in outcomes)),
        ("Spoolman vs ledger + foreign, off > 0.01 mm", f"{sum(1 for o in outcomes if o.spool_diff)} runs" + (
            f", at the end {_rounded(last.spool_diff)}" if last and last.spool_diff else "")),
        ("  uses Spoolman floored at 0 (mm)", _rounded(store.floored) or "none"),
        ("foreign uses (mm)", f"{sum(store.foreign.values()):.2f} on {len(store.foreign)} spools"),
        ("spools deleted / created", f"{len(store.deleted)} / {len(bench.tray_of_spool)}"),
        ("Spoolman vs analysis (mm, tray: got/owed)", totals),
        ("  off by > 0.01 mm", len(spool_differences(owed, gained))),
        ("runs not drained", sum(1 for o in outcomes if not o.drained)),
        ("wall time", f"{seconds:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"fault campaign, seed {seed}"] + [f"{name:<{width}}  {value}" for name, value in rows]
    failed = [o.plan.run for o in outcomes if not o.ok]
    again = f"--seed {seed}" + (f" --kinds {','.join(kinds)}" if kinds != FAULT_KINDS else "") + " --run N"
    lines.append(f"failed runs: {failed} (repeat one with {again})" if failed else "all runs exact")
    return "\n".join(lines)


async def campaign(args: argparse.Namespace, workdir: Path) -> tuple[list[Outcome], str]:
    files = load_files()
    runs = [args.run] if args.run is not None else list(range(1, args.runs + 1))
    outcomes = []
    started = time.monotonic()
    async with rig(workdir, log_level=args.log_level, proxy=True, spoolman_timeout=args.spoolman_timeout,
                   printer_mode=args.printer_mode) as bench:
        for file in files:
            bench.printer.add_file(file.remote_path, _file_bytes(file.name))
        injector = FaultInjector(bench, args.spoolman_timeout)
        for run in runs:
            plan = plan_run(args.seed, run, files, args.layer_seconds, args.kinds)
            outcome = await run_one(bench, injector, plan, args.layer_seconds, args.drain_timeout)
            print(describe(outcome), flush=True)
            outcomes.append(outcome)
        return outcomes, summary(outcomes, bench, time.monotonic() - started, args.seed, args.kinds)


def _file_bytes(name: str) -> bytes:
    return demo_3mf(layers=40) if name == SYNTHETIC else (PRINT_FILES / name).read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="number of runs (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="RNG seed of the schedules (default 1)")
    parser.add_argument("--run", type=int, default=None, help="only this run of the seed's schedule")
    parser.add_argument("--layer-seconds", type=float, default=0.04, help="time per layer (default 0.04)")
    # Longer than the printer link's 180 s silence timeout, after which it asks for pushall again.
    parser.add_argument("--drain-timeout", type=float, default=240.0, help="seconds a run may take to drain")
    parser.add_argument("--workdir", type=Path, default=None, help="keep Layerwise's data and log here")
    parser.add_argument("--log-level", default="WARNING", help="Layerwise's log level (default WARNING)")
    parser.add_argument("--kinds", type=_kinds, default=FAULT_KINDS,
                        help=f"comma-separated fault kinds to draw from (default all: {','.join(FAULT_KINDS)})")
    parser.add_argument("--spoolman-timeout", type=float, default=SPOOLMAN_TIMEOUT,
                        help=f"Layerwise's Spoolman timeout, s; slow requests are held past it "
                             f"(default {SPOOLMAN_TIMEOUT:g})")
    parser.add_argument("--printer-mode", choices=MODES, default="lan",
                        help="the virtual printer's mode: lan (default), developer, cloud (requests refused, "
                             "deltas only) or silent (requests never answered)")
    args = parser.parse_args(argv)

    # amqtt and transitions narrate every connection at INFO; the campaign prints its own lines.
    setup_logging("WARNING")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="layerwise-faults-"))
    outcomes, text = asyncio.run(campaign(args, workdir))
    print(text)
    ok = all(o.ok for o in outcomes)
    if ok and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not ok:
        print(f"Layerwise data and log kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(kind.strip() for kind in text.split(",") if kind.strip()))
    unknown = [kind for kind in kinds if kind not in FAULT_WEIGHTS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown fault kind(s) {', '.join(unknown) or '(none given)'}; "
                                         f"known: {', '.join(FAULT_KINDS)}")
    return kinds
