"""Schema upgrades keep data, and the migrations build exactly what the models describe."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel, create_engine

from server.db import SCHEMA_VERSION, SchemaTooNewError, open_database, repo
from server.db.migrations import migrate, schema_version

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "db"


def describe(path: Path) -> dict[str, Any]:
    """Tables with their columns (type, not null, default, pk), indexes and foreign keys."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        schema: dict[str, Any] = {}
        for table in tables:
            columns = {
                name: (kind.upper(), bool(notnull), default, pk)
                for _, name, kind, notnull, default, pk in conn.execute(f"PRAGMA table_info('{table}')")
            }
            indexes = {
                name: (bool(unique), origin, [row[2] for row in conn.execute(f"PRAGMA index_info('{name}')")])
                for _, name, unique, origin, _partial in conn.execute(f"PRAGMA index_list('{table}')")
            }
            foreign_keys = sorted(row[2:5] for row in conn.execute(f"PRAGMA foreign_key_list('{table}')"))
            schema[table] = {"columns": columns, "indexes": indexes, "foreign_keys": foreign_keys}
        return schema
    finally:
        conn.close()


def from_models(tmp_path: Path) -> dict[str, Any]:
    """The schema of every table registered by importing ``server.db``."""
    path = tmp_path / "models.db"
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    return describe(path)


def v1_database(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "layerwise.db"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "layerwise-v1.sql").read_text())
    conn.close()
    return path


def test_new_database_matches_the_models(tmp_path: Path) -> None:
    db = open_database(tmp_path / "data")
    db.close()
    assert describe(db.path) == from_models(tmp_path)


def test_upgrade_from_v1_keeps_the_data(tmp_path: Path) -> None:
    path = v1_database(tmp_path)
    db = open_database(path)
    try:
        assert [(a.printer, a.tray, a.spool_id, a.source) for a in repo.list_assignments(db)] == [
            ("Garage A1", 254, 7, "manual"),
            ("Workshop X1C", 0, 12, "manual"),
            ("Workshop X1C", 1, 13, "manual"),
        ]
        assert repo.get_assignment(db, "Workshop X1C", 1).assigned_at == datetime(  # type: ignore[union-attr]
            2026, 9, 30, 18, 6, tzinfo=UTC
        )
        state, online, last_seen = repo.load_printer_state(db, "Workshop X1C")
        assert state["print"]["gcode_state"] == "IDLE"
        assert online is True
        assert last_seen == datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
        # The new parts work on the upgraded file.
        assert repo.seed_env_mappings(db, "Garage A1", {0: 99}) is True
        assert repo.get_assignment(db, "Garage A1", 0).source == "env"  # type: ignore[union-attr]
    finally:
        db.close()
    assert describe(path) == from_models(tmp_path)
    with sqlite3.connect(path) as conn:
        assert schema_version(conn) == SCHEMA_VERSION
    # The file as it was is kept next to it.
    backup = path.with_name("layerwise.db.v1.bak")
    assert describe(backup) == describe(v1_database(tmp_path / "again"))
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT count(*) FROM slot_assignments").fetchone() == (3,)


def test_migration_step_1_is_the_v1_fixture(tmp_path: Path) -> None:
    path = tmp_path / "step1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 0
    assert schema_version(conn) == 1
    conn.close()
    assert describe(path) == describe(v1_database(tmp_path / "fixture"))


def test_reopening_a_current_database_changes_nothing(tmp_path: Path) -> None:
    open_database(tmp_path).close()
    with open_database(tmp_path) as db:
        repo.assign_spool(db, "P", 3, 5, "manual")
    with open_database(tmp_path) as db:
        assert len(repo.list_assignments(db)) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".bak") == []


def test_database_from_a_newer_layerwise_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "layerwise.db"
    open_database(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNewError, match="newer than this Layerwise supports"):
        open_database(path)


def test_a_failed_upgrade_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = v1_database(tmp_path)
    with sqlite3.connect(path) as conn:  # something in the way of step 2
        conn.execute("CREATE TABLE meta (x INTEGER)")
    before = describe(path)
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        open_database(path)
    assert describe(path) == before
    with sqlite3.connect(path) as conn:
        assert schema_version(conn) == 1


def test_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    with open_database(tmp_path) as db, db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    assert db.path == tmp_path / "layerwise.db"


def test_upgrade_from_v3_makes_every_existing_entry_a_bill(tmp_path: Path) -> None:
    path = tmp_path / "layerwise.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=3)
    conn.execute("INSERT INTO jobs (id, printer, job_key, state, started_at, updated_at) "
                 "VALUES (1, 'P', 'cube', 'finished', '2026-11-01 10:00:00', '2026-11-01 10:00:00')")
    conn.execute("INSERT INTO ledger_entries (job_id, printer, layer, filament_index, tray, spool_id, mm, grams, "
                 "state, created_at, updated_at) VALUES (1, 'P', 3, 0, 0, 7, 12.5, 0.04, 'delivered', "
                 "'2026-11-01 10:00:00', '2026-11-01 10:00:00')")
    conn.close()
    open_database(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT layer, mm, kind, pair_id FROM ledger_entries").fetchall() == [
            (3, 12.5, "bill", None)]
        assert schema_version(conn) == SCHEMA_VERSION
    assert describe(path) == from_models(tmp_path)
