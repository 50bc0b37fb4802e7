"""The database: an SQLite file (the default) or PostgreSQL (``[server] database_url``); opening,
upgrading, sessions and the one write lock the ledger relies on."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlmodel import Session

from server.db.migrations import SCHEMA_VERSION, backup_before_upgrade, migrate
from server.db.postgres import LEDGER_LOCK_KEY, migrate_postgresql, postgres_engine

log = logging.getLogger(__name__)

DB_FILENAME = "layerwise.db"
BUSY_TIMEOUT_MS = 10_000  # writers wait this long for each other instead of failing at once
_DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _configure_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # synchronous stays FULL (the default): a ledger row must survive a power cut once
    # committed, because Spoolman is told about it right after.
    cursor.close()


def masked_url(url: str) -> str:
    """The URL with its password hidden: safe for logs, pages and ``layerwise check``."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """An SQLite file in WAL mode, or a PostgreSQL database, behind a synchronous SQLModel engine.

    Services call its repository functions through ``asyncio.to_thread``.
    """

    def __init__(self, path: Path | None = None, *, url: str | None = None) -> None:
        # Several instances on PostgreSQL: called inside each bill-writing transaction with the printer,
        # raises when this instance no longer holds that printer's lease (Runtime sets it).
        self.fence: Callable[[Session, str], None] | None = None
        if (path is None) == (url is None):
            raise ValueError("a Database is either an SQLite path or a PostgreSQL URL")
        self.path = path
        self.url = url
        if url is not None:
            self.engine: Engine = postgres_engine(url)
            self.dialect = "postgresql"
        else:
            self.engine = create_engine(
                f"sqlite:///{path}",
                connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            )
            event.listen(self.engine, "connect", _configure_connection)
            self.dialect = "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def session(self) -> Session:
        """A session to use as a context manager; objects stay readable after commit."""
        return Session(self.engine, expire_on_commit=False)

    def insert(self, table: Any) -> Any:
        """``INSERT`` with ``on_conflict_do_update``/``_nothing`` in this database's dialect (both have it)."""
        return (postgresql.insert if self.is_postgresql else sqlite.insert)(table)

    def lock_for_writing(self, session: Session) -> None:
        """Make the session's transaction the only ledger writer until it ends, before its first read.

        SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock. PostgreSQL: a transaction-scoped
        advisory lock that every ledger writer takes, so they run one at a time just as on SQLite.
        Row locks (``SELECT ... FOR UPDATE``) would not do: the reads that decide a bill's state
        include rows that may not exist yet (a tray with no assignment), and PostgreSQL cannot lock
        an absent row; ``SERIALIZABLE`` would need every caller to retry its whole transaction.
        The lock ends with the transaction (commit, rollback or a dropped connection).
        """
        if self.is_postgresql:
            session.connection().exec_driver_sql(f"SELECT pg_advisory_xact_lock({LEDGER_LOCK_KEY})")
        else:
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")

    def describe(self) -> str:
        """Where the data is, for people: the file, or the URL without its password."""
        return masked_url(self.url) if self.url is not None else str(self.path)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.describe()!r})"


def database_path(data_dir_or_file: Path) -> Path:
    """``<dir>/layerwise.db`` for a directory; the path itself for a ``.db``/``.sqlite`` file."""
    path = Path(data_dir_or_file).expanduser()
    if path.suffix in _DB_SUFFIXES or path.is_file():
        return path
    return path / DB_FILENAME


def open_database(data_dir_or_file: Path, url: str | None = None) -> Database:
    """Open and upgrade to ``SCHEMA_VERSION``: PostgreSQL at ``url`` when given, else the SQLite file
    in the data directory (created if need be, switched to WAL)."""
    if url:
        db = Database(url=url)
        try:
            found = migrate_postgresql(db.engine)
        except BaseException:
            db.close()
            raise
        if found != SCHEMA_VERSION:
            log.info("database %s upgraded from schema %d to %d", db.describe(), found, SCHEMA_VERSION)
        return db
    path = database_path(data_dir_or_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        # WAL is a property of the file: set once, every later connection gets it.
        conn.execute("PRAGMA journal_mode = WAL")
        backup = backup_before_upgrade(conn, path)
        found = migrate(conn)
    finally:
        conn.close()
    if found != SCHEMA_VERSION:
        extra = f" (previous file kept as {backup.name})" if backup else ""
        log.info("database %s upgraded from schema %d to %d%s", path, found, SCHEMA_VERSION, extra)
    return Database(path)
