"""The printer as one typed, immutable snapshot, made once per report at the edge. Pure.

The printer task merges each cleaned report into the printer's state (``state.merge_clean``) and turns
the result into a :class:`PrinterSnapshot` here, once; job tracking, slot matching and the pages read
the snapshot's fields and never walk the raw report by path. The ``project_file`` echo (the print
command, which is not printer state) becomes a :class:`ProjectFile`.

Deltas name only what changed, so a snapshot also says which print fields the report that made it
carried (``reported``): after a restart on a printer that gives no full state, only those are news.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from server.printer.state import report_body
from server.printer.trays import (
    EXTERNAL_IDS,
    AmsUnitView,
    PrinterView,
    Trays,
    TrayView,
    decode_legacy,
    mapping_from,
    printer_view,
    resolve_external,
    trays_of,
)
from server.printer.values import OnceLog, as_int, value_at

NO_TRAY = 255  # in `tray_now` / `tray_tar`: nothing loaded (A1/P1/X1 report it mid-change)

# States in which the printer is busy with a print (SLICING: a cloud print being sliced on the printer).
ACTIVE_STATES = frozenset({"PREPARE", "RUNNING", "PAUSE", "SLICING"})
# States whose layer_num is the print's own (in PREPARE it still shows the last print's).
LAYER_STATES = frozenset({"RUNNING", "PAUSE"})
# The print fields of a report that say where a print stands, and which print it is.
PROGRESS_FIELDS = ("gcode_state", "layer_num", "mc_percent", "print_error")
IDENTITY_FIELDS = ("subtask_name", "gcode_file", "task_id", "subtask_id")
REPORT_NAMING = frozenset({"msg", "command", "sequence_id"})  # which report it was, not the printer's state

# A plate number is small: a 5000-digit one would make int() raise (and is no plate).
_PLATE = re.compile(r"plate_(\d{1,6})\.gcode", re.IGNORECASE)


def text(value: Any) -> str | None:
    """A report's text field; any other type (a number, null, a list) counts as missing."""
    return value if isinstance(value, str) and value else None


