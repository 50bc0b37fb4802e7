"""``layerwise export``: the ledger as CSV or JSON, one row per entry (a layer's bill for one filament,
or a correction's refund or charge), for spreadsheets and accounting.

Rows are read in one query, oldest first; ``--since`` counts from the entry's creation (UTC).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlmodel import col, select

from server.billing.statements import tray_label
from server.db import Database
from server.db.ledger_tables import JobRow, LedgerEntry, SpoolDelivery
from server.db.shell import add_data_arguments, open_db


@dataclass(frozen=True)
class ExportRow:
    entry_id: int
    created_at: str  # ISO 8601, UTC
    printer: str
    job_id: int
    job_file: str | None
    layer: int
    filament: int  # as the slicer numbers them, from 1
    tray: str | None  # as the printer names it (A1..D4, HT1, External)
    spool_id: int | None
    kind: str  # bill, refund, charge
    mm: float
    grams: float
    estimate: bool
    state: str  # waiting_tray, waiting_spool, ready, sending, delivered, doubtful, rejected
    delivered_at: str | None
    error: str | None


COLUMNS = tuple(f.name for f in fields(ExportRow))


def parse_since(text: str) -> datetime:
    """``2026-11-01`` (midnight UTC) or an ISO 8601 time; a time without an offset is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (2026-11-01) or an ISO 8601 time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ledger_rows(db: Database, since: datetime | None = None) -> list[ExportRow]:
    statement = (
        select(LedgerEntry, JobRow.file_name, SpoolDelivery.settled_at, SpoolDelivery.state)
        .join(JobRow, col(JobRow.id) == col(LedgerEntry.job_id))
        .outerjoin(SpoolDelivery, col(SpoolDelivery.id) == col(LedgerEntry.delivery_id))
        .order_by(col(LedgerEntry.id))
    )
    if since is not None:
        statement = statement.where(col(LedgerEntry.created_at) >= since)
    with db.session() as session:
        return [_row(entry, file_name, settled_at if delivery_state == "delivered" else None)
                for entry, file_name, settled_at, delivery_state in session.exec(statement)]


def _row(entry: LedgerEntry, file_name: str | None, delivered_at: datetime | None) -> ExportRow:
    assert entry.id is not None
    return ExportRow(
        entry.id, entry.created_at.isoformat(), entry.printer, entry.job_id, file_name, entry.layer,
        entry.filament_index + 1, tray_label(entry.tray), entry.spool_id, entry.kind, entry.mm, entry.grams,
        entry.estimate, entry.state, delivered_at.isoformat() if delivered_at else None, entry.error,
    )


def write(rows: Iterable[ExportRow], out: TextIO, fmt: str) -> int:
    """Write the rows as ``csv`` (a header line first) or ``json`` (a list of objects); returns how many."""
    data = [asdict(row) for row in rows]
    if fmt == "json":
        json.dump(data, out, indent=1)
        out.write("\n")
    else:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)
    return len(data)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--since", type=parse_since, metavar="DATE",
                        help="only entries created from then on: 2026-11-01 (UTC) or an ISO 8601 time")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json")
    parser.add_argument("--output", "-o", type=Path, help="write to this file instead of standard output")


def run(args: argparse.Namespace) -> int:
    with open_db(args) as db:
        rows = ledger_rows(db, args.since)
    if args.output is None:
        write(rows, sys.stdout, args.format)
        return 0
    with args.output.open("w", encoding="utf-8", newline="") as out:
        count = write(rows, out, args.format)
    print(f"{count} ledger entries written to {args.output}", file=sys.stderr)
    return 0

