"""Speed and memory of the print-analysis engine: ``python -m bench.analysis`` (or ``python bench/analysis/run.py``).

Builds a >= 100 MB gcode from the real 658-layer P1S sample by repeating its layers (renumbered markers),
stores it deflated in a .gcode.3mf in a temp dir, and reports for it:
  * MB of gcode per second for ``analyze_file`` (inflate, MD5 check, metadata, parse);
  * the ratio of that time to a bare ``zlib.decompressobj`` inflate of the same raw member
    (and to a ``ZipFile.open().read`` loop, which adds CRC checking);
  * a baseline token-dictionary parser measured side by side (over the first 16 MB, inflated up front);
  * peak RSS growth of each run, for two file sizes, to show it does not grow with the file.
Every timing is the best of ``--repeat`` runs, each in a fresh process.

First, whole processes as a person runs them (bench/analysis/whole.py): ``layerwise --help``,
``layerwise analyze --help`` and ``layerwise analyze FILE`` against a naive line-by-line parser
(bench/analysis/naive.py) on the largest real file; ``--whole`` runs only that part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # for ``python bench/analysis/run.py``
    sys.path.insert(0, str(ROOT))

from bench.analysis import whole  # noqa: E402
from bench.analysis.build import build  # noqa: E402

SAMPLE = ROOT / "tests" / "fixtures" / "print-files" / "p1s-658-layers-bs2.07.gcode.3mf"
MB = 1_000_000


def measure(mode: str, path: Path, repeat: int, limit: int | None = None) -> dict[str, float]:
    best: dict[str, float] | None = None
    for _ in range(repeat):
        cmd = [sys.executable, "-m", "bench.analysis.measure", mode, str(path)]
        if limit:
            cmd.append(str(limit))
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100, help="size of the big gcode in MB (default 100)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing, best kept (default 5)")
    parser.add_argument("--whole", action="store_true",
                        help="only the whole-process timings (layerwise --help, analyze FILE against the naive parser)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="layerwise-bench-") as tmp:
        # The largest real file (6.5 MB of gcode), and its layers twice over (12.9 MB: issue 11 spoke of
        # an 11 MB file; build() repeats whole rounds of layers, so at least 11 MB gives 12.9 MB).
        twice = Path(tmp) / "p1s-658-layers-twice.gcode.3mf"
        build(SAMPLE, twice, 11 * MB)
        whole.run(max(args.repeat, 5), [whole.largest_print_file(), twice])
    if args.whole:
        return 0
    print()

    with tempfile.TemporaryDirectory(prefix="layerwise-bench-") as tmp:
        big, small = Path(tmp) / "big.gcode.3mf", Path(tmp) / "small.gcode.3mf"
        size, layers = build(SAMPLE, big, args.mb * MB)
        small_size, _ = build(SAMPLE, small, args.mb * MB // 4)
        print(f"gcode: {size / MB:.1f} MB, {layers} layers; deflated {big.stat().st_size / MB:.1f} MB")

        inflate = measure("zlib", big, args.repeat)
        zipread = measure("zipfile", big, args.repeat)
        analysis = measure("analyze", big, args.repeat)
        analysis_small = measure("analyze", small, 1)
        baseline = measure("baseline", big, max(2, args.repeat // 2), limit=16 * MB)
        engine = measure("engine", big, args.repeat, limit=16 * MB)
        stages = measure("stages", big, args.repeat)
        if {k: round(v, 3) for k, v in engine["mm"].items()} != {k: round(v, 3) for k, v in baseline["mm"].items()}:
            print(f"WARNING: baseline and engine disagree: {baseline['mm']} != {engine['mm']}")

        speed = size / MB / analysis["seconds"]
        base_speed = baseline["bytes"] / MB / baseline["seconds"]
        engine_speed = engine["bytes"] / MB / engine["seconds"]
        rows = [
            ("bare inflate (zlib.decompressobj)", inflate["seconds"], size / MB / inflate["seconds"]),
            ("ZipFile.open().read loop", zipread["seconds"], size / MB / zipread["seconds"]),
            ("analyze_file (inflate+MD5+parse)", analysis["seconds"], speed),
            (f"baseline parser ({baseline['bytes'] / MB:.0f} MB in memory)", baseline["seconds"], base_speed),
            (f"engine parser (same {engine['bytes'] / MB:.0f} MB)", engine["seconds"], engine_speed),
        ]
        cpu = [
            inflate["cpu_seconds"],
            zipread["cpu_seconds"],
            analysis["cpu_seconds"],
            baseline["cpu_seconds"],
            engine["cpu_seconds"],
        ]
        print(f"{'':<38} {'wall':>10} {'':>14} {'CPU (all threads)':>18}")
        for (name, seconds, mbps), cpu_seconds in zip(rows, cpu, strict=True):
            print(f"{name:<38} {seconds:8.3f} s {mbps:9.1f} MB/s {cpu_seconds:10.3f} s")
        load = os.getloadavg()[0]
        print(f"load average at the end: {load:.2f} on {os.cpu_count()} cores (others' work competes for them)")
        critical = max(stages["reader_cpu"], stages["parser_cpu"])
        summed = stages["reader_cpu"] + stages["parser_cpu"]
        bare = inflate["cpu_seconds"]
        print(
            f"CPU per stage, each run alone: reader thread (inflate+CRC+MD5) {stages['reader_cpu']:.3f} s, "
            f"parser {stages['parser_cpu']:.3f} s"
        )
        print("target                     wall (best run)   two free cores (longer stage)   one core (summed CPU)")
        print(
            f"throughput >= 100 MB/s     {speed:8.1f} MB/s   {size / MB / critical:12.1f} MB/s"
            f"                {size / MB / summed:10.1f} MB/s"
        )
        print(
            f"time <= 3x bare inflate    {analysis['seconds'] / inflate['seconds']:8.2f}x"
            f"        {critical / bare:12.2f}x                     {summed / bare:10.2f}x"
        )
        cpu_speedup = (engine["bytes"] / engine["cpu_seconds"]) / (baseline["bytes"] / baseline["cpu_seconds"])
        print(
            f">= 10x the baseline parser {engine_speed / base_speed:8.1f}x (wall)   "
            f"{cpu_speedup:.1f}x (CPU), parser against parser on the same bytes"
        )
        print(f"(analyze_file, which also inflates and hashes, against the baseline: {speed / base_speed:.1f}x)")
        print(
            f"peak RSS growth: {analysis['rss_growth_kb'] / 1024:.1f} MB for {size / MB:.0f} MB, "
            f"{analysis_small['rss_growth_kb'] / 1024:.1f} MB for {small_size / MB:.0f} MB (target < 64 MB)"
        )
        totals = {k: round(v, 1) for k, v in analysis["mm"].items()}
        print(f"analysed {analysis['layers']} layers, mm per filament {totals}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
