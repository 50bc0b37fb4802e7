"""The remaining-percent fallback as bills: for a job whose sliced file could not be obtained.

``remain.RemainTracker`` decides when a tagged tray's ``remain`` dropped enough to bill; this
turns its estimates into ledger lines (marked ``estimate``), using the assigned Spoolman spool's
net weight and its filament's density and diameter. Estimates that started before a restart are
not recovered: the tracker starts a new baseline then (it under-bills, it never bills twice).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from server.db import Database, repo
from server.printer.trays import PrinterView
from server.spoolman import SpoolmanError
from server.tracking.billing import BillLine
from server.tracking.jobs import JobCheckpoint
from server.tracking.remain import RemainTracker
from server.tracking.spools import SpoolDirectory

log = logging.getLogger(__name__)

# Filament index for a tray whose slicer filament is unknown (no file, no stated mapping).
UNKNOWN_FILAMENT_BASE = 1000


@dataclass
class _Filament:
    density: float
    diameter: float


class RemainEstimator:
    def __init__(self, tracker: RemainTracker, filaments: dict[int, _Filament]) -> None:
        self.tracker = tracker
        self.filaments = filaments

    @classmethod
    async def for_trays(cls, db: Database, spools: SpoolDirectory, printer: str, view: PrinterView) -> RemainEstimator:
        """Net weights of the spools assigned to the printer's tagged trays."""
        weights: dict[int, float] = {}
        filaments: dict[int, _Filament] = {}
        assignments = {a.tray: a.spool_id for a in await asyncio.to_thread(repo.list_assignments, db, printer)}
        for tray in view.trays:
            spool_id = assignments.get(tray.global_index)
            if spool_id is None or not (tray.tray_uuid or tray.tag_uid):
                continue
            try:
                spool = await spools.get(spool_id)
            except SpoolmanError as exc:
                log.warning("%s: no remaining-percent estimates for tray %s: %s", printer, tray.global_index, exc)
                continue
            if spool is None or spool.filament is None:
                continue
            net = spool.initial_weight or spool.filament.weight
            if net:
                weights[tray.global_index] = float(net)
                filaments[tray.global_index] = _Filament(spool.filament.density, spool.filament.diameter)
        return cls(RemainTracker(weights), filaments)

    def bills(self, view: PrinterView, job: JobCheckpoint, layer: int) -> tuple[list[BillLine], dict[int, int]]:
        """Ledger lines for the estimates now due, and the filament→tray mapping to record them with."""
        by_tray = {tray: filament for filament, tray in {**job.learned, **job.mapping}.items()}
        lines: list[BillLine] = []
        mapping: dict[int, int] = {}
        for bill in self.tracker.feed(view):
            filament = by_tray.get(bill.tray, UNKNOWN_FILAMENT_BASE + bill.tray)
            info = self.filaments[bill.tray]
            area = 3.141592653589793 * (info.diameter / 2) ** 2
            mm = bill.grams / (info.density * area) * 1000
            lines.append(BillLine(layer, filament, round(mm, 3), bill.grams, True))
            mapping[filament] = bill.tray
        return lines, mapping
