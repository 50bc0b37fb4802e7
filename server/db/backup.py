"""``layerwise backup PATH``: a consistent copy of the SQLite database, safe while Layerwise runs; for
PostgreSQL, the ``pg_dump`` command to use instead (a database server has its own backup tools).

SQLite's online backup API copies the database page by page under a read transaction, so the copy
is the database as of one commit, the ``-wal`` file's commits included; copying the file alone
would miss those.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from server.db.engine import BUSY_TIMEOUT_MS, database_path, masked_url
from server.db.shell import add_data_arguments, server_settings


class BackupError(RuntimeError):
    pass


def target_path(target: Path, now: datetime) -> Path:
    """A directory gets a dated file name; a file name is taken as given."""
    if target.is_dir():
        return target / f"layerwise-{now:%Y%m%d-%H%M%S}.db"
    return target


def backup_sqlite(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` (never over an existing file) and check the copy; returns ``target``."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if target.exists():
        raise BackupError(f"{target} exists: choose a new file name or a directory")
    partial = target.with_name(target.name + ".partial")
    src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_MS / 1000)  # only read (the file exists: checked above)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"the copy in {partial} fails SQLite's quick_check")
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    partial.rename(target)  # appears only once complete
    return target


def pg_dump_guidance(url: str, target: Path) -> str:
    """How to back a PostgreSQL database up: the password stays out of the command line (PGPASSWORD or
    ~/.pgpass), so the URL is shown masked."""
    plain = masked_url(url).replace("postgresql+psycopg://", "postgresql://", 1).replace(":***@", "@")
    return (
        "Layerwise keeps its data in PostgreSQL; back it up with PostgreSQL's own tools, e.g.\n"
        f"  PGPASSWORD=... pg_dump --format=custom --file {target} '{plain}'\n"
        f"and restore with: pg_restore --clean --if-exists --dbname '{plain}' {target}\n"
        "(pg_dump takes a consistent snapshot while Layerwise runs; see docs/deployment.md)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.add_argument("path", type=Path, help="the backup file to write, or a directory for a dated one")


def run(args: argparse.Namespace) -> int:
    server = server_settings(args)
    url = server.database_url_text()
    if url:
        print(pg_dump_guidance(url, args.path))
        return 1  # nothing was written: a script must not take this for a backup
    try:
        written = backup_sqlite(database_path(server.data_dir), target_path(args.path, datetime.now(UTC)))
    except (BackupError, sqlite3.Error, OSError) as exc:
        print(f"layerwise backup: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {database_path(server.data_dir)} to {written}")
    return 0
