"""Schema versions as an ordered list of SQL steps, keyed by SQLite's ``PRAGMA user_version``
(on PostgreSQL by the one-row ``schema_version`` table: ``server/db/postgres.py``).

Why not Alembic: Layerwise only ever talks to one SQLite file. A list of SQL steps in
one module needs no ``alembic.ini`` or script directory shipped inside the wheel, no
batch-mode table rebuilds hidden behind an autogenerate diff, and the whole upgrade runs
in one transaction (SQLite's DDL is transactional), so a failed upgrade leaves the file
as it was. The cost, keeping models and SQL in step by hand, is paid by a test:
``tests/db/test_migrations.py`` builds the schema both ways and compares tables,
columns, defaults and indexes.

Adding a table or column (the one place to change, besides the model itself):
1. Change or add the SQLModel class in ``server/db/`` (``models.py`` or a module imported
   from ``server/db/__init__.py``, so the drift test sees the table).
2. Append ``Migration(<next version>, "<what it does>", ("<SQL>", ...))`` to ``MIGRATIONS``
   below; write the DDL the way SQLAlchemy would emit it for the model (``VARCHAR``,
   ``INTEGER``, ``BOOLEAN``, ``DATETIME``; ``server_default`` for columns added with
   ``ALTER TABLE ... ADD COLUMN ... NOT NULL``). ``SCHEMA_VERSION`` follows by itself.
3. Run ``pytest tests/db``: the drift test shows any difference between the two.
Never edit a step that has been released; add a new one.

The steps are written in SQLite's dialect; :func:`for_postgresql` turns them into PostgreSQL's by a
few fixed rules (``DATETIME``, the integer ``id`` keys, the column named ``user``). A step that
needs more gives its PostgreSQL form in ``postgresql``. The drift test runs on both backends.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]
    postgresql: tuple[str, ...] | None = None  # only where the fixed rules of for_postgresql fall short

    def statements_for(self, dialect: str) -> tuple[str, ...]:
        if dialect == "postgresql":
            return self.postgresql if self.postgresql is not None else tuple(map(for_postgresql, self.statements))
        return self.statements


_POSTGRESQL_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # UTCDateTime stores naive UTC, which SQLAlchemy's DateTime is on PostgreSQL too.
    (re.compile(r"\bDATETIME\b"), "TIMESTAMP WITHOUT TIME ZONE"),
    # SQLite's INTEGER PRIMARY KEY numbers rows itself; PostgreSQL needs a sequence (SQLAlchemy: SERIAL).
    (re.compile(r"^(\s*)id INTEGER NOT NULL,", re.MULTILINE), r"\1id SERIAL NOT NULL,"),
    # "user" is a reserved word in PostgreSQL only.
    (re.compile(r'(?<!")\buser\b(?!")'), '"user"'),
)


def for_postgresql(statement: str) -> str:
    for pattern, replacement in _POSTGRESQL_RULES:
        statement = pattern.sub(replacement, statement)
    return statement


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "printers with their last known state; slot assignments",
        (
            """CREATE TABLE printers (
                name VARCHAR NOT NULL,
                serial VARCHAR NOT NULL,
                model VARCHAR,
                state_json VARCHAR DEFAULT '{}' NOT NULL,
                online BOOLEAN DEFAULT '0' NOT NULL,
                last_seen DATETIME,
                updated_at DATETIME NOT NULL,
                PRIMARY KEY (name)
            )""",
            """CREATE TABLE slot_assignments (
                id INTEGER NOT NULL,
                printer VARCHAR NOT NULL,
                tray INTEGER NOT NULL,
                spool_id INTEGER NOT NULL,
                assigned_at DATETIME NOT NULL,
                PRIMARY KEY (id),
                CONSTRAINT uq_slot_assignments_printer_tray UNIQUE (printer, tray)
            )""",
        ),
    ),
    Migration(
        2,
        "where an assignment came from (manual, rfid, env); spool lookup index; meta table",
        (
            "ALTER TABLE slot_assignments ADD COLUMN source VARCHAR DEFAULT 'manual' NOT NULL",
            "CREATE INDEX ix_slot_assignments_spool_id ON slot_assignments (spool_id)",
            """CREATE TABLE meta (
                "key" VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                PRIMARY KEY ("key")
            )""",
        ),
    ),
    Migration(
        3,
        "jobs with their checkpoint; ledger entries; deliveries to Spoolman",
        (
            """CREATE TABLE jobs (
                id INTEGER NOT NULL,
                printer VARCHAR NOT NULL,
                job_key VARCHAR NOT NULL,
                file_name VARCHAR,
                plate INTEGER,
                thumbnail VARCHAR,
                state VARCHAR NOT NULL,
                final BOOLEAN DEFAULT '0' NOT NULL,
                reason VARCHAR,
                checkpoint_json VARCHAR DEFAULT '{}' NOT NULL,
                started_at DATETIME NOT NULL,
                ended_at DATETIME,
                updated_at DATETIME NOT NULL,
                PRIMARY KEY (id)
            )""",
            "CREATE INDEX ix_jobs_printer ON jobs (printer)",
            """CREATE TABLE ledger_deliveries (
                id INTEGER NOT NULL,
                spool_id INTEGER NOT NULL,
                mm FLOAT NOT NULL,
                expected_g FLOAT NOT NULL,
                before_used_weight FLOAT NOT NULL,
                before_last_used VARCHAR,
                state VARCHAR NOT NULL,
                after_used_weight FLOAT,
                note VARCHAR,
                sent_at DATETIME NOT NULL,
                settled_at DATETIME,
                PRIMARY KEY (id)
            )""",
            "CREATE INDEX ix_ledger_deliveries_spool_id ON ledger_deliveries (spool_id)",
            "CREATE INDEX ix_ledger_deliveries_state ON ledger_deliveries (state)",
            """CREATE TABLE ledger_entries (
                id INTEGER NOT NULL,
                job_id INTEGER NOT NULL,
                printer VARCHAR NOT NULL,
                layer INTEGER NOT NULL,
                filament_index INTEGER NOT NULL,
                tray INTEGER,
                spool_id INTEGER,
                mm FLOAT NOT NULL,
                grams FLOAT NOT NULL,
                estimate BOOLEAN DEFAULT '0' NOT NULL,
                state VARCHAR NOT NULL,
                delivery_id INTEGER,
                error VARCHAR,
                created_at DATETIME NOT NULL,
                updated_at DATETIME NOT NULL,
                PRIMARY KEY (id),
                FOREIGN KEY(job_id) REFERENCES jobs (id),
                FOREIGN KEY(delivery_id) REFERENCES ledger_deliveries (id)
            )""",
            "CREATE INDEX ix_ledger_entries_delivery_id ON ledger_entries (delivery_id)",
            "CREATE INDEX ix_ledger_entries_job_id ON ledger_entries (job_id)",
            "CREATE INDEX ix_ledger_entries_spool_id ON ledger_entries (spool_id)",
            "CREATE INDEX ix_ledger_entries_state ON ledger_entries (state)",
        ),
    ),
    Migration(
        4,
        "ledger entries say what they are (bill, or a correction's refund/charge) and name their pair",
        (
            "ALTER TABLE ledger_entries ADD COLUMN kind VARCHAR DEFAULT 'bill' NOT NULL",
            "ALTER TABLE ledger_entries ADD COLUMN pair_id INTEGER",
        ),
    ),
    Migration(
        5,
        "access control: users (Argon2 hashes), sessions and API tokens (SHA-256 of their secrets)",
        (
            """CREATE TABLE users (
                name VARCHAR NOT NULL,
                password_hash VARCHAR NOT NULL,
                created_at DATETIME NOT NULL,
                PRIMARY KEY (name)
            )""",
            """CREATE TABLE auth_sessions (
                id_hash VARCHAR NOT NULL,
                user VARCHAR NOT NULL,
                created_at DATETIME NOT NULL,
                expires_at DATETIME NOT NULL,
                PRIMARY KEY (id_hash)
            )""",
            "CREATE INDEX ix_auth_sessions_user ON auth_sessions (user)",
            """CREATE TABLE api_tokens (
                name VARCHAR NOT NULL,
                token_hash VARCHAR NOT NULL,
                read_only BOOLEAN DEFAULT '0' NOT NULL,
                created_at DATETIME NOT NULL,
                last_used DATETIME,
                PRIMARY KEY (name),
                UNIQUE (token_hash)
            )""",
        ),
    ),
    Migration(
        6,
        "leases: which instance tracks each printer when several share a PostgreSQL database",
        (
            """CREATE TABLE leases (
                resource VARCHAR NOT NULL,
                instance VARCHAR NOT NULL,
                heartbeat DATETIME NOT NULL,
                PRIMARY KEY (resource)
            )""",
        ),
    ),
)

SCHEMA_VERSION: int = MIGRATIONS[-1].version


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Layerwise; refusing to touch it."""


