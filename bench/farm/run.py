"""A print farm on one Layerwise, one command: ``python -m bench.farm --printers 25,50,100,200``.

Per N: N virtual printers in this process (half P1S sending deltas, half X1C sending the full state
on every change), each with its own MQTT broker (TLS), implicit-FTPS server and a four-tray AMS, each
printing one of the real sliced files in ``tests/fixtures/print-files``; starts staggered over
``--ramp`` seconds; every printer sends a report a second (temperatures) besides its layer and
progress reports, as the firmware does while printing. One Layerwise process (``layerwise serve``,
as a user runs it) tracks them all and bills the Spoolman stand-in in this process; ``--clients``
dashboard clients hold the live-update stream (``/events``) open.

Each print runs ``--seconds`` and is then cancelled mid-layer (cancelled prints bill only what was
printed, so the accounting is exact whatever the layer). Figures over the window from the last
start to the last cancel:

- Layerwise's CPU as % of one core (/proc), its RSS (largest sample, one a second);
- event-loop lag p50/p99, sampled inside the process (``server.instruments``: how late a 50 ms sleep wakes);
- SQLite commit time p99 (inside the process: every session commit, ``synchronous=FULL``);
- report-to-bill latency p99: the layer change published by the printer -> the layer's first ledger
  entry committed (the ledger's ``created_at``; both clocks are this machine's wall clock);
- bills exact: every printer's ledger against the analysis layer by layer, by ``bench.faults``'
  accounting (lost, billed twice, waiting) and Spoolman against the ledger per spool.
- the farm view in headless Chromium (``--browser``, on when /usr/bin/chromium exists; ``bench.farm.browser``):
  frames per second, long tasks, and the bytes per second the page receives (update stream + rows).

``--profile DIR`` writes a cProfile of Layerwise's event loop per N (``python -m pstats DIR/layerwise-N.pstats``).
``--keep DIR`` keeps each N's work folder as DIR/farm-N (else deleted): Layerwise's data directory
(``layerwise/``: the SQLite database, and ``layerwise.log``, at INFO then) and ``judgement.json``, every
printer whose billing is not exact with its layers and job rows (``bench.farm.judgement``). When billing
is not exact the bench also prints a line or two per such printer after the table.

The simulator shares the machine's cores with Layerwise: at large N it is itself a heavy process,
so figures there are an upper bound of what Layerwise needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bench.farm.browser import CHROMIUM, FarmPage
from bench.farm.judgement import PrinterJudgement, explanations, judge_printer, judgement_document
from bench.farm.measure import Window, cpu_seconds, own_lag, percentile, read_instruments, rss_mb
from bench.farm.report import Figures, table, verdict
from bench.faults.accounting import Bill, count_layers, owed_layers, spoolman_vs_ledger
from bench.faults.harness import RecordingStore, new_spool
from bench.faults.run import PrintFile, load_files
from server.config import PrinterConfig
from server.db.engine import database_path
from server.instruments import INSTRUMENTS_ENV, PROFILE_ENV
from server.logs import setup_logging
from server.sim.printer import VirtualPrinter
from server.sim.process import LayerwiseProcess
from server.sim.spoolman import SpoolmanStandin

ACCESS_CODE = "f4rm1234"
TRAYS = (0, 1, 2, 3)


@dataclass
class FarmPrinter:
    name: str
    printer: VirtualPrinter
    file: PrintFile
    spool_for_tray: dict[int, int]
    layer_changes: dict[int, float] = field(default_factory=dict)  # new layer number -> wall time published
    cancelled_at: tuple[int, int] | None = None
    finished: bool = False
    reports: int = 0


async def open_printers(stack: contextlib.AsyncExitStack, count: int, files: list[PrintFile], store: RecordingStore,
                        workdir: Path) -> list[FarmPrinter]:
    farm = []
    for index in range(count):
        model = "X1C" if index % 2 else "P1S"
        printer = await stack.enter_async_context(VirtualPrinter(
            serial=f"01F00A{index:09d}", access_code=ACCESS_CODE, model=model, cert_dir=workdir / "certs" / str(index)))
        file = files[index % len(files)]
        printer.add_file(file.remote_path, (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "print-files"
                                            / file.name).read_bytes())
        spools = {tray: new_spool(store) for tray in TRAYS}
        farm.append(FarmPrinter(f"Farm {index:03d} {model}", printer, file, spools))
    return farm


def printer_configs(farm: list[FarmPrinter]) -> list[PrinterConfig]:
    return [PrinterConfig(name=p.name, host=p.printer.host, serial=p.printer.serial,
                          access_code=SecretStr(ACCESS_CODE), mqtt_port=p.printer.mqtt_port,
                          ftps_port=p.printer.ftps_port, ca_file=p.printer.ca_cert_path) for p in farm]


async def wait_online(client: httpx.AsyncClient, url: str, count: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                printers = (await client.get(f"{url}/api/v1/printers")).json()
                if len(printers) == count and all(p.get("online") for p in printers):
                    return
            await asyncio.sleep(0.5)


async def hold_stream(client: httpx.AsyncClient, url: str, received: list[int]) -> None:
    """One dashboard holding the live-update stream; counts the bytes it gets."""
    while True:
        with contextlib.suppress(httpx.HTTPError):
            async with client.stream("GET", f"{url}/events", timeout=None) as answer:
                async for chunk in answer.aiter_bytes():
                    received[0] += len(chunk)
        await asyncio.sleep(1)


async def print_for(farm_printer: FarmPrinter, delay: float, seconds: float, layer_seconds: float,
                    job_number: int) -> None:
    """Start after ``delay``, print ``seconds`` (a report a second besides the layers), then cancel."""
    printer, rng = farm_printer.printer, random.Random(job_number)
    await asyncio.sleep(delay)
    await printer.start_print(farm_printer.file.remote_path, ams_mapping=farm_printer.file.mapping,
                              announce=True, task_id=str(700_000 + job_number))
    total = farm_printer.file.analysis.layer_count
    loop = asyncio.get_running_loop()
    ends = loop.time() + seconds
    next_layer = loop.time() + layer_seconds
    halfway = False
    while True:
        await asyncio.sleep(min(1.0, max(0.0, next_layer - loop.time())))
        now = loop.time()
        if now >= ends:
            await printer.progress_within_layer(rng.uniform(0.1, 0.9))
            farm_printer.cancelled_at = (printer.layer, int(printer.state["print"]["mc_percent"]))
            await printer.cancel()
            await asyncio.sleep(1)
            await printer.clear_print_error()
            return
        if now >= next_layer - layer_seconds / 2 and not halfway:
            await printer.progress_within_layer(0.5)
            halfway = True
        if now >= next_layer:
            if printer.layer >= total:
                await printer.finish()
                farm_printer.finished = True
                return
            await printer.advance(1)
            farm_printer.layer_changes[printer.layer] = time.time()
            next_layer, halfway = now + layer_seconds, False
        else:
            await printer.heartbeat(rng.uniform(-1.5, 1.5))
        farm_printer.reports += 1


def read_db(database: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as db:
        return db.execute(query, params).fetchall()


async def drained(database: Path, count: int) -> bool:
    closed = ("SELECT final, json_extract(checkpoint_json, '$.billing.settled') "
              "OR json_extract(checkpoint_json, '$.untracked_reason') IS NOT NULL FROM jobs")
    rows = await asyncio.to_thread(read_db, database, closed)
    if len(rows) < count or not all(final and done for final, done in rows):
        return False
    pending = await asyncio.to_thread(read_db, database,
                                      "SELECT count(*) FROM ledger_entries WHERE state IN ('ready', 'sending')")
    return not pending[0][0]


async def wait_drained(database: Path, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error):
            if await drained(database, count):
                return True
        await asyncio.sleep(0.5)
    return False


def bill_latencies(database: Path, farm: list[FarmPrinter]) -> list[float]:
    """Per (printer, layer n): the layer change to n+1 published -> layer n's first bill committed, in ms."""
    by_name = {p.name: p for p in farm}
    rows = read_db(database, "SELECT j.printer, e.layer, min(e.created_at) FROM ledger_entries e "
                             "JOIN jobs j ON e.job_id = j.id GROUP BY e.job_id, e.layer")
    latencies = []
    for name, layer, created in rows:
        published = by_name[name].layer_changes.get(layer + 1)
        if published is not None:
            committed = datetime.fromisoformat(created).replace(tzinfo=UTC).timestamp()
            latencies.append((committed - published) * 1000)
    return latencies


