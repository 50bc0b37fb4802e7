"""A step's bills and the job's checkpoint, committed in one transaction.

After a crash either both the bills and the checkpoint's "billed through" mark exist or neither: a
layer is never written twice nor skipped. The ledger adds the bills inside the transaction opened
here (``ledger.add_bills``); the job's row is updated in it too (``store.apply_checkpoint``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from server.billing import ledger
from server.db import Database
from server.jobs.store import apply_checkpoint


def record_bills(
    db: Database,
    job_id: int,
    lines: Sequence[ledger.BillLine],
    trays: Mapping[int, int] | Sequence[int | None],
    *,
    checkpoint: dict[str, Any] | None = None,
    **job_changes: Any,
) -> None:
    """Write the bill lines of one job with its checkpoint (and columns such as ``state``).

    ``trays`` is the job's slicer filament index → global tray as known now, or the tray of each
    line (a tray switch mid-print changes the mapping from a layer on: the tracker resolves it).
    """
    if isinstance(trays, Mapping):
        trays = ledger.trays_of(lines, trays)
    with ledger.write_session(db) as session:
        ledger.fence(db, session, ledger.add_bills(session, job_id, lines, trays))
        if checkpoint is not None or job_changes:
            apply_checkpoint(session, job_id, checkpoint, job_changes)
        session.commit()
