"""A job's checkpoint and the resume decision after a restart. Pure.

The checkpoint is everything needed to carry on billing a job exactly where it was
left: the file and plate, the mapping (stated and learned), the billing checkpoint and
the lifecycle state. The ledger engineer persists it; this module only decides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from server.billing.rules import BillingCheckpoint
from server.jobs.mapping import MappingLearner
from server.printer.snapshot import PrintStatus, ProjectFile, Reported, task_id, text
from server.printer.values import as_int

FinalState = Literal["finished", "failed", "cancelled"]
# print_error values that mean "the user stopped it" rather than a fault:
# 0x0300400C "The task was canceled.", 0x0500400E "Printing was cancelled."
CANCEL_ERRORS = frozenset({0x0300400C, 0x0500400E})
ENDED_OFFLINE = "ended while offline"

_SUFFIXES = (".gcode.3mf", ".3mf", ".gcode")


def job_name(name: Any) -> str:
    """A print's name without folders and slicer suffixes, so `subtask_name`,
    `gcode_file` and the echo's fields of the same print compare equal."""
    base = (text(name) or "").split("?", 1)[0].replace("\\", "/").rsplit("/", 1)[-1].strip()
    for suffix in _SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


@dataclass(frozen=True)
class JobKey:
    """What identifies one print: its name, plate and (cloud prints) task ids."""

    name: str
    plate: int | None = None
    task_id: str | None = None
    subtask_id: str | None = None

    @classmethod
    def of(cls, status: PrintStatus) -> JobKey:
        """The print the printer's own reports describe."""
        return cls(name=job_name(status.named), plate=status.plate, task_id=status.task_id,
                   subtask_id=status.subtask_id)

    @classmethod
    def from_echo(cls, echo: ProjectFile) -> JobKey:
        """The print a `project_file` echo announces. Only the echo's own fields count:
        the merged state still describes the previous print when it arrives."""
        return cls(name=job_name(echo.name), plate=echo.plate, task_id=echo.task_id, subtask_id=echo.subtask_id)

    def same_print(self, other: JobKey) -> bool:
        """True when both keys can name the same print; unknown parts never disagree."""
        if self.subtask_id and other.subtask_id:
            return self.subtask_id == other.subtask_id
        if self.task_id and other.task_id and self.task_id != other.task_id:
            return False
        if self.plate is not None and other.plate is not None and self.plate != other.plate:
            return False
        return not self.name or not other.name or self.name == other.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "plate": self.plate, "task_id": self.task_id, "subtask_id": self.subtask_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobKey:
        return cls(text(data.get("name")) or "", as_int(data.get("plate")), task_id(data.get("task_id")),
                   task_id(data.get("subtask_id")))


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _int_keys(data: Any) -> dict[int, int]:
    return {int(k): int(v) for k, v in dict(data or {}).items()}


def _str_keys(mapping: Mapping[int, int]) -> dict[str, int]:
    return {str(k): v for k, v in mapping.items()}


