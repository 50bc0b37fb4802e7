"""What the printer's trays say about the current job, report by report: the tray loaded teaches the
mapping learner, a filament continuing from another tray is a switch (its later layers go to the new
tray's spool), and for a job whose file could not be had the AMS's remaining-percent is billed as an
estimate. ``TrayWatch`` keeps one job's tray facts and writes what must outlast a crash (the learned
trays in the checkpoint, the switches beside the job's file) before any layer is billed with them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path

from server.analysis import PrintAnalysis
from server.db import Database
from server.jobs import billed
from server.jobs.checkpoint import JobCheckpoint
from server.jobs.mapping import LAYER_SLACK
from server.jobs.remaining import RemainEstimator
from server.jobs.switches import TraySwitch, TraySwitchTracker
from server.printer.snapshot import PrinterSnapshot
from server.printer.trays import PrinterView
from server.spoolman.directory import SpoolDirectory

log = logging.getLogger(__name__)

SWITCHES_FILE = "tray-switches.json"


class TrayWatch:
    """One printer's current job seen through its trays (tray switches, the filament being fed, the
    remaining-percent estimate); made anew for each job."""

    def __init__(self, printer: str, *, db: Database, spools: SpoolDirectory | None,
                 start: PrinterView | None = None, switches: TraySwitchTracker | None = None) -> None:
        self.printer = printer
        self.db = db
        self.spools = spools
        self.switches = switches or TraySwitchTracker.for_job()  # auto-refill / swapped trays during this job
        self._start_view = start  # the trays when the job started
        self._feeding: int | None = None  # the slicer filament the loaded tray feeds
        self._remain: RemainEstimator | None = None  # only for a job whose file could not be had
        # The inputs and state of the last look that left the switches and the feeding filament as they
        # were: the same again would too (the look is deterministic), so it is skipped (a farm's reports).
        self._settled: tuple[object, ...] | None = None

    def mapping_at(self, layer: int, base: Mapping[int, int]) -> dict[int, int]:
        """Slicer filament -> tray for a layer: the job's mapping with the switches made before it."""
        return self.switches.mapping_at(layer, base)

    async def watch_switches(self, job_dir: Callable[[int], Path], job_id: int, job: JobCheckpoint,
                             analysis: PrintAnalysis | None, shot: PrinterSnapshot) -> TraySwitch | None:
        """A filament continuing from another tray (runout with a backup spool, a swap): its later
        layers go to the new tray's spool. The switch is saved (in ``job_dir(job_id)``, the job's folder)
        before any layer is billed with it."""
        if not job.open or analysis is None or job.last_layer is None:
            return None
        # All this look reads: the job, the analysis, the trays (the loaded one is the view's), and the
        # watch's own state; the view and the job are frozen, so the same objects say the same.
        inputs = (job, analysis, shot.view, self.switches, self._feeding)
        settled = self._settled
        if settled is not None and all(a is b for a, b in zip(inputs, settled, strict=True)):
            return None
        before = (self.switches, self._feeding)
        if self.switches.filaments is None:
            self.switches = replace(self.switches, filaments=frozenset(analysis.filaments))
        tray_now, mapping = shot.active_tray, job.known
        # Which filament is feeding: the one mapped to the loaded tray. A tray no filament maps to is
        # a backup spool, and the AMS only continues from one holding the same material and colour,
        # so that is the filament it stands in for (the gcode shows no change: the firmware did it).
        by_tray = {tray: filament for filament, tray in self.switches.current(mapping).items()}
        if tray_now in by_tray:
            self._feeding = by_tray[tray_now]
        elif tray_now is not None and _printing_unknown_tray(analysis, job.last_layer, mapping):
            # Never guess: a tray no filament maps to, while the file prints a filament whose tray is
            # not known, may well be that filament's. Nothing is inferred; the learner (or a person) says.
            self._feeding = None
        elif tray_now is not None:
            stand_in = _stands_in_for(shot.view, tray_now, by_tray)
            self._feeding = self._feeding if stand_in is None else stand_in
        switches, switch = self.switches.feed(job.last_layer, tray_now, mapping, self._feeding)
        self.switches = switches
        # Settled when nothing moved: a candidate counted, a filament switched, the feeding one changed.
        unmoved = switch is None and (switches, self._feeding) == before
        self._settled = (job, analysis, shot.view, switches, self._feeding) if unmoved else None
        if switch is not None:
            log.info("%s: filament %s switched from tray %s to tray %s at layer %s", self.printer,
                     switch.filament, switch.old_tray, switch.new_tray, switch.from_layer)
            await asyncio.to_thread(_save_switches, job_dir(job_id), switches)
        return switch

    async def estimate_from_remain(self, job_id: int, job: JobCheckpoint, view: PrinterView) -> bool:
        """No sliced file: bill what the AMS's remaining-percent of RFID spools says went, as estimates.
        True when bills were written."""
        if not job.open or job.lifecycle != "untracked":
            self._remain = None
            return False
        if self.spools is None:
            return False
        if self._remain is None:
            self._remain = await RemainEstimator.for_trays(self.db, self.spools, self.printer, view)
            if self._start_view is not None:
                self._remain.tracker.feed(self._start_view)  # the baseline is what the trays held at the start
        lines, mapping = self._remain.bills(view, job, job.last_layer or 0)
        if lines:
            await asyncio.to_thread(billed.record_bills, self.db, job_id, lines, mapping, checkpoint=job.to_dict())
        return bool(lines)


def load_switches(folder: Path) -> TraySwitchTracker:
    """The switches saved for a job (in its folder), after a restart."""
    try:
        data = json.loads((folder / SWITCHES_FILE).read_text("utf-8"))
    except FileNotFoundError:
        return TraySwitchTracker.for_job()
    return TraySwitchTracker.for_job().with_switches(TraySwitch(**item) for item in data)


def _save_switches(folder: Path, switches: TraySwitchTracker) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{SWITCHES_FILE}.part"
    part.write_text(json.dumps([asdict(s) for s in switches.switches]), "utf-8")
    part.replace(folder / SWITCHES_FILE)  # atomic: a crash leaves the old list or the new one


def _printing_unknown_tray(analysis: PrintAnalysis, layer: int, mapping: Mapping[int, int]) -> bool:
    """The file prints, around ``layer``, a filament whose tray is not known (the slicer's layer and the
    printer's may differ by one at a change)."""
    near: set[int] = set()
    for change in analysis.tool_changes:
        if change.layer < layer - LAYER_SLACK:
            near = {change.filament}  # the filament loaded last before the window
        elif change.layer <= layer + LAYER_SLACK:
            near.add(change.filament)
        else:
            break
    return any(filament not in mapping for filament in near)


def _stands_in_for(view: PrinterView, backup: int, by_tray: Mapping[int, int]) -> int | None:
    """The filament whose tray holds the same material and colour as ``backup``, if exactly one does."""
    spare = view.tray(backup)
    if spare is None or not spare.material:
        return None
    same = [filament for tray, filament in by_tray.items()
            if (t := view.tray(tray)) is not None and (t.material, t.color_hex) == (spare.material, spare.color_hex)]
    return same[0] if len(same) == 1 else None
