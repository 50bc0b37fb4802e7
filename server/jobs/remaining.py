"""The remaining-percent fallback: estimated bills from the AMS's own ``remain`` readings.

When a job's sliced file cannot be obtained there is no per-layer usage to bill. Trays holding a Bambu
spool with an RFID tag still report how much is left (``remain``, 0-100; -1 unknown), so the drop in
``remain`` times the spool's net filament weight is billed instead, marked as an estimate. The AMS counts
in whole percent (10 g steps on a 1 kg spool), so a bill only goes out once the reading moved by more than
``threshold`` points; smaller moves are kept until they add up.

Never billed: a rise (a refill or another spool), an unknown reading, a tray without a tag (its ``remain``
means nothing), and a tray whose spool changed (its tag changed: a new baseline).

``RemainTracker`` (pure) decides when a tagged tray's ``remain`` dropped enough to bill;
``RemainEstimator`` turns its estimates into ledger lines (marked ``estimate``), using the assigned
Spoolman spool's net weight and its filament's density and diameter. Estimates that started before a
restart are not recovered: the tracker starts a new baseline then (it under-bills, it never bills twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from server.analysis.filament import millimetres
from server.billing.rules import BillLine
from server.db import Database, repo
from server.jobs.checkpoint import JobCheckpoint
from server.printer.trays import PrinterView, tray_tag
from server.spoolman import SpoolmanError
from server.spoolman.directory import SpoolDirectory

log = logging.getLogger(__name__)

THRESHOLD_POINTS = 0.5


@dataclass(frozen=True)
class EstimateBill:
    tray: int
    grams: float
    from_percent: float
    to_percent: float
    estimate: bool = True


class RemainTracker:
    """Fed each new view of the printer during a job without a file; returns the bills to make."""

    def __init__(self, net_weight_by_tray: Mapping[int, float], threshold: float = THRESHOLD_POINTS) -> None:
        self.net_weight_by_tray = dict(net_weight_by_tray)
        self.threshold = threshold
        self.baselines: dict[int, tuple[str, float]] = {}  # tray -> (tag, percent last billed up to)

    def feed(self, view: PrinterView) -> list[EstimateBill]:
        bills: list[EstimateBill] = []
        for tray in view.trays:
            index = tray.global_index
            net = self.net_weight_by_tray.get(index)
            tag = tray_tag(tray) if tray.present else None
            if tag is None or net is None or net <= 0:
                self.baselines.pop(index, None)
                continue
            percent = tray.remain_percent
            if percent is None or percent < 0:
                continue  # unknown now: keep the baseline for when it is known again
            before = self.baselines.get(index)
            if before is None or before[0] != tag or percent > before[1]:
                self.baselines[index] = (tag, float(percent))
                continue
            drop = before[1] - percent
            if drop > self.threshold:
                bills.append(EstimateBill(index, round(drop / 100 * net, 2), before[1], float(percent)))
                self.baselines[index] = (tag, float(percent))
        return bills


def drift(spoolman_remaining_g: float | None, ams_remain_percent: float | None,
          net_weight: float | None) -> float | None:
    """Spoolman's remaining weight minus the AMS's estimate, in grams (positive: Spoolman thinks more is
    left); None when either side is unknown."""
    if spoolman_remaining_g is None or ams_remain_percent is None or ams_remain_percent < 0:
        return None
    if net_weight is None or net_weight <= 0:
        return None
    return round(spoolman_remaining_g - ams_remain_percent / 100 * net_weight, 1)


# --- as bills -----------------------------------------------------------------------------------

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
            mm = millimetres(bill.grams, info.diameter, info.density)
            lines.append(BillLine(layer, filament, round(mm, 3), bill.grams, True))
            mapping[filament] = bill.tray
        return lines, mapping
