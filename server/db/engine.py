"""The SQLite file: opening, upgrading and sessions."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

from server.db.migrations import SCHEMA_VERSION, backup_before_upgrade, migrate

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


class Database:
    """One SQLite file in WAL mode behind a synchronous SQLModel engine.

    Services call its repository functions through ``asyncio.to_thread``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine: Engine = create_engine(
            f"sqlite:///{path}",
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(self.engine, "connect", _configure_connection)

    def session(self) -> Session:
        """A session to use as a context manager; objects stay readable after commit."""
        return Session(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"


def database_path(data_dir_or_file: Path) -> Path:
    """``<dir>/layerwise.db`` for a directory; the path itself for a ``.db``/``.sqlite`` file."""
    path = Path(data_dir_or_file).expanduser()
    if path.suffix in _DB_SUFFIXES or path.is_file():
        return path
    return path / DB_FILENAME


def open_database(data_dir_or_file: Path) -> Database:
    """Create the data directory if needed, switch to WAL, upgrade to ``SCHEMA_VERSION``."""
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