def task_id(value: Any) -> str | None:
    """Cloud task ids (text or a number); LAN prints send "0", which identifies nothing."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    stripped = str(value).strip()
    return None if stripped in ("", "0") else stripped


def plate_of(path: Any) -> int | None:
    """The plate number of `Metadata/plate_2.gcode` (the echo's `param`, X1/H2 `gcode_file`)."""
    match = _PLATE.search(text(path) or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class PrintStatus:
    """Where the printer's print stands, as far as it has reported."""

    gcode_state: str = ""  # upper case; "" before the printer said
    layer: int | None = None
    total_layers: int | None = None
    percent: int | None = None
    remaining_minutes: int | None = None
    print_error: int | None = None
    subtask_name: str | None = None
    gcode_file: str | None = None
    task_id: str | None = None
    subtask_id: str | None = None

    @property
    def active(self) -> bool:
        return self.gcode_state in ACTIVE_STATES

    @property
    def plate(self) -> int | None:
        return plate_of(self.gcode_file)

    @property
    def named(self) -> str | None:
        """The print's name as the printer gives it (its subtask, else its file)."""
        return self.subtask_name or self.gcode_file


@dataclass(frozen=True)
class PrinterSnapshot:
    """The printer after one report: its print, its AMS units and trays, and what the report carried."""

    status: PrintStatus
    view: PrinterView  # AMS units, trays, the active tray and the job's mapping: what the pages show
    loading_tray: int | None = None  # `ams.tray_tar` (None where it is stale: printers with extruders)
    reports_extruders: bool = False  # H2D, P2S, H2S, A2L: the loaded tray comes from the extruder
    reported_mapping: tuple[int | None, ...] = ()  # the printer's own `mapping` report, trays resolved
    reported: frozenset[str] = field(default_factory=frozenset)  # print fields the report itself carried
    auto_refill: bool | None = None  # AMS backup ("auto refill") on; None where the printer did not say

    @property
    def active_tray(self) -> int | None:
        return self.view.active_tray

    @property
    def units(self) -> list[AmsUnitView]:
        return self.view.units

    @property
    def trays(self) -> list[TrayView]:
        return self.view.trays

    def tray(self, global_index: int) -> TrayView | None:
        return self.view.tray(global_index)


# A report's print field -> the PrintStatus attribute that holds it.
_ATTRIBUTES = {"gcode_state": "gcode_state", "layer_num": "layer", "mc_percent": "percent",
               "print_error": "print_error", "subtask_name": "subtask_name", "gcode_file": "gcode_file",
               "task_id": "task_id", "subtask_id": "subtask_id"}


@dataclass(frozen=True)
class Reported:
    """The print fields the printer's reports named over a span (since a restart, say), each with the
    value it was last reported with; the others stay unset. From deltas this is all that is news."""

    status: PrintStatus = field(default_factory=PrintStatus)
    fields: frozenset[str] = field(default_factory=frozenset)  # report field names, as in ``reported``

    def add(self, shot: PrinterSnapshot) -> Reported:
        """These fields after one more report (its snapshot)."""
        if not shot.reported:
            return self
        news = {_ATTRIBUTES[name]: getattr(shot.status, _ATTRIBUTES[name]) for name in shot.reported}
        return Reported(replace(self.status, **news), self.fields | shot.reported)


# The printer before any report: what a job compares its first snapshot with.
BLANK = PrinterSnapshot(status=PrintStatus(), view=PrinterView(units=[], external=[], active_tray=None))


@dataclass(frozen=True)
class ProjectFile:
    """The `project_file` print command (or its echo): which file, which plate, and the slot mapping
    it states (slicer filament index -> global tray; empty when it states none)."""

    file: str | None
    subtask_name: str | None
    plate: int | None
    task_id: str | None
    subtask_id: str | None
    mapping: dict[int, int]
    name: str | None = None  # what names the print: its subtask, else its file, else its URL


def _status(state: Mapping[str, Any]) -> PrintStatus:
    def number(key: str) -> int | None:
        return as_int(state.get(key))

    return PrintStatus(
        gcode_state=(text(state.get("gcode_state")) or "").upper(),
        layer=number("layer_num"), total_layers=number("total_layer_num"), percent=number("mc_percent"),
        remaining_minutes=number("mc_remaining_time"), print_error=number("print_error"),
        subtask_name=text(state.get("subtask_name")), gcode_file=text(state.get("gcode_file")),
        task_id=task_id(state.get("task_id")), subtask_id=task_id(state.get("subtask_id")),
    )


def _loading_tray(state: Mapping[str, Any], view: PrinterView, extruders: bool) -> int | None:
    if extruders:
        return None  # these printers keep `ams.tray_tar` at a stale value
    tar = as_int(value_at(state, ("ams", "tray_tar")))
    tar = None if tar is None or tar == NO_TRAY else decode_legacy(tar)
    return resolve_external(tar, view.external) if tar in EXTERNAL_IDS else tar  # as `tray_now` is


class TrayMemo:
    """One printer's last trays, and what they were made from. Most reports leave the AMS as it was (a
    delta of temperatures; a full state that repeats it), and comparing its parts costs a fraction of
    building its trays again: measured as the largest cost per report with a farm (bench.farm)."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.made: Trays = ([], [], None)

    def trays(self, state: Mapping[str, Any], version: Mapping[str, Any] | None, once: OnceLog | None) -> Trays:
        # Everything trays_of reads, compared by value (the merge copies, so never by identity).
        key = (state.get("ams"), state.get("vir_slot"), state.get("vt_tray"), value_at(state, ("device", "extruder")),
               version)
        if self.key is None or self.key != key:
            self.key, self.made = key, trays_of(state, version, once)
        units, external, active = self.made
        return list(units), list(external), active  # the views are frozen; the lists each snapshot's own


def _auto_refill(home_flag: Any) -> bool | None:
    """Bit 10 of ``home_flag``: the AMS backup setting (Bambu Studio reads it as ``ams_auto_switch_filament_flag``)."""
    flag = as_int(home_flag)
    return None if flag is None else bool((flag >> 10) & 1)


def reported_fields(report: Mapping[str, Any] | None) -> frozenset[str]:
    """The print fields a cleaned report carried (a snapshot's ``reported``)."""
    return frozenset(key for key in (*PROGRESS_FIELDS, *IDENTITY_FIELDS) if report and key in report)


def same_state(state: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    """Whether two merged states say the same, but for the keys that only name the report (``msg``,
    ``command``, ``sequence_id``): then their snapshots are equal but for ``reported``. Most of a
    printer's reports are such (temperatures, which Layerwise does not read; an X1's full state
    repeated), and this costs a fraction of a snapshot (bench.farm)."""
    if state is before:
        return True
    for key, value in state.items():
        if key not in REPORT_NAMING and (key not in before or (value is not before[key] and value != before[key])):
            return False
    return all(key in state or key in REPORT_NAMING for key in before)


def snapshot(state: Mapping[str, Any], *, version: Mapping[str, Any] | None = None,
             echo: Mapping[str, Any] | None = None, report: Mapping[str, Any] | None = None,
             once: OnceLog | None = None, memo: TrayMemo | None = None) -> PrinterSnapshot:
    """The snapshot of a merged `print` state (+ the `get_version` answer and the job's `project_file`
    echo when known; ``report``: the cleaned report that made this state, for ``reported``; ``memo``:
    the printer's last trays, reused when made from equal parts)."""
    view = printer_view(state, version, echo, once=once,
                        trays=memo.trays(state, version, once) if memo is not None else None)
    # The printer's own `mapping`, apart from the echo's: the echo states the job's, the report may be
    # the last print's until this one's arrives.
    mine = [resolve_external(tray, view.external) for tray in mapping_from(mapping=state.get("mapping"))]
    extruders = isinstance(value_at(state, ("device", "extruder", "info")), list)
    return PrinterSnapshot(
        status=_status(state), view=view, loading_tray=_loading_tray(state, view, extruders),
        reports_extruders=extruders, reported_mapping=tuple(mine),
        reported=reported_fields(report),
        auto_refill=_auto_refill(state.get("home_flag")),
    )


def project_file(echo: Mapping[str, Any], state: Mapping[str, Any] | None = None,
                 once: OnceLog | None = None) -> ProjectFile | None:
    """The typed `project_file` command; None for another command. ``state`` resolves external spool
    ids in the stated mapping against the printer's external holders."""
    body = report_body(echo)
    if body.get("command", "project_file") != "project_file":
        return None
    mapping: dict[int, int] = {}
    if state is not None and (body.get("ams_mapping") or body.get("ams_mapping2")):
        view = printer_view(state, project_file=body, once=once)
        mapping = {index: tray for index, tray in enumerate(view.job_mapping) if tray is not None}
    elif state is None:  # nothing to resolve external ids against: the trays as stated
        stated = mapping_from(body.get("ams_mapping"), body.get("ams_mapping2"))
        mapping = {index: tray for index, tray in enumerate(stated) if tray is not None}
    url, file, subtask = text(body.get("url")), text(body.get("file")), text(body.get("subtask_name"))
    return ProjectFile(
        file=url or file, subtask_name=subtask, plate=plate_of(body.get("param")),
        task_id=task_id(body.get("task_id")), subtask_id=task_id(body.get("subtask_id")), mapping=mapping,
        name=subtask or file or url,
    )
