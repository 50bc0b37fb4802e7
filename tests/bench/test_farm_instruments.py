"""bench.farm's readings: the instruments inside Layerwise (loop lag, commit times) and /proc figures."""

from __future__ import annotations

import asyncio
import os
import pstats
from pathlib import Path

from bench.farm.measure import cpu_seconds, percentile, read_instruments, rss_mb
from server.db import open_database
from server.db.models import Meta
from server.instruments import Instruments


def test_the_instruments_sample_loop_lag_and_time_every_commit(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    instruments = Instruments(tmp_path / "instruments.json", profile=tmp_path / "loop.pstats")

    def commit() -> None:
        with db.session() as session:
            session.add(Meta(key="bench", value="1"))
            session.commit()

    async def run() -> None:
        task = asyncio.create_task(instruments.run())
        await asyncio.sleep(0.2)
        await asyncio.to_thread(commit)
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    readings = read_instruments(tmp_path / "instruments.json")
    assert readings["pid"] == os.getpid()
    assert len(readings["lag_ms"]) >= 3 and all(lag >= 0 for lag in readings["lag_ms"])
    assert len(readings["lag_cpu_ms"]) == len(readings["lag_ms"]) and min(readings["lag_cpu_ms"]) >= 0
    assert len(readings["commit_ms"]) == 1 and readings["commit_ms"][0] > 0
    assert pstats.Stats(str(tmp_path / "loop.pstats")).total_calls > 0  # the loop's profile, written at the end
    db.close()


def test_a_missing_or_half_written_file_reads_as_no_samples(tmp_path: Path) -> None:
    assert read_instruments(tmp_path / "none.json") == {"lag_ms": [], "lag_cpu_ms": [], "commit_ms": []}
    (tmp_path / "half.json").write_text('{"lag_ms": [1.0, 2')
    assert read_instruments(tmp_path / "half.json")["lag_ms"] == []


def test_proc_figures_and_percentiles() -> None:
    assert cpu_seconds(os.getpid()) > 0 and rss_mb(os.getpid()) > 10
    assert percentile([], 99) is None and percentile([5.0], 99) == 5.0
    assert percentile([float(x) for x in range(1, 101)], 50) == 50.5


def test_each_write_adds_only_the_new_samples_and_a_reader_gets_them_all(tmp_path: Path) -> None:
    instruments = Instruments(tmp_path / "instruments.json")
    instruments.lag_ms += [1.0, 2.0]
    instruments.write()
    instruments.lag_ms.append(3.0)
    instruments.commit_ms.append(4.0)
    instruments.write()
    lines = (tmp_path / "instruments.json").read_text().splitlines()
    assert len(lines) == 2 and '"lag_ms": [3.0]' in lines[1]  # not the first two again
    readings = read_instruments(tmp_path / "instruments.json")
    assert readings["lag_ms"] == [1.0, 2.0, 3.0] and readings["commit_ms"] == [4.0]