def refuse_newer(found: int) -> None:
    """A database from a newer Layerwise is never touched: a downgrade would lose what it added."""
    if found > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"database schema version {found} is newer than this Layerwise supports (Layerwise {app_version()}, "
            f"schema version {SCHEMA_VERSION}): the database was written by a newer Layerwise; upgrade "
            "Layerwise again, or restore the backup made before the upgrade"
        )


def app_version() -> str:
    try:
        return metadata.version("layerwise")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "(not installed)"


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to ``target`` in one transaction; returns the version it had.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so the explicit
    ``BEGIN IMMEDIATE`` below is the only transaction: it takes the write lock first,
    so two processes starting together cannot both apply a step.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)
        refuse_newer(found)
        for step in MIGRATIONS:
            if found < step.version <= target:
                for statement in step.statements:
                    conn.execute(statement)
        if target > found:
            conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def backup_before_upgrade(conn: sqlite3.Connection, path: Path) -> Path | None:
    """Copy an existing database aside (``<file>.v<old>.bak``) before upgrading it.

    A cheap insurance for the user's slot history; a new, empty database needs none.
    """
    found = schema_version(conn)
    if not 0 < found < SCHEMA_VERSION:
        return None
    backup_path = path.with_name(f"{path.name}.v{found}.bak")
    with sqlite3.connect(backup_path) as target:
        conn.backup(target)
    target.close()
    return backup_path
