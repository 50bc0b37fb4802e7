"""Measurements taken inside a running Layerwise, for benchmarks (``bench.farm``).

Off unless ``LAYERWISE_INSTRUMENTS_FILE`` names a file. Then the runtime samples the event loop's lag (how late
a 50 ms sleep wakes up: the time every other task on the loop waited for the one that held it) and times
every SQLite commit, and writes the samples to the file as JSON every second. A benchmark reads them from
outside, since what it wants to know is how late this process's own loop runs, which no outside
observer can see.

``LAYERWISE_PROFILE_FILE`` (also benchmarks only) runs cProfile over the event loop's thread (its CPU time)
while the instruments run and dumps its stats (``pstats`` format) there when the process stops: what costs
the loop its time.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

INSTRUMENTS_ENV = "LAYERWISE_INSTRUMENTS_FILE"
PROFILE_ENV = "LAYERWISE_PROFILE_FILE"
LAG_INTERVAL_S = 0.05
WRITE_INTERVAL_S = 1.0


class Instruments:
    """Collects samples in memory (a benchmark runs minutes: thousands of floats) and writes them out."""

    def __init__(self, path: Path, profile: Path | None = None) -> None:
        self.path = path
        self.profile = profile
        self.lag_ms: list[float] = []
        # Per lag sample, the CPU time the loop's thread used over it: a late wake-up with little CPU
        # of its own was the machine's other processes holding the cores, not this loop's work.
        self.lag_cpu_ms: list[float] = []
        self.commit_ms: list[float] = []
        self._lock = threading.Lock()  # commits happen in worker threads (asyncio.to_thread)
        self._begun: dict[int, float] = {}
        self._written = (0, 0, 0)  # samples of each list already in the file

    def _before_commit(self, session: Session) -> None:
        self._begun[id(session)] = time.perf_counter()

    def _after_commit(self, session: Session) -> None:
        started = self._begun.pop(id(session), None)
        if started is not None:
            with self._lock:
                self.commit_ms.append((time.perf_counter() - started) * 1000)

    def listen(self) -> None:
        # On the Session class: every session of this process, whichever module opened it.
        event.listen(Session, "before_commit", self._before_commit)
        event.listen(Session, "after_commit", self._after_commit)

    def forget(self) -> None:
        event.remove(Session, "before_commit", self._before_commit)
        event.remove(Session, "after_commit", self._after_commit)

    def new_samples(self) -> dict[str, Any]:
        """The samples taken since the last call."""
        with self._lock:
            lag, cpu, commits = self._written
            self._written = (len(self.lag_ms), len(self.lag_cpu_ms), len(self.commit_ms))
            return {"pid": os.getpid(), "lag_ms": self.lag_ms[lag:], "lag_cpu_ms": self.lag_cpu_ms[cpu:],
                    "commit_ms": self.commit_ms[commits:]}

    def write(self) -> None:
        # One JSON line of new samples per write: writing every sample again each second cost the measured
        # process ~1 % of a core by the end of a farm run. A reader skips a line still being written.
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(self.new_samples()) + "\n")

    async def run(self) -> None:
        self.listen()
        # Timed in the thread's CPU time: on a machine shared with busy processes, wall time would charge
        # whichever call was running when the scheduler took the core away.
        profiler = cProfile.Profile(time.thread_time) if self.profile is not None else None
        if profiler is not None:
            profiler.enable()  # this thread only: the loop's, where a slow call makes every other task wait
        loop = asyncio.get_running_loop()
        last_write = loop.time()
        try:
            while True:
                asked, cpu = loop.time(), time.thread_time()
                await asyncio.sleep(LAG_INTERVAL_S)
                now = loop.time()
                self.lag_ms.append(max(0.0, (now - asked - LAG_INTERVAL_S) * 1000))
                self.lag_cpu_ms.append((time.thread_time() - cpu) * 1000)
                if now - last_write >= WRITE_INTERVAL_S:
                    await asyncio.to_thread(self.write)
                    last_write = now
        finally:
            self.forget()
            self.write()
            if profiler is not None and self.profile is not None:
                profiler.disable()
                profiler.dump_stats(self.profile)


def from_environment() -> Instruments | None:
    path, profile = os.environ.get(INSTRUMENTS_ENV), os.environ.get(PROFILE_ENV)
    return Instruments(Path(path), Path(profile) if profile else None) if path else None
