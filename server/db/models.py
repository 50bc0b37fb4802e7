"""SQLModel tables.

A change here needs a matching step in ``server/db/migrations.py``: a test builds the
schema both ways (``SQLModel.metadata.create_all`` and the migrations) and compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones), always handed out as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 text, recursively through dicts and lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


class PrinterRow(SQLModel, table=True):
    """A configured printer and its last known merged state (restored at start-up)."""

    __tablename__ = "printers"

    name: str = Field(primary_key=True)
    serial: str
    model: str | None = None
    state_json: str = Field(default="{}", sa_column_kwargs={"server_default": "{}"})
    online: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlotAssignment(SQLModel, table=True):
    """Which Spoolman spool sits in a printer's tray (global tray index).

    ``printer`` is not a foreign key on purpose: printers come from the configuration, and
    an assignment may be seeded or restored before the printer's row is written.
    """

    __tablename__ = "slot_assignments"
    __table_args__ = (UniqueConstraint("printer", "tray", name="uq_slot_assignments_printer_tray"),)

    id: int | None = Field(default=None, primary_key=True)
    printer: str
    tray: int
    spool_id: int = Field(index=True)
    assigned_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # "manual" | "rfid" | "env"; added in schema version 2, hence its place last (ADD COLUMN appends).
    source: str = Field(default="manual", sa_column_kwargs={"server_default": "manual"})


class Meta(SQLModel, table=True):
    """Small facts about this database, such as ``env_mappings_seeded:<printer>``."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


class LeaseRow(SQLModel, table=True):
    """Who holds what, for people and for counting live instances (several instances on PostgreSQL).

    The lease itself is a PostgreSQL advisory lock held by the instance's connection
    (``server/db/leases.py``); this row only says so, renewed with each heartbeat.
    """

    __tablename__ = "leases"

    resource: str = Field(primary_key=True)  # "instance:<name>", "printer:<name>", "outbox"
    instance: str
    heartbeat: datetime = Field(sa_type=UTCDateTime)
