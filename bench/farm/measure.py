"""What ``bench.farm`` reads about Layerwise from outside (/proc) and from its instruments (server/instruments.py)."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_instruments(path: Path) -> dict[str, Any]:
    """Every sample so far: the instruments append one JSON line of new samples a second (a last line
    still being written is skipped)."""
    readings: dict[str, Any] = {"lag_ms": [], "lag_cpu_ms": [], "commit_ms": []}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return readings
    for line in lines:
        try:
            part = json.loads(line)
        except ValueError:
            continue
        readings["pid"] = part.get("pid")
        for key in ("lag_ms", "lag_cpu_ms", "commit_ms"):
            readings[key].extend(part.get(key, []))
    return readings


def percentile(values: list[float], q: int) -> float | None:
    """The q-th percentile (inclusive method), None without data."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def own_lag(lag_ms: list[float], cpu_ms: list[float]) -> list[float]:
    """Per sample, the part of the loop's lag its own thread's CPU could explain (at most the CPU it used):
    on a machine whose cores other processes hold, the rest of a late wake-up was waiting for a core."""
    return [min(lag, cpu) for lag, cpu in zip(lag_ms, cpu_ms, strict=False)]


@dataclass
class Window:
    """Readings at the start of the measured window, to subtract at its end."""

    cpu: float
    wall: float
    lag_seen: int
    commits_seen: int