Judged = tuple[int, int, int, int, int, list[PrinterJudgement]]


def judge(database: Path, farm: list[FarmPrinter], store: RecordingStore) -> Judged:
    """(layers billed, lost, billed twice, waiting, spools where Spoolman != ledger, the printers not exact)."""
    layers = lost = twice = waiting = 0
    delivered = dict(read_db(database, "SELECT spool_id, sum(mm) FROM ledger_entries "
                                       "WHERE state IN ('delivered', 'doubtful') GROUP BY spool_id"))
    off = spoolman_vs_ledger(store.used_length(), delivered, store.foreign)
    jobs: dict[str, list[Any]] = {}
    for printer, *row in read_db(database, "SELECT printer, id, state, final, reason, checkpoint_json FROM jobs"):
        jobs.setdefault(printer, []).append(tuple(row))
    judgements = []
    for farm_printer in farm:
        rows = read_db(database, "SELECT e.layer, e.filament_index, e.mm, e.spool_id, e.state, e.error "
                                 "FROM ledger_entries e JOIN jobs j ON e.job_id = j.id WHERE j.printer = ?",
                       (farm_printer.name,))
        cancelled = None if farm_printer.finished else farm_printer.cancelled_at
        bills = [Bill(*row) for row in rows]
        counts = count_layers(owed_layers(farm_printer.file.analysis, cancelled), bills)
        layers, lost = layers + counts.billed, lost + counts.lost
        twice, waiting = twice + counts.twice, waiting + counts.waiting
        own = set(farm_printer.spool_for_tray.values())
        judgement = judge_printer(farm_printer.name, farm_printer.file.name, farm_printer.cancelled_at,
                                  farm_printer.finished, counts, bills, jobs.get(farm_printer.name, []),
                                  {spool: mm for spool, mm in off.items() if spool in own})
        if not judgement.exact:
            judgements.append(judgement)
    return layers, lost, twice, waiting, len(off), judgements


