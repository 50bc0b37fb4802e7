"""Whole processes, as a person runs them: ``layerwise --help``, ``layerwise analyze --help`` and
``layerwise analyze FILE`` against the naive line-by-line parser (bench/analysis/naive.py) on the same real
file. Start-up and imports count: that is what the person waits for.

    python -m bench.analysis --whole [--repeat N] [--file PATH]

Each command runs ``--repeat`` times in a fresh process (``python -m server ...``, which is what the
``layerwise`` script runs); wall time, best and median. The two analysers' totals are compared.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRINT_FILES = ROOT / "tests" / "fixtures" / "print-files"


def largest_print_file() -> Path:
    """The real file with the most gcode (the 658-layer P1S one: 6.5 MB of gcode in a 1.3 MB .gcode.3mf)."""
    import zipfile

    def gcode_bytes(path: Path) -> int:
        if not zipfile.is_zipfile(path):
            return path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            return sum(i.file_size for i in archive.infolist() if i.filename.endswith(".gcode"))

    files = [p for p in PRINT_FILES.iterdir() if p.name.endswith((".gcode", ".gcode.3mf"))]
    return max(files, key=gcode_bytes)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def time_command(args: list[str], repeat: int) -> tuple[float, float, str]:
    """(best, median) wall seconds of ``python args`` in a fresh process, and its last output."""
    times: list[float] = []
    out = ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode:
            raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-400:]}")
        out = done.stdout
    return min(times), statistics.median(times), out


def _naive_totals(out: str) -> dict[int, float]:
    lines = [line.split() for line in out.splitlines() if line.startswith("filament ")]
    return {int(words[1].rstrip(":")) - 1: float(words[2]) for words in lines}


def run(repeat: int, file: Path | None = None) -> float:
    """Print the table; return the ratio of medians, naive parser / ``layerwise analyze``."""
    path = file or largest_print_file()
    rows = [
        ("python -c pass (interpreter start)", ["-c", "pass"]),
        ("layerwise --help", ["-m", "server", "--help"]),
        ("layerwise analyze --help", ["-m", "server", "analyze", "--help"]),
        ("layerwise analyze FILE", ["-m", "server", "analyze", str(path)]),
        ("layerwise analyze --json FILE", ["-m", "server", "analyze", "--json", str(path)]),
        ("naive line-by-line parser FILE", ["-m", "bench.analysis.naive", str(path)]),
    ]
    print(f"whole processes, {repeat} runs each; FILE = {path.relative_to(ROOT)}")
    print(f"{'':<36} {'best':>9} {'median':>9}")
    results: dict[str, tuple[float, float, str]] = {}
    for name, args in rows:
        results[name] = best, median, _ = time_command(args, repeat)
        print(f"{name:<36} {best:7.3f} s {median:7.3f} s")
    analysis = json.loads(results["layerwise analyze --json FILE"][2])
    ours = {f["index"]: round(f["mm"], 2) for f in analysis["filaments"]}
    naive = _naive_totals(results["naive line-by-line parser FILE"][2])
    if ours != naive:
        print(f"WARNING: the two disagree: layerwise {ours} != naive {naive}")
    else:
        print(f"both: {analysis['layer_count']} layers, mm per filament {ours}")
    naive_best, naive_median, _ = results["naive line-by-line parser FILE"]
    ours_best, ours_median, _ = results["layerwise analyze FILE"]
    ratio = naive_median / ours_median
    print(f">= 10x the naive parser       {ratio:5.1f}x (medians)  {naive_best / ours_best:5.1f}x (best runs)")
    for name in ("layerwise --help", "layerwise analyze --help"):
        print(f"{name + ' < 0.3 s':<30}{results[name][1]:6.3f} s (median)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return ratio