@dataclass(frozen=True)
class JobCheckpoint:
    """One job's state, persisted at every transition and every billed layer."""

    printer: str
    key: JobKey
    lifecycle: str = "downloading"  # the job machine's state (machine.JobMachine moves it; only it)
    file_url: str | None = None  # as the printer or the echo gave it
    file_path: str | None = None  # the local copy in the data directory
    sha256: str | None = None
    mapping: Mapping[int, int] = field(default_factory=dict)  # stated: echo or printer report
    # The printer's `mapping` report when the job was picked up mid-print: taken as stated once the
    # file's filament list agrees with it (`lifecycle.with_analysis`).
    reported: Mapping[int, int] = field(default_factory=dict)
    manual: Mapping[int, int] = field(default_factory=dict)  # stated by a person (JobTracker.state_tray)
    learner: MappingLearner = field(default_factory=MappingLearner)  # learns from tray reports
    billing: BillingCheckpoint = field(default_factory=BillingCheckpoint)
    last_layer: int | None = None  # the last `layer_num` seen while printing this job
    last_percent: int | None = None  # the last `mc_percent` seen while printing this job
    announced: bool = False  # a `project_file` echo started it
    started_at: datetime | None = None
    ended_at: datetime | None = None
    final_state: FinalState | None = None
    end_reason: str | None = None  # e.g. "ended while offline", "task cancelled"
    untracked_reason: str | None = None  # why the file could not be obtained or read

    @property
    def open(self) -> bool:
        return self.final_state is None

    @property
    def plate(self) -> int | None:
        return self.key.plate

    @property
    def learned(self) -> dict[int, int]:
        return self.learner.mapping()

    @property
    def known(self) -> dict[int, int]:
        """Slicer filament -> tray as known now: a person's word wins over the printer's, which wins
        over a learned tray."""
        return {**self.learned, **self.mapping, **self.manual}

    def tray_for(self, filament: int) -> int | None:
        return self.known.get(filament)

    def seen(self, layer: int | None, percent: int | None) -> JobCheckpoint:
        """Record the printer's progress; progress never moves backwards here."""
        if layer is None or (self.last_layer is not None and layer < self.last_layer):
            return self
        return replace(self, last_layer=layer, last_percent=percent if percent is not None else self.last_percent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "printer": self.printer,
            "key": self.key.to_dict(),
            "lifecycle": self.lifecycle,
            "file_url": self.file_url,
            "file_path": self.file_path,
            "sha256": self.sha256,
            "mapping": _str_keys(self.mapping),
            "reported": _str_keys(self.reported),
            "manual": _str_keys(self.manual),
            "learner": self.learner.to_dict(),
            "learned": {str(k): v for k, v in self.learned.items()},  # for readers; rebuilt from "learner"
            "billing": self.billing.to_dict(),
            "last_layer": self.last_layer,
            "last_percent": self.last_percent,
            "announced": self.announced,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "final_state": self.final_state,
            "end_reason": self.end_reason,
            "untracked_reason": self.untracked_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobCheckpoint:
        return cls(
            printer=str(data["printer"]),
            key=JobKey.from_dict(data.get("key", {})),
            lifecycle=str(data.get("lifecycle", "downloading")),
            file_url=data.get("file_url"),
            file_path=data.get("file_path"),
            sha256=data.get("sha256"),
            mapping=_int_keys(data.get("mapping")),
            reported=_int_keys(data.get("reported")),
            manual=_int_keys(data.get("manual")),
            learner=MappingLearner.from_dict(data.get("learner") or {}),
            billing=BillingCheckpoint.from_dict(data.get("billing", {})),
            last_layer=as_int(data.get("last_layer")),
            last_percent=as_int(data.get("last_percent")),
            announced=bool(data.get("announced", False)),
            started_at=_time(data.get("started_at")),
            ended_at=_time(data.get("ended_at")),
            final_state=data.get("final_state"),
            end_reason=data.get("end_reason"),
            untracked_reason=data.get("untracked_reason"),
        )


def newly_known(before: JobCheckpoint | None, after: JobCheckpoint) -> dict[int, int]:
    """The filaments whose tray became known (or changed) from one checkpoint to the next: their bills
    written while the tray was unknown wait for it, whoever said it (printer, learner or person)."""
    known = before.known if before is not None else {}
    return {filament: tray for filament, tray in after.known.items() if known.get(filament) != tray}


def is_cancel(print_error: int | None) -> bool:
    return print_error in CANCEL_ERRORS


# ---- resume after a restart ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ContinueSameJob:
    """Same print still running: bill the layers missed while down, then carry on."""

    layer: int | None
    mc_percent: int | None
    paused: bool = False  # the printer reports PAUSE now


@dataclass(frozen=True)
class SettleEndedJob:
    """The job ended while Layerwise was down: FINISH bills all; FAILED bills through
    the last layer known (the printer's, if it still reports this job's, else ours)."""

    final: FinalState
    at_layer: int | None
    mc_percent: int | None


@dataclass(frozen=True)
class CloseAndStartNew:
    """A different job (or none): close the old one as "ended while offline", billed
    through what is known, and start the new one if the printer is printing."""

    start_new: bool
    reason: str = ENDED_OFFLINE


ResumeDecision = ContinueSameJob | SettleEndedJob | CloseAndStartNew


_PLATE_ONLY = re.compile(r"plate_\d+", re.IGNORECASE)


def _renamed(checkpoint: JobCheckpoint, now: JobKey, status: PrintStatus) -> bool:
    """Only the print's name changed (a rename is cosmetic): the same task ids and plate, and the
    printer still prints the job's own file. An X1's `gcode_file` names only the plate, which
    identifies nothing."""
    key = checkpoint.key
    if (key.task_id, key.subtask_id, key.plate) != (now.task_id, now.subtask_id, now.plate):
        return False
    file_now, file_then = job_name(status.gcode_file), job_name(checkpoint.file_url)
    return bool(file_now) and file_now == file_then and not _PLATE_ONLY.fullmatch(file_now)


def decide_resume(checkpoint: JobCheckpoint, status: PrintStatus) -> ResumeDecision:
    """What to do with an open job's checkpoint given where the printer's print stands now."""
    now_printing = status.active
    now_key = JobKey.of(status)
    # A rename only counts as the same print while it prints: settling an ended job on the file's
    # word alone could bill a print that was another one.
    renamed = now_printing and _renamed(checkpoint, now_key, status)
    same = bool(status.named) and (checkpoint.key.same_print(now_key) or renamed)
    if not same:
        return CloseAndStartNew(start_new=now_printing)
    return _decide_same(checkpoint, status, now_key)


def decide_resume_from_reports(checkpoint: JobCheckpoint, reported: Reported) -> ResumeDecision | None:
    """The resume decision from the print fields the printer reported since the restart (its deltas),
    for a printer that gives no full state (it refuses ``pushall``). None while they say nothing about
    progress yet: wait for the next report, never for a full state.

    Deltas name the print only when it changes, so a delta that names none continues the
    checkpoint's print, as long as its layer is not behind the checkpoint's (a print started over
    is another). A layer or percent without ``gcode_state`` is a printer that prints: only a
    running print moves them."""
    if not reported.fields & {"gcode_state", "layer_num", "mc_percent"}:
        return None
    status = reported.status
    if "gcode_state" not in reported.fields:
        status = replace(status, gcode_state="RUNNING")
    if any((status.subtask_name, status.gcode_file, status.task_id, status.subtask_id)):
        return decide_resume(checkpoint, status)
    return _decide_same(checkpoint, status, JobKey(""))


def _decide_same(checkpoint: JobCheckpoint, status: PrintStatus, now_key: JobKey) -> ResumeDecision:
    """The decision for a printer that reports the checkpoint's print (or one it cannot tell apart)."""
    state, layer, percent = status.gcode_state, status.layer, status.percent
    now_printing = status.active
    # A job that never reached a layer, facing a FINISH/FAILED that only its name ties
    # to it, may face the *previous* print of the same file: settling would bill a print
    # that is yet to come. Closing it unbilled is the side that never bills twice.
    unconfirmed = checkpoint.last_layer is None and not (checkpoint.key.subtask_id and now_key.subtask_id)
    behind = layer is not None and checkpoint.last_layer is not None and layer < checkpoint.last_layer
    if now_printing:
        if state in ("PREPARE", "SLICING"):
            # Before RUNNING the printer still shows the previous print's layer.
            return ContinueSameJob(None, None)
        # The same file printed again from the start is a new job, not this one.
        return CloseAndStartNew(start_new=True) if behind else ContinueSameJob(layer, percent, state == "PAUSE")
    if state in ("FINISH", "FAILED") and unconfirmed:
        return CloseAndStartNew(start_new=False)
    if state == "FINISH":
        return SettleEndedJob("finished", layer, percent)
    if state == "FAILED":
        final: FinalState = "cancelled" if is_cancel(status.print_error) else "failed"
        if behind or layer is None:
            return SettleEndedJob(final, checkpoint.last_layer, checkpoint.last_percent)
        return SettleEndedJob(final, layer, percent)
    # IDLE with this job's name still shown, or a state we do not know: it is over.
    return CloseAndStartNew(start_new=False)
