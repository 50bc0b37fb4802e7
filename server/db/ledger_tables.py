"""Tables of the tracking core: jobs (with their checkpoint), ledger entries, and deliveries to Spoolman.

The rules that move rows between states live in ``server/billing/ledger.py`` and
``server/billing/settlement.py``; these are only the shapes.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from server.db.models import UTCDateTime, utcnow


class JobRow(SQLModel, table=True):
    """One print job on one printer, with its latest checkpoint.

    The queryable facts are columns; the full checkpoint (mapping, billed layers, partial
    billing state ...) is the tracking core's own dict, kept as JSON so it can grow
    without a migration.
    """

    __tablename__ = "jobs"

    id: int | None = Field(default=None, primary_key=True)
    printer: str = Field(index=True)
    job_key: str
    file_name: str | None = None
    plate: int | None = None
    thumbnail: str | None = None  # path of the plate's thumbnail inside the data directory
    state: str  # lifecycle state: downloading, printing, finished, failed, cancelled, untracked ...
    final: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    reason: str | None = None  # why untracked / "ended while offline"
    checkpoint_json: str = Field(default="{}", sa_column_kwargs={"server_default": "{}"})
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SpoolDelivery(SQLModel, table=True):
    """One ``PUT /spool/{id}/use`` request: written before it leaves, settled after.

    ``before_used_weight``/``before_last_used`` come from a fresh ``GET`` just before the
    request and ``expected_g`` is what the request adds, so a lost answer can be settled
    by reading the spool again (see ``settlement.settle``).
    """

    __tablename__ = "ledger_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    spool_id: int = Field(index=True)
    mm: float
    expected_g: float
    before_used_weight: float
    before_last_used: str | None = None
    state: str = Field(index=True)  # sending, delivered, not_applied, not_sent, rejected, doubtful
    after_used_weight: float | None = None
    note: str | None = None
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LedgerEntry(SQLModel, table=True):
    """One bill: a layer's filament for one slicer filament index, and where it went."""

    __tablename__ = "ledger_entries"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    printer: str
    layer: int
    filament_index: int
    tray: int | None = None
    spool_id: int | None = Field(default=None, index=True)
    mm: float
    grams: float
    estimate: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    state: str = Field(index=True)
    delivery_id: int | None = Field(default=None, foreign_key="ledger_deliveries.id", index=True)
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Added in schema version 4 (hence last: ADD COLUMN appends). "bill" is a layer's usage; a
    # correction is a "refund" (negative mm) on the spool that was wrongly billed and a "charge" on
    # the right one, each naming the other in ``pair_id``.
    kind: str = Field(default="bill", sa_column_kwargs={"server_default": "bill"})
    pair_id: int | None = None
