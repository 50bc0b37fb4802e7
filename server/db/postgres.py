"""PostgreSQL's side of the database: the engine, and the migrations' runner with its
``schema_version`` table (SQLite keeps the version in ``PRAGMA user_version``)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from server.db.migrations import MIGRATIONS, SCHEMA_VERSION, refuse_newer

# Advisory lock keys (any 64-bit numbers that no other application on the database uses).
MIGRATION_LOCK_KEY = 0x4C57_0001  # "LW" 1: one instance upgrades at a time
LEDGER_LOCK_KEY = 0x4C57_0002  # the ledger's writers, one at a time (Database.lock_for_writing)

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def postgres_engine(url: str) -> Engine:
    # pre_ping: a connection the server dropped (restart, failover of a managed database) is
    # replaced before use instead of failing the next repository call.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def migrate_postgresql(engine: Engine, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to ``target`` in one transaction (PostgreSQL's DDL is transactional);
    returns the version it had. Instances starting together wait on an advisory lock, so one applies
    each step and the others find it done."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        conn.exec_driver_sql(_VERSION_TABLE)
        row = conn.exec_driver_sql("SELECT version FROM schema_version").first()
        found = int(row[0]) if row is not None else 0
        refuse_newer(found)
        for step in MIGRATIONS:
            if found < step.version <= target:
                for statement in step.statements_for("postgresql"):
                    conn.exec_driver_sql(statement)
        if row is None:
            conn.exec_driver_sql(f"INSERT INTO schema_version (version) VALUES ({int(max(target, found))})")
        elif target > found:
            conn.exec_driver_sql(f"UPDATE schema_version SET version = {int(target)}")
    return found


def schema_version_postgresql(engine: Engine) -> int:
    with engine.connect() as conn:
        conn.exec_driver_sql(_VERSION_TABLE)
        row = conn.exec_driver_sql("SELECT version FROM schema_version").first()
        conn.commit()
    return int(row[0]) if row is not None else 0
