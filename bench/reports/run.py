"""What reading a large ledger costs ``/metrics`` and ``/reports``, one command: ``python -m bench.reports``.

A SQLite ledger in a temporary folder with a heavy year: 260 prints of 192 layers x 4 filaments (about
200,000 entries, 6 hours a print, 60 spools, three printers). Timed: the ledger's figures for a scrape
(``ledger_figures`` and the whole exposition) and the usage report of the year per spool and day, week,
month (``usage_entries`` + ``aggregate``). Exits 0 when a scrape takes under 2 s and a report under 3 s.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from server.billing import usage
from server.billing.figures import ledger_figures
from server.db import open_database
from server.db.ledger_tables import JobRow, LedgerEntry
from server.metrics import Metrics, ledger_families

SCRAPE_TARGET_S, REPORT_TARGET_S = 2.0, 3.0


def fill(folder: Path, prints: int) -> object:
    db = open_database(folder)
    now = datetime.now(UTC)
    rng = random.Random(1)
    with db.session() as session:
        for job in range(prints):
            session.add(JobRow(printer="X1C", job_key=f"bench#{job}", state="finished"))
        session.commit()
        rows = []
        for job in range(prints):
            started = now - timedelta(hours=job * 33.7)
            spools = rng.sample(range(1, 61), 4)
            for layer in range(192):
                rows += [{"job_id": job + 1, "printer": ("X1C", "A1", "P1S")[job % 3], "layer": layer,
                          "filament_index": f, "tray": f, "spool_id": spools[f], "mm": 10.0, "grams": 0.03,
                          "state": "delivered", "created_at": started + timedelta(minutes=2 * layer),
                          "updated_at": now, "kind": "bill"} for f in range(4)]
        session.execute(insert(LedgerEntry), rows)
        session.commit()
    return db


def timed(what: str, call: object) -> float:
    assert callable(call)
    start = time.perf_counter()
    result = call()
    spent = time.perf_counter() - start
    print(f"{what:<44} {spent * 1000:8.0f} ms  ({result})")
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports")
    parser.add_argument("--prints", type=int, default=260)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        db = fill(Path(folder), args.prints)
        print(f"ledger: {args.prints * 192 * 4} entries")
        metrics = Metrics()
        metrics.add_source(lambda: ledger_families(ledger_figures(db)))  # type: ignore[arg-type]
        worst_scrape = max(timed("ledger figures", lambda: f"{len(ledger_figures(db).bills)} groups"),  # type: ignore[arg-type]
                           timed("whole scrape", lambda: f"{len(metrics.exposition())} bytes"))
        today = datetime.now(UTC).date()
        worst_report = 0.0
        for period in usage.Period:
            def report(period: usage.Period = period) -> str:
                entries = usage.usage_entries(db, today - timedelta(days=365), today, period)  # type: ignore[arg-type]
                return f"{len(usage.aggregate(entries, {}, usage.Group.SPOOL, period))} rows from {len(entries)} sums"
            worst_report = max(worst_report, timed(f"year report per spool and {period}", report))
        db.close()  # type: ignore[attr-defined]
    ok = worst_scrape < SCRAPE_TARGET_S and worst_report < REPORT_TARGET_S
    print(f"targets: scrape < {SCRAPE_TARGET_S:g} s, report < {REPORT_TARGET_S:g} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
