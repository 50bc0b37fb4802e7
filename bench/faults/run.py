"""Fault campaign, one command: ``python -m bench.faults --runs 50 --seed 1``.

Layerwise runs as its own process (``server.sim.process``); the virtual printer (P1S, TLS MQTT and
FTPS) and the Spoolman stand-in run in this one. Each run prints one real sliced file (or the
synthetic demo file) while a seeded RNG schedules 2-4 faults at random moments of the print:

* ``kill``: SIGKILL Layerwise, restart it on the same data directory after a random delay;
* ``drop``: the printer cuts every MQTT/FTPS connection (clients reconnect);
* ``broker``: the printer's MQTT broker goes away for a while (reports published meanwhile are lost);
* ``spoolman``: the stand-in stops ("connection refused") for a while.

Some runs end with a cancel at a random layer and a random point inside it. After each run every
fault is healed and the backlog drains (``/api/v1/backlog``); then the ledger (read-only from the
SQLite file) is compared layer by layer with the analysis, and each spool's gain in the stand-in
with the mm the analysis owes it. Exit status 1 when any layer was lost or billed twice, a spool
differs, or a run did not drain. Each run's schedule depends only on ``--seed`` and the run number,
so ``--run N`` repeats one run (the moments are wall-clock, so a repeat is close, not identical).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.faults.accounting import Bill, LayerCounts, count_layers, owed_layers, owed_per_spool, spool_differences
from bench.faults.harness import Rig, ams_mapping, rig
from server.analysis import PrintAnalysis, analyze_file
from server.logs import setup_logging
from server.sim.demo_print import demo_3mf

PRINT_FILES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "print-files"
REAL_FILES = ("testqube-a1-4colour-bs2.04.gcode.3mf", "p1s-2colour-bs2.05.gcode.3mf", "xmas-pud-x1c-4colour.gcode.3mf")
SYNTHETIC = "bench-demo-40.gcode.3mf"
FAULT_KINDS = ("kill", "drop", "broker", "spoolman")
FINAL_ENTRY_STATES = ("delivered", "doubtful", "rejected")


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
    hold: float  # seconds the fault lasts (kill: until the restart begins)

    def __str__(self) -> str:
        return f"{self.kind}@{self.at:.1f}s/{self.hold:.1f}s"


@dataclass(frozen=True)
class Plan:
    run: int
    file: PrintFile
    cancel: tuple[int, float] | None  # (layer K, fraction of layer K printed) or None: prints to the end
    faults: tuple[Fault, ...]


@dataclass
class Outcome:
    plan: Plan
    counts: LayerCounts
    spool_diff: dict[int, float]  # spool -> Spoolman's total minus the ledger's delivered total, when off
    drained: bool
    seconds: float
    drain_seconds: float
    cancelled_at: tuple[int, int] | None = None  # (layer, mc_percent) the printer stopped at
    jobs: list[tuple[int, str, str | None]] = field(default_factory=list)
    pushalls: int = 0  # pushall requests the printer answered during the run (for a run that did not drain)
    owed_spools: dict[int, float] = field(default_factory=dict)  # mm the analysis owes each spool for this run

    @property
    def ok(self) -> bool:
        return self.drained and not self.counts.lost and not self.counts.twice and not self.spool_diff


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


def plan_run(seed: int, run: int, files: list[PrintFile], layer_seconds: float) -> Plan:
    rng = random.Random(f"{seed}:{run}")
    file = rng.choice(files)
    layers = file.analysis.layer_count
    cancel = (rng.randint(1, layers), rng.random()) if rng.random() < 0.3 else None
    duration = ((cancel[0] if cancel else layers) + 1) * layer_seconds
    faults = sorted(
        (Fault(rng.choice(FAULT_KINDS), rng.uniform(0, duration), rng.uniform(0.1, 1.5))
         for _ in range(rng.randint(2, 4))),
        key=lambda fault: fault.at,
    )  # fmt: skip
    return Plan(run, file, cancel, tuple(faults))


class FaultInjector:
    """Applies faults; one lock per resource, so two faults on one resource take turns."""

    def __init__(self, bench: Rig) -> None:
        self.bench = bench
        self._locks = {kind: asyncio.Lock() for kind in ("kill", "broker", "spoolman")}

    async def apply(self, fault: Fault, started: float) -> None:
        await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
        bench = self.bench
        if fault.kind == "drop":
            async with self._locks["broker"]:
                await bench.printer.drop_connections()
            return
        async with self._locks[fault.kind]:
            if fault.kind == "kill":
                await bench.layerwise.kill()
                await asyncio.sleep(fault.hold)
                await bench.layerwise.start()
            elif fault.kind == "broker":
                await bench.printer.stop_broker()
                await asyncio.sleep(fault.hold)
                await bench.printer.start_broker()
            elif fault.kind == "spoolman":
                await bench.spoolman.stop()
                await asyncio.sleep(fault.hold)
                await bench.spoolman.start()


async def drive_print(bench: Rig, plan: Plan, layer_seconds: float) -> tuple[int, int] | None:
    """Print ``plan.file`` half a layer at a time; returns (layer, mc_percent) when it cancels."""
    printer, half = bench.printer, layer_seconds / 2
    await printer.start_print(plan.file.remote_path, ams_mapping=plan.file.mapping, announce=True,
                              task_id=str(100_000 + plan.run))
    total = plan.file.analysis.layer_count
    while True:
        await asyncio.sleep(half)
        if plan.cancel is not None and printer.layer == plan.cancel[0]:
            await printer.progress_within_layer(plan.cancel[1])
            stopped = (printer.layer, int(printer.state["print"]["mc_percent"]))
            await printer.cancel()
            await asyncio.sleep(half)
            await printer.clear_print_error()
            return stopped
        await printer.progress_within_layer(0.5)
        await asyncio.sleep(half)
        if printer.layer >= total:
            await printer.finish()
            return None
        await printer.advance(1)


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
    pending = bench.read_db(
        f"SELECT count(*) FROM ledger_entries WHERE job_id > ? AND state NOT IN {FINAL_ENTRY_STATES!r}",
        (after_job,),
    )[0][0]
    if pending:
        return False
    backlog = await bench.get_json("/api/v1/backlog")
    return backlog["backlog"]["count"] == 0


async def wait_drained(bench: Rig, after_job: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # Layerwise may still be starting
            if await drained(bench, after_job):
                return True
        await asyncio.sleep(0.1)
    return False


async def run_one(bench: Rig, injector: FaultInjector, plan: Plan, layer_seconds: float,
                  drain_timeout: float) -> Outcome:
    started = time.monotonic()
    last_job = bench.read_db("SELECT coalesce(max(id), 0) FROM jobs")[0][0]
    requests = len(bench.printer.requests)
    faults = [asyncio.create_task(injector.apply(fault, started)) for fault in plan.faults]
    try:
        cancelled_at = await drive_print(bench, plan, layer_seconds)
    finally:
        await asyncio.gather(*faults)  # every fault heals before the run is judged
    if not bench.layerwise.running:
        await bench.layerwise.start()
    printed = time.monotonic()
    ok = await wait_drained(bench, last_job, drain_timeout)
    rows = bench.read_db(
        "SELECT layer, filament_index, mm, spool_id, state FROM ledger_entries WHERE job_id > ?", (last_job,)
    )
    bills = [Bill(*row) for row in rows]
    owed = owed_layers(plan.file.analysis, cancelled_at)
    # Delivery check, cumulative over the campaign (a run that did not drain delivers into the next one):
    # what Spoolman applied to each spool against what the ledger says was delivered to it.
    ledger = dict(bench.read_db(
        "SELECT spool_id, sum(mm) FROM ledger_entries WHERE state IN ('delivered', 'doubtful') GROUP BY spool_id"
    ))
    jobs = bench.read_db("SELECT id, state, reason FROM jobs WHERE id > ?", (last_job,))
    pushalls = sum(1 for request in bench.printer.requests[requests:] if "pushing" in request)
    return Outcome(plan, count_layers(owed, bills), spool_differences(ledger, bench.store.used_mm()), ok,
                   time.monotonic() - started, time.monotonic() - printed, cancelled_at, jobs, pushalls,
                   owed_per_spool(owed, plan.file.mapping, bench.spool_for_tray))


def describe(outcome: Outcome) -> str:
    plan, counts = outcome.plan, outcome.counts
    end = f"cancel L{outcome.cancelled_at[0]} @{outcome.cancelled_at[1]}%" if outcome.cancelled_at else "finish"
    line = (f"run {plan.run:3d} {plan.file.name[:34]:<34} {plan.file.analysis.layer_count:4d} layers {end:<17} "
            f"faults {' '.join(map(str, plan.faults)):<62} billed {counts.billed:4d} lost {counts.lost} "
            f"twice {counts.twice} {outcome.seconds:5.1f}s (drain {outcome.drain_seconds:4.1f}s)")
    if not outcome.ok:
        line += (f"\n    FAIL: drained={outcome.drained} lost layers={counts.lost_keys} twice={counts.twice_keys}"
                 f" spool diff (mm)={outcome.spool_diff} jobs={outcome.jobs} pushalls={outcome.pushalls}")
    return line


def summary(outcomes: list[Outcome], spoolman: dict[int, float], seconds: float, seed: int) -> str:
    owed: dict[int, float] = {}
    for outcome in outcomes:
        for spool, mm in outcome.owed_spools.items():
            owed[spool] = owed.get(spool, 0.0) + mm
    totals = " ".join(f"#{spool} {spoolman.get(spool, 0.0):.2f}/{mm:.2f}" for spool, mm in sorted(owed.items()))
    rows = [
        ("runs", len(outcomes)),
        ("  finished / cancelled", f"{sum(1 for o in outcomes if not o.cancelled_at)} / "
                                   f"{sum(1 for o in outcomes if o.cancelled_at)}"),
        ("faults injected", sum(len(o.plan.faults) for o in outcomes)),
        *((f"  {kind}", sum(1 for o in outcomes for f in o.plan.faults if f.kind == kind)) for kind in FAULT_KINDS),
        ("layers billed", sum(o.counts.billed for o in outcomes)),
        ("layers lost", sum(o.counts.lost for o in outcomes)),
        ("layers billed twice", sum(o.counts.twice for o in outcomes)),
        ("Spoolman vs ledger, off > 0.01 mm", sum(len(o.spool_diff) for o in outcomes)),
        ("Spoolman vs analysis (mm, spool: got/owed)", totals),
        ("  off by > 0.01 mm", len(spool_differences(owed, spoolman))),
        ("runs not drained", sum(1 for o in outcomes if not o.drained)),
        ("wall time", f"{seconds:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"fault campaign, seed {seed}"] + [f"{name:<{width}}  {value}" for name, value in rows]
    failed = [o.plan.run for o in outcomes if not o.ok]
    lines.append(f"failed runs: {failed} (repeat one with --seed {seed} --run N)" if failed else "all runs exact")
    return "\n".join(lines)


async def campaign(args: argparse.Namespace, workdir: Path) -> tuple[list[Outcome], dict[int, float]]:
    files = load_files()
    runs = [args.run] if args.run is not None else list(range(1, args.runs + 1))
    outcomes = []
    async with rig(workdir, log_level=args.log_level) as bench:
        for file in files:
            bench.printer.add_file(file.remote_path, _file_bytes(file.name))
        injector = FaultInjector(bench)
        for run in runs:
            plan = plan_run(args.seed, run, files, args.layer_seconds)
            outcome = await run_one(bench, injector, plan, args.layer_seconds, args.drain_timeout)
            print(describe(outcome), flush=True)
            outcomes.append(outcome)
        return outcomes, bench.store.used_mm()


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
    args = parser.parse_args(argv)

    # amqtt and transitions narrate every connection at INFO; the campaign prints its own lines.
    setup_logging("WARNING")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="layerwise-faults-"))
    started = time.monotonic()
    outcomes, spoolman = asyncio.run(campaign(args, workdir))
    print(summary(outcomes, spoolman, time.monotonic() - started, args.seed))
    ok = all(o.ok for o in outcomes)
    if ok and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not ok:
        print(f"Layerwise data and log kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1
