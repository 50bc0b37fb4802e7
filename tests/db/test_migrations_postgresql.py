"""The same migrations on PostgreSQL: they build what the models describe, upgrade in steps, refuse
a database from a newer Layerwise, and two instances starting together apply each step once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from server.db import SCHEMA_VERSION, SchemaTooNewError, open_database, repo
from server.db.postgres import migrate_postgresql, schema_version_postgresql
from tests.pgcluster import new_schema_url


@pytest.fixture
def url(postgres_server: str) -> str:
    return new_schema_url(postgres_server)


def describe(url: str) -> dict[str, Any]:
    """Tables with their columns (type, nullable, default), primary keys, indexes, uniques and foreign keys."""
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        schema: dict[str, Any] = {}
        for table in sorted(set(inspector.get_table_names()) - {"schema_version"}):
            columns = {c["name"]: (str(c["type"]), c["nullable"], c["default"]) for c in inspector.get_columns(table)}
            indexes = sorted((i["name"], tuple(i["column_names"]), i["unique"]) for i in inspector.get_indexes(table))
            uniques = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
            foreign = inspector.get_foreign_keys(table)
            keys = sorted((tuple(f["constrained_columns"]), f["referred_table"]) for f in foreign)
            pk = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
            schema[table] = {"columns": columns, "pk": pk, "indexes": indexes, "uniques": uniques, "fks": keys}
        return schema
    finally:
        engine.dispose()


def test_new_database_matches_the_models(url: str, postgres_server: str, tmp_path: Path) -> None:
    open_database(tmp_path, url).close()
    models = new_schema_url(postgres_server)
    engine = create_engine(models)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    assert describe(url) == describe(models)


def test_upgrade_in_steps_keeps_the_data(url: str, tmp_path: Path) -> None:
    engine = create_engine(url)
    assert migrate_postgresql(engine, target=3) == 0
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO jobs (printer, job_key, state, started_at, updated_at) "
                             "VALUES ('P', 'cube', 'finished', '2026-11-01 10:00', '2026-11-01 10:00')")
        conn.exec_driver_sql("INSERT INTO ledger_entries (job_id, printer, layer, filament_index, tray, spool_id, "
                             "mm, grams, state, created_at, updated_at) VALUES (1, 'P', 3, 0, 0, 7, 12.5, 0.04, "
                             "'delivered', '2026-11-01 10:00', '2026-11-01 10:00')")
    engine.dispose()
    with open_database(tmp_path, url) as db, db.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT layer, mm, kind, pair_id FROM ledger_entries").all()
        assert [tuple(row) for row in rows] == [(3, 12.5, "bill", None)]
        assert schema_version_postgresql(db.engine) == SCHEMA_VERSION


def test_database_from_a_newer_layerwise_is_refused(url: str, tmp_path: Path) -> None:
    open_database(tmp_path, url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    engine.dispose()
    with pytest.raises(SchemaTooNewError, match=f"version {SCHEMA_VERSION + 1} is newer .* schema version "
                                                 f"{SCHEMA_VERSION}"):
        open_database(tmp_path, url)


def test_instances_starting_together_upgrade_once(url: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_database(tmp_path, url).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with open_database(tmp_path, url) as db:
        repo.set_meta(db, "k", "v")
        assert repo.get_meta(db, "k") == "v"
        assert schema_version_postgresql(db.engine) == SCHEMA_VERSION


def test_the_password_is_never_shown(postgres_server: str, tmp_path: Path) -> None:
    secret_url = postgres_server.replace("layerwise@", "layerwise:s3cret-pw@")  # trust auth ignores it
    with open_database(tmp_path, new_schema_url(secret_url)) as db:
        assert "s3cret-pw" not in repr(db)
        assert "s3cret-pw" not in db.describe()
