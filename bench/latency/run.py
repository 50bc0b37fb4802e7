"""Billing latency, one command: ``python -m bench.latency``.

From the virtual printer publishing a layer-change report (``layer_num`` n+1, which bills layer n)
to the Spoolman stand-in having applied the last ``PUT /spool/{id}/use`` for that layer, over
1,000+ layers of the synthetic 4-colour demo file on loopback. Layerwise runs as its own process
(``server.sim.process``: the honest form, with its own interpreter, event loop and SQLite
``synchronous=FULL`` commits); the printer and the stand-in run in this process, so both
timestamps come from this process's monotonic clock. The stand-in notes a ``use`` when its store
has applied it, just before the HTTP answer leaves.

One layer at a time: the layer's own reports (progress marks, filament changes) are published
first and given ``--gap`` seconds, then the layer change is timed, so each figure is one layer's
path through MQTT, the job tracker, the ledger commit, the outbox and HTTP, not queueing behind
the previous layer.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.faults.harness import Rig, ams_mapping, rig
from server.analysis import PrintAnalysis, analyze_file
from server.logs import setup_logging
from server.sim.demo_print import demo_3mf

REMOTE_PATH = "/cache/latency-demo.gcode.3mf"
MIN_MM = 1e-6  # a filament with no net extrusion in a layer gets no positive use


async def wait_for_job(bench: Rig, timeout: float = 60.0) -> None:
    """Until Layerwise has fetched and analysed the file (the job is running)."""
    async with asyncio.timeout(timeout):
        while not bench.read_db("SELECT 1 FROM jobs WHERE state = 'running'"):
            await asyncio.sleep(0.05)


async def time_layer(bench: Rig, spools: set[int], timeout: float, published: list[float]) -> float | None:
    """Publish the next layer change; seconds until every spool in ``spools`` got its use, None on timeout.

    ``published`` gets the moment of the publish (monotonic), for the stage breakdown."""
    store = bench.store
    first = len(store.uses)
    started = time.monotonic()
    published.append(started)
    await bench.printer.advance(1)
    deadline = started + timeout
    while True:
        arrived = store.uses[first:]
        if spools <= {use.spool_id for use in arrived}:
            return max(use.at for use in arrived if use.spool_id in spools) - started
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        store.arrived.clear()
        try:
            async with asyncio.timeout(remaining):
                await store.arrived.wait()
        except TimeoutError:
            return None


def spools_billed(analysis: PrintAnalysis, layer: int, mapping: list[int], spool_for_tray: dict[int, int]) -> set[int]:
    return {spool_for_tray[mapping[f]] for f, mm in analysis.layers[layer].items() if mm > MIN_MM}


def stage_breakdown(bench: Rig, published: list[float], latencies: list[float | None]) -> dict[str, list[float]]:
    """Per layer, seconds spent in each stage, from the ledger's own timestamps (UTC wall clock).

    report -> bill: the job tracker merged the report and committed the bills (entry ``created_at``);
    bill -> request: the outbox read the spool and recorded the delivery (``sent_at``, last spool of the
    layer); request -> applied: HTTP to the stand-in's store (the layer's last ``use``).
    """
    offset = time.time() - time.monotonic()  # monotonic -> wall clock, on this machine, now
    rows = bench.read_db(
        "SELECT e.layer, min(e.created_at), max(d.sent_at) FROM ledger_entries e "
        "JOIN ledger_deliveries d ON e.delivery_id = d.id GROUP BY e.layer ORDER BY e.layer"
    )
    stages: dict[str, list[float]] = {"report -> bill committed": [], "bill -> use requested": [],
                                      "use requested -> applied": []}
    for layer, created, sent in rows:
        if layer >= len(latencies) or latencies[layer] is None:
            continue
        published_s, created_s, sent_s = published[layer] + offset, _wall(created), _wall(sent)
        stages["report -> bill committed"].append(created_s - published_s)
        stages["bill -> use requested"].append(sent_s - created_s)
        stages["use requested -> applied"].append(published_s + latencies[layer] - sent_s)  # type: ignore[operator]
    return stages


def _wall(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def measure(args: argparse.Namespace, workdir: Path) -> tuple[list[float], int, dict[str, list[float]]]:
    data = demo_3mf(layers=args.layers)
    local = workdir / "latency-demo.gcode.3mf"
    workdir.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    analysis = analyze_file(local, 1)
    filaments = [f for f, usage in sorted(analysis.filaments.items()) if usage.mm > 0]
    mapping = ams_mapping(filaments)
    by_layer: list[float | None] = []  # per layer key: seconds to its last use, None when none came
    published: list[float] = []  # per layer key, when its layer change was published
    async with rig(workdir, log_level="WARNING") as bench:
        bench.printer.add_file(REMOTE_PATH, data)
        await bench.printer.start_print(REMOTE_PATH, ams_mapping=mapping, announce=True, task_id="4242")
        await wait_for_job(bench)
        for layer in range(analysis.layer_count):  # layer change n -> n+1 bills layer n (0 = prelude)
            await bench.printer.progress_within_layer(1.0)
            await asyncio.sleep(args.gap)
            spools = spools_billed(analysis, layer, mapping, bench.spool_for_tray)
            by_layer.append(await time_layer(bench, spools, args.timeout, published))
        await bench.printer.finish()
        stages = stage_breakdown(bench, published, by_layer)
    latencies = [x for x in by_layer if x is not None]
    return latencies, len(by_layer) - len(latencies), stages


def _cuts(seconds: list[float]) -> list[float]:
    return statistics.quantiles([x * 1000 for x in seconds], n=100, method="inclusive")


def report(latencies: list[float], missing: int, stages: dict[str, list[float]], seconds: float) -> str:
    ms = sorted(x * 1000 for x in latencies)
    cuts = _cuts(latencies)
    rows = [
        ("layers timed", f"{len(ms)}"),
        ("layers without a use in time", f"{missing}"),
        ("p50", f"{cuts[49]:.1f} ms"),
        ("p95", f"{cuts[94]:.1f} ms"),
        ("p99", f"{cuts[98]:.1f} ms  (target < 50 ms: {'met' if cuts[98] < 50 else 'MISSED'})"),
        ("max", f"{ms[-1]:.1f} ms"),
        ("mean", f"{statistics.fmean(ms):.1f} ms"),
        ("wall time", f"{seconds:.0f} s"),
    ]
    for name, values in stages.items():
        if len(values) > 1:
            stage = _cuts(values)
            rows.append((f"  {name}", f"p50 {stage[49]:.1f} ms, p99 {stage[98]:.1f} ms"))
    width = max(len(name) for name, _ in rows)
    title = "layer change (MQTT publish) -> Spoolman use applied, Layerwise as a separate process"
    return "\n".join([title] + [f"{name:<{width}}  {value}" for name, value in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=1100, help="layers of the synthetic print (default 1100)")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between a layer's reports and its change")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a layer's uses")
    args = parser.parse_args(argv)
    setup_logging("WARNING")

    workdir = Path(tempfile.mkdtemp(prefix="layerwise-latency-"))
    started = time.monotonic()
    try:
        latencies, missing, stages = asyncio.run(measure(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(latencies, missing, stages, time.monotonic() - started))
    return 0 if latencies and not missing else 1
