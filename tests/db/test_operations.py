"""Operations: ``layerwise backup`` while the database is in use, its PostgreSQL guidance, and the
upgrade path's refusal of a database from a newer Layerwise."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from server.cli import main
from server.db import SCHEMA_VERSION, open_database, repo
from server.db.migrations import schema_version

PASSWORD = "pg-Secret-77"


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAYERWISE_CONFIG", "LAYERWISE_DATABASE_URL", "LAYERWISE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_backup_while_a_writer_holds_an_open_transaction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with open_database(data) as db:
        for tray in range(4):
            repo.assign_spool(db, "X1C", tray, 10 + tray, "manual")
        # A writer in the middle of a transaction (the server, mid-bill): the copy has what was committed.
        writer = sqlite3.connect(data / "layerwise.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM slot_assignments")
        try:
            assert main(["backup", "--data-dir", str(data), str(tmp_path)]) == 0
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    copies = list(tmp_path.glob("layerwise-*.db"))
    assert len(copies) == 1
    assert f"to {copies[0]}" in capsys.readouterr().out
    with sqlite3.connect(copies[0]) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert schema_version(conn) == SCHEMA_VERSION
    with open_database(copies[0]) as copy:
        assert [(a.tray, a.spool_id) for a in repo.list_assignments(copy)] == [(0, 10), (1, 11), (2, 12), (3, 13)]


def test_backup_never_overwrites_and_needs_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["backup", "--data-dir", str(data), str(tmp_path / "copy.db")]) == 1
    assert "no database at" in capsys.readouterr().err
    open_database(data).close()
    assert main(["backup", "--data-dir", str(data), str(tmp_path / "copy.db")]) == 0
    assert main(["backup", "--data-dir", str(data), str(tmp_path / "copy.db")]) == 1
    assert "exists" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.partial"))


def test_backup_on_postgresql_says_how_with_pg_dump(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERWISE_DATABASE_URL", f"postgresql://layerwise:{PASSWORD}@db.lan:5432/layerwise")
    assert main(["backup", "--data-dir", str(tmp_path), str(tmp_path / "lw.dump")]) == 1  # nothing written
    out = capsys.readouterr().out
    assert f"pg_dump --format=custom --file {tmp_path / 'lw.dump'} 'postgresql://layerwise@db.lan:5432/layerwise'" \
        in out
    assert "pg_restore" in out
    assert PASSWORD not in out
    assert not (tmp_path / "lw.dump").exists()


def test_a_database_from_a_newer_layerwise_stops_the_command_with_both_versions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    open_database(tmp_path).close()
    with sqlite3.connect(tmp_path / "layerwise.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    assert main(["export", "--data-dir", str(tmp_path)]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"layerwise: database schema version {SCHEMA_VERSION + 3} is newer than this Layerwise")
    assert f"schema version {SCHEMA_VERSION})" in line
    with sqlite3.connect(tmp_path / "layerwise.db") as conn:  # untouched
        assert schema_version(conn) == SCHEMA_VERSION + 3
