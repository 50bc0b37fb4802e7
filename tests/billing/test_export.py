"""``layerwise export``: the ledger as CSV or JSON, from a date on, on both backends."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ledger_helpers import Line, assign, new_job
from ledger_rows import ledger_entries

from server.billing import deliveries, ledger
from server.billing.export import COLUMNS, ledger_rows, parse_since
from server.billing.settlement import DELIVERED, SpoolReading
from server.cli import main
from server.db import Database
from server.db.ledger_tables import LedgerEntry


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> None:
    monkeypatch.delenv("LAYERWISE_CONFIG", raising=False)
    if database_url is None:
        monkeypatch.delenv("LAYERWISE_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("LAYERWISE_DATABASE_URL", database_url)


def _ledger(db: Database) -> None:
    """Two layers on tray 0 (spool 7, delivered), one waiting for tray 1's spool; the first bill a week old."""
    assign(db, 0, 7)
    job = new_job(db)
    first = ledger.record_bills(db, job, [Line(1, 0, 10.0, 0.03)], {0: 0, 1: 1})
    ledger.record_bills(db, job, [Line(2, 0, 12.5, 0.04), Line(2, 1, 3.0, 0.01, estimate=True)], {0: 0, 1: 1})
    with db.session() as session:
        row = session.get(LedgerEntry, first[0].id)
        assert row is not None
        row.created_at = datetime.now(UTC) - timedelta(days=7)
        session.add(row)
        session.commit()
    ready = [e.id for e in ledger_entries(db, spool_id=7)]
    sent = deliveries.begin_delivery(db, 7, ready, mm=22.5, expected_g=0.07, before=SpoolReading(0.0, None))
    deliveries.finish_delivery(db, sent.id, DELIVERED, after_used_weight=0.07)


def test_rows_from_a_date_on(db: Database) -> None:
    _ledger(db)
    rows = ledger_rows(db)
    assert [(r.layer, r.filament, r.tray, r.spool_id, r.kind, r.mm, r.state, r.estimate) for r in rows] == [
        (1, 1, "A1", 7, "bill", 10.0, "delivered", False),
        (2, 1, "A1", 7, "bill", 12.5, "delivered", False),
        (2, 2, "A2", None, "bill", 3.0, "waiting_spool", True),
    ]
    assert rows[0].delivered_at is not None and rows[2].delivered_at is None
    assert rows[0].job_file == "cube.gcode.3mf"
    since = ledger_rows(db, datetime.now(UTC) - timedelta(days=1))
    assert [r.layer for r in since] == [2, 2]


def test_cli_csv_and_json(db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _ledger(db)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    data_dir = str(tmp_path)  # ledger_helpers.open_db keeps the SQLite file here
    assert main(["export", "--data-dir", data_dir, "--since", yesterday]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["layer"] for row in table] == ["2", "2"]
    assert tuple(table[0]) == COLUMNS
    out = tmp_path / "ledger.json"
    assert main(["export", "--data-dir", data_dir, "--format", "json", "--output", str(out)]) == 0
    assert "3 ledger entries written" in capsys.readouterr().err
    entries = json.loads(out.read_text())
    assert [(e["layer"], e["spool_id"], e["grams"]) for e in entries] == [(1, 7, 0.03), (2, 7, 0.04), (2, None, 0.01)]


def test_since_takes_a_date_or_a_time() -> None:
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T12:00+02:00") == datetime(2026, 11, 1, 10, tzinfo=UTC)
    with pytest.raises(Exception, match="not a date"):
        parse_since("last week")