def log_level(args: argparse.Namespace) -> str:
    """Layerwise's log (``layerwise/layerwise.log``): INFO when it is kept (a line per job event, not per
    report, so cheap at 200 printers), WARNING when it is deleted anyway."""
    return "INFO" if args.keep is not None else "WARNING"


def instruments_env(instruments_file: Path, profile_dir: Path | None, count: int) -> dict[str, str]:
    env = {INSTRUMENTS_ENV: str(instruments_file)}
    if profile_dir is not None:  # cProfile of Layerwise's loop, dumped when it stops (python -m pstats FILE)
        profile_dir.mkdir(parents=True, exist_ok=True)
        env[PROFILE_ENV] = str(profile_dir.resolve() / f"layerwise-{count}.pstats")
    return env


async def measure(count: int, args: argparse.Namespace, files: list[PrintFile], workdir: Path) -> Figures:
    started = time.monotonic()
    store = RecordingStore()
    instruments_file = workdir / "instruments.json"
    async with contextlib.AsyncExitStack() as stack:
        spoolman = await stack.enter_async_context(SpoolmanStandin(store))
        farm = await open_printers(stack, count, files, store, workdir)
        layerwise = await stack.enter_async_context(LayerwiseProcess(
            workdir / "layerwise", spoolman_url=spoolman.url, printers=printer_configs(farm),
            seed_mappings={p.name: p.spool_for_tray for p in farm}, log_level=log_level(args),
            startup_timeout=300, env=instruments_env(instruments_file, args.profile, count)))
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        await wait_online(client, layerwise.url, count, timeout=120 + count)
        pid = layerwise.pid
        assert pid is not None
        page = await stack.enter_async_context(FarmPage(layerwise.url)) if args.browser else None
        received = [0]
        streams = [asyncio.create_task(hold_stream(client, layerwise.url, received)) for _ in range(args.clients)]
        stagger = args.ramp / count
        prints = [asyncio.create_task(print_for(p, i * stagger, args.seconds, args.layer_seconds, i))
                  for i, p in enumerate(farm)]
        await asyncio.sleep(args.ramp)  # every printer has started: the window opens
        readings = read_instruments(instruments_file)
        window = Window(cpu_seconds(pid), time.monotonic(), len(readings["lag_ms"]), len(readings["commit_ms"]))
        bytes_at, reports_at = received[0], sum(p.reports for p in farm)
        rss = rss_mb(pid)
        # The machine's load next to the figures: the lag columns mostly measure other processes at a high one.
        loads = [os.getloadavg()[0]]
        if page is not None:
            await page.start()
        while not all(task.done() for task in prints):
            await asyncio.sleep(1)
            rss = max(rss, rss_mb(pid))
            loads.append(os.getloadavg()[0])
        elapsed = time.monotonic() - window.wall
        cpu = (cpu_seconds(pid) - window.cpu) / elapsed * 100
        stream_rate = (received[0] - bytes_at) / elapsed / max(1, args.clients)
        report_rate = (sum(p.reports for p in farm) - reports_at) / elapsed
        page_figures = await page.stop() if page is not None else None
        await asyncio.gather(*prints)
        ok = await wait_drained(database_path(layerwise.data_dir), count, args.drain_timeout)
        for task in streams:
            task.cancel()
        await asyncio.sleep(2)  # the instruments write its samples every second
        readings = read_instruments(instruments_file)
        lag, commits = readings["lag_ms"][window.lag_seen:], readings["commit_ms"][window.commits_seen:]
        lag_cpu = readings.get("lag_cpu_ms", [])[window.lag_seen:]
        database = database_path(layerwise.data_dir)
        latencies = await asyncio.to_thread(bill_latencies, database, farm)
        layers, lost, twice, waiting, off, judgements = await asyncio.to_thread(judge, database, farm, store)
    return Figures(count, cpu, rss, percentile(lag, 50), percentile(lag, 99),
                   percentile(own_lag(lag, lag_cpu), 99), percentile(commits, 99),
                   percentile(latencies, 99), report_rate, stream_rate, layers, lost, twice, waiting, off, ok,
                   time.monotonic() - started, page_figures, (min(loads), max(loads)), judgements)


