"""Whole processes, as a person runs them: ``layerwise --help``, ``layerwise analyze --help`` and
``layerwise analyze FILE`` against the naive line-by-line parser (bench/analysis/naive.py) on the same real
file. Start-up and imports count: that is what the person waits for.

    python -m bench.analysis --whole [--repeat N] [--file PATH]

Each command runs ``--repeat`` times in a fresh process, as a person runs it: ``layerwise`` as the code of
the console script pip installs (import ``server.cli``, call ``main``; ``python -m server`` would add
runpy's imports, ~1.5 ms, that the script does not have), the naive parser as a script; wall time, best
and median, and the median CPU time (user + system, of the process and its threads): on a shared machine
wall time depends on others' load, CPU time much less.
The two analysers' totals are compared.
"""

from __future__ import annotations

import json
import os
import resource
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
    # As installed by pip, whose install compiles the bytecode: with PYTHONDONTWRITEBYTECODE set (some
    # containers and CI set it) every run would compile Layerwise's sources again, ~25 ms.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _once(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one ``python args``."""
    cpu = _cpu_of_children()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return seconds, _cpu_of_children() - cpu, done.stdout


# What the ``layerwise`` console script pip writes runs (pyproject's ``layerwise = "server.cli:main"``).
LAYERWISE = ["-c", "import re, sys; from server.cli import main; sys.argv[0] = 'layerwise'; sys.exit(main())"]
NAIVE = [str(ROOT / "bench" / "analysis" / "naive.py")]


def time_commands(commands: list[list[str]], repeat: int) -> list[tuple[float, float, float, str]]:
    """(best, median) wall seconds and median CPU seconds of each ``python args`` in fresh processes, and
    its output. The commands take turns, so a change in the machine's load (other people's work on a shared
    machine) hits each alike."""
    times: list[list[float]] = [[] for _ in commands]
    cpus: list[list[float]] = [[] for _ in commands]
    outs = [""] * len(commands)
    for _ in range(repeat):
        for i, args in enumerate(commands):
            seconds, cpu, outs[i] = _once(args)
            times[i].append(seconds)
            cpus[i].append(cpu)
    return [
        (min(t), statistics.median(t), statistics.median(c), out)
        for t, c, out in zip(times, cpus, outs, strict=True)
    ]


def _naive_totals(out: str) -> dict[int, float]:
    lines = [line.split() for line in out.splitlines() if line.startswith("filament ")]
    return {int(words[1].rstrip(":")) - 1: float(words[2]) for words in lines}


def compare(path: Path, repeat: int) -> float:
    """``layerwise analyze`` against the naive parser on one file; print both; return the ratio of medians."""
    label = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    print(f"FILE = {label}")
    as_json = _once([*LAYERWISE, "analyze", "--json", str(path)])[2]
    commands = [[*LAYERWISE, "analyze", str(path)], [*NAIVE, str(path)]]
    ours, naive = time_commands(commands, repeat)
    print(f"{'  layerwise analyze FILE':<36} {ours[0]:7.3f} s {ours[1]:7.3f} s {ours[2]:7.3f} s")
    print(f"{'  naive line-by-line parser FILE':<36} {naive[0]:7.3f} s {naive[1]:7.3f} s {naive[2]:7.3f} s")
    analysis = json.loads(as_json)
    totals = {f["index"]: round(f["mm"], 2) for f in analysis["filaments"]}
    if totals != _naive_totals(naive[3]):
        print(f"  WARNING: the two disagree: layerwise {totals} != naive {_naive_totals(naive[3])}")
    else:
        print(f"  both: {analysis['gcode_bytes'] / 1e6:.1f} MB of gcode, {analysis['layer_count']} layers, "
              f"mm per filament {totals}")
    ratio = naive[1] / ours[1]
    print(f"  >= 10x the naive parser     {ratio:5.1f}x (medians)  {naive[0] / ours[0]:5.1f}x (best runs)"
          f"  {naive[2] / ours[2]:5.1f}x (CPU medians)")
    return ratio


def run(repeat: int, files: list[Path] | None = None) -> float:
    """Print the table; return the ratio of medians (naive parser / ``layerwise analyze``) on the first file."""
    print(f"whole processes, {repeat} runs each (wall time: best, median; CPU time: median)")
    print(f"{'':<36} {'best':>9} {'median':>9} {'CPU':>9}")
    helps = {}
    commands = {
        "python -c pass (interpreter start)": ["-c", "pass"],
        "layerwise --help": [*LAYERWISE, "--help"],
        "layerwise analyze --help": [*LAYERWISE, "analyze", "--help"],
    }
    for name, (best, median, cpu, _) in zip(commands, time_commands(list(commands.values()), repeat), strict=True):
        helps[name] = median
        print(f"{name:<36} {best:7.3f} s {median:7.3f} s {cpu:7.3f} s")
    for name in ("layerwise --help", "layerwise analyze --help"):
        print(f"  {name + ' < 0.3 s':<34}{helps[name]:6.3f} s (median)")
    ratios = [compare(path, repeat) for path in files or [largest_print_file()]]
    print(f"{sys.executable} (Python {sys.version.split()[0]}); load average at the end: "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return ratios[0]
