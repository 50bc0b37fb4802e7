"""SQLite storage: SQLModel tables, migrations, sessions and plain-value repository functions."""

from server.db import repo
from server.db.auth_tables import ApiTokenRow, SessionRow, UserRow  # noqa: F401  (registers the tables)
from server.db.engine import DB_FILENAME, Database, database_path, open_database
from server.db.ledger_tables import JobRow, LedgerEntry, SpoolDelivery  # noqa: F401  (registers the tables)
from server.db.migrations import SCHEMA_VERSION, SchemaTooNewError
from server.db.models import LeaseRow, Meta, PrinterRow, SlotAssignment  # noqa: F401  (LeaseRow: the table)

__all__ = [
    "DB_FILENAME",
    "SCHEMA_VERSION",
    "Database",
    "Meta",
    "PrinterRow",
    "SchemaTooNewError",
    "SlotAssignment",
    "database_path",
    "open_database",
    "repo",
]