def kept(keep: Path, count: int) -> Path:
    return keep / f"farm-{count}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--printers", default="25,50,100,200", help="comma-separated farm sizes")
    parser.add_argument("--seconds", type=float, default=90.0, help="seconds each print runs before its cancel")
    parser.add_argument("--ramp", type=float, default=30.0, help="seconds over which the starts are spread")
    parser.add_argument("--layer-seconds", type=float, default=6.0, help="seconds per layer")
    parser.add_argument("--clients", type=int, default=10, help="dashboards holding the live-update stream")
    parser.add_argument("--drain-timeout", type=float, default=240.0)
    parser.add_argument("--browser", action=argparse.BooleanOptionalAction, default=CHROMIUM.exists(),
                        help="measure /farm in headless Chromium (frames, long tasks, bytes received); "
                             f"on when {CHROMIUM} exists")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="write a cProfile of Layerwise's event loop per N to DIR/layerwise-N.pstats")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep each N's work folder as DIR/farm-N: the database, Layerwise's log (INFO) "
                             "and judgement.json")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.printers.split(",")]
    if args.keep is not None:
        # Layerwise would resume an old database's jobs, and a kept folder is evidence: never reuse one.
        taken = [str(kept(args.keep, n)) for n in counts if kept(args.keep, n).exists()]
        if taken or len(set(counts)) < len(counts):
            parser.error(f"--keep: each N needs a new folder ({', '.join(taken) or 'a size given twice'})")
    setup_logging("WARNING")
    files = [f for f in load_files() if (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "print-files"
                                         / f.name).exists()]
    rows: list[Figures] = []
    for count in counts:
        if args.keep is None:
            workdir = Path(tempfile.mkdtemp(prefix=f"layerwise-farm-{count}-"))
        else:
            workdir = kept(args.keep, count)
            workdir.mkdir(parents=True)
        try:
            figures = asyncio.run(measure(count, args, files, workdir))
            rows.append(figures)
            if args.keep is not None:
                document = judgement_document(count, figures.billing(), figures.judgements)
                (workdir / "judgement.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        finally:
            if args.keep is None:
                shutil.rmtree(workdir, ignore_errors=True)
        print(table(rows[-1:]) if len(rows) == 1 else table(rows).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    for figures in rows:
        for line in explanations(figures.printers, figures.judgements, args.keep is not None, figures.drained):
            print(line)
    if args.keep is not None:
        print(f"kept: {', '.join(str(kept(args.keep, n)) for n in counts)}")
    ok, notes = verdict(rows)
    for note in notes:
        print(note)
    return 0 if ok else 1

