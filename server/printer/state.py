"""One printer-state model, fed by full (``msg: 0``) and delta (``msg: 1``) ``push_status`` reports. Pure.

Every report is first cleaned against an allow-list of what Layerwise reads (``STATE_FIELDS``, derived from
printer/, jobs/, slots/ and web/): unknown keys are dropped, so the state stays small whatever a printer sends,
and a value of the wrong type (a number where a list of trays belongs, ``layer_num: "abc"``, ``NaN``) is
treated as missing and reported as a ``Problem``. Cleaning follows the allow-list, never the input's own
nesting, so no report can make it recurse deeply.

P1/A1-series printers send only what changed, so deltas are merged: a field that a report leaves out keeps
its last value (it never becomes 0 or empty). A clean full report (``msg: 0``) replaces the state; one with
problems is merged like a delta, so what it failed to state keeps its last good value. Lists of objects
with an ``id`` (AMS units, trays, external slots, extruders) merge entry by entry; A1/P1 deltas re-send
``ams`` blocks partially. Two list rules follow what the printers send:

* a tray sent as only ``{"id"}`` is an empty slot, so it replaces what was known about that tray (an entry
  that is only ``{"id"}`` because cleaning removed the rest says nothing, and is skipped);
* in a full report (``msg: 0``) an id-keyed list is complete, so entries it lacks (an AMS unit unplugged)
  are dropped.
"""

from __future__ import annotations

import marshal
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from server.printer.values import as_float


def report_body(report: Mapping[str, Any]) -> dict[str, Any]:
    """The ``print`` object of a report message, or the report itself when already unwrapped."""
    body = report.get("print")
    return dict(body) if isinstance(body, Mapping) else dict(report)


# ---- the allow-list ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A string, cut at ``limit`` characters."""

    limit: int = 64


@dataclass(frozen=True)
class Number:
    """An int, a finite float, or a string holding one (printers send "254", "0.0")."""


@dataclass(frozen=True)
class Word:
    """A short string or an int: ids, hex codes (``info: "1003"``, ``tray_exist_bits: "f"``)."""


@dataclass(frozen=True)
class Scalar:
    """Any JSON scalar but null (``msg``, ``command``, task ids)."""


@dataclass(frozen=True)
class Items:
    """A list whose positions matter (``mapping``): an entry of the wrong type becomes None."""

    of: Any
    limit: int = 256


@dataclass(frozen=True)
class Entries:
    """A list of objects keyed by ``id`` (units, trays): an entry without a usable id is dropped."""

    fields: Mapping[str, Any]
    limit: int = 8


TEXT, NAME, NUMBER, WORD, SCALAR = Text(), Text(4096), Number(), Word(), Scalar()
_MAX_INT = 2**63  # beyond any counter, layer or error code a printer has

TRAY_FIELDS: dict[str, Any] = {
    "id": WORD, "state": NUMBER, "tray_type": TEXT, "tray_color": TEXT, "tray_sub_brands": TEXT,
    "tray_uuid": TEXT, "tag_uid": TEXT, "remain": NUMBER, "tray_weight": NUMBER, "tray_diameter": NUMBER,
    "tray_info_idx": TEXT,
}
UNIT_FIELDS: dict[str, Any] = {
    "id": WORD, "info": WORD, "temp": NUMBER, "humidity": NUMBER, "humidity_raw": NUMBER,
    "tray": Entries(TRAY_FIELDS, 8),
}
# What Layerwise reads from a merged state (printer/trays.py, jobs/lifecycle.py, jobs/checkpoint.py,
# jobs/mapping.py, jobs/tracker.py; web/ reads only the tray view). A key missing here is dropped from every report.
STATE_FIELDS: dict[str, Any] = {
    "command": SCALAR, "msg": SCALAR, "sequence_id": SCALAR,
    "gcode_state": TEXT, "subtask_name": NAME, "gcode_file": NAME, "task_id": SCALAR, "subtask_id": SCALAR,
    "layer_num": NUMBER, "total_layer_num": NUMBER, "mc_percent": NUMBER, "mc_remaining_time": NUMBER,
    "print_error": NUMBER, "mapping": Items(NUMBER), "home_flag": NUMBER,
    "ams": {"ams": Entries(UNIT_FIELDS, 24), "tray_exist_bits": WORD, "tray_now": NUMBER, "tray_tar": NUMBER},
    "vt_tray": TRAY_FIELDS, "vir_slot": Entries(TRAY_FIELDS, 4),
    "device": {"extruder": {"state": NUMBER, "info": Entries({"id": WORD, "snow": NUMBER}, 4)}},
}
# The ``project_file`` request/echo: what lifecycle.py, jobs.py and mapping.py read (the url may be a
# signed cloud link, hence the long text).
ECHO_FIELDS: dict[str, Any] = {
    "command": SCALAR, "sequence_id": SCALAR, "url": NAME, "file": NAME, "param": NAME, "subtask_name": NAME,
    "task_id": SCALAR, "subtask_id": SCALAR, "project_id": SCALAR, "profile_id": SCALAR, "md5": TEXT,
    "ams_mapping": Items(NUMBER), "ams_mapping2": Items({"ams_id": NUMBER, "slot_id": NUMBER}),
}
# The ``get_version`` answer: trays.version_modules reads the module names and serials.
VERSION_FIELDS: dict[str, Any] = {
    "command": SCALAR, "sequence_id": SCALAR,
    "module": Items({"name": TEXT, "sn": TEXT, "sw_ver": TEXT, "hw_ver": TEXT}, 64),
}


@dataclass(frozen=True)
class Problem:
    """Part of a report that could not be understood and was ignored."""

    kind: str  # the same for every report with this kind of problem: log it once
    text: str  # for people


_MAX_PROBLEMS = 20  # per report: a report full of junk is described, not listed


@dataclass
class _Cleaning:
    full: bool
    problems: list[Problem] = field(default_factory=list)

    def problem(self, path: str, value: Any, expected: str, got: str | None = None) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            got = got or (repr(value) if isinstance(value, float | bool) else type(value).__name__)
            kind = f"{_INDEX.sub('[]', path)}:{got}"
            self.problems.append(Problem(kind, f"{path} is {got}, not {expected}; ignored"))


_INDEX = re.compile(r"\[\d+\]")


_MISSING: Any = object()


def _finite_number(value: Any) -> bool:
    kind = type(value)  # exact types: JSON gives nothing else, and bool is not a number here
    if kind is int:
        return -_MAX_INT < value < _MAX_INT
    if kind is float:
        return math.isfinite(value)
    if kind is str and len(value) <= 64:
        number = as_float(value)
        return number is not None and math.isfinite(number)
    return False


def _clean(value: Any, spec: Any, path: str, job: _Cleaning) -> Any:
    if value is None or (value == "" and not isinstance(spec, Text | Scalar)):
        return _MISSING  # printers say "not set" so (``"ams_mapping": ""``)
    if isinstance(spec, Number):
        if _finite_number(value):
            return value
        job.problem(path, value, "a number")
        return _MISSING
    if isinstance(spec, Text):
        if not isinstance(value, str):
            job.problem(path, value, "a string")
            return _MISSING
        if len(value) > spec.limit:
            job.problem(path, value, f"at most {spec.limit} characters (cut)", f"{len(value)} characters long")
            return value[: spec.limit]
        return value
    if isinstance(spec, Word):
        if (isinstance(value, str) and len(value) <= 64) or (_finite_number(value) and isinstance(value, int)):
            return value
        job.problem(path, value, "an id")
        return _MISSING
    if isinstance(spec, Scalar):
        if isinstance(value, str):
            return value[:256]
        if isinstance(value, bool) or _finite_number(value):
            return value
        job.problem(path, value, "a plain value")
        return _MISSING
    if isinstance(spec, Items):
        if not isinstance(value, list):
            job.problem(path, value, "a list")
            return _MISSING
        out = []
        for i, item in enumerate(value[: spec.limit]):
            cleaned = _clean(item, spec.of, f"{path}[{i}]", job)
            out.append(None if cleaned is _MISSING else cleaned)
        return out
    if isinstance(spec, Entries):
        return _clean_entries(value, spec, path, job)
    return _clean_object(value, spec, path, job)


def _clean_object(value: Any, fields: Mapping[str, Any], path: str, job: _Cleaning) -> Any:
    if not isinstance(value, dict):  # not Mapping: JSON gives dicts, and the ABC check is slow here
        job.problem(path, value, "an object")
        return _MISSING
    out: dict[str, Any] = {}
    for key, spec in fields.items():
        if key in value:
            cleaned = _clean(value[key], spec, f"{path}.{key}" if path else key, job)
            if cleaned is not _MISSING:
                out[key] = cleaned
    # An object left empty by cleaning says nothing (a delta must not wipe what it holds).
    return out if out or not value else _MISSING


def _clean_entries(value: Any, spec: Entries, path: str, job: _Cleaning) -> Any:
    if not isinstance(value, list):
        job.problem(path, value, "a list")
        return _MISSING
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict) or entry.get("id") is None:
            job.problem(where, entry, "an object with an id")
            continue
        cleaned = _clean_object(entry, spec.fields, where, job)
        if cleaned is _MISSING or "id" not in cleaned:
            continue
        if set(cleaned) == {"id"} and set(entry) != {"id"} and not job.full:
            continue  # only the id is left: no news about this entry (a bare {id} would empty the slot)
        if len(out) == spec.limit:
            job.problem(path, value, f"at most {spec.limit} entries (rest ignored)", f"{len(value)} entries")
            break
        out.append(cleaned)
    return out if out or not value else _MISSING


def clean_report(body: Mapping[str, Any], fields: Mapping[str, Any] = STATE_FIELDS) -> tuple[dict[str, Any],
                                                                                              list[Problem]]:
    """What Layerwise reads of a report's ``print`` object (or an echo, a version answer, a stored state),
    with only well-typed values, and the problems met; pure, and never deeper than ``fields``."""
    job = _Cleaning(full=body.get("msg") == 0)
    cleaned = _clean_object(dict(body), fields, "", job)
    return ({} if cleaned is _MISSING else cleaned), job.problems


class CleanMemo:
    """One printer's last report sections (``ams``, ``vt_tray``, ...) as received and as cleaned, so a
    section sent again unchanged is not cleaned again: an X1 sends its full state about once a second,
    mostly repeating the last one but for temperatures, and cleaning it was ~10 % of a farm's CPU (bench.farm).

    A section is recognised by its ``marshal`` bytes, which keep types apart (``1``, ``1.0`` and ``True`` are
    ``==`` but not cleaned alike) and are made in C, several times faster than cleaning; the memo keeps
    bytes, so a caller changing a body afterwards cannot fool it. A reused section comes with its problems,
    and is the same object as last time: cleaned values are never changed in place (``merge_clean``)."""

    def __init__(self, fields: Mapping[str, Any] = STATE_FIELDS) -> None:
        self.fields = fields
        self.sections: dict[str, tuple[bytes, bool, Any, tuple[Problem, ...]]] = {}

    def clean(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """``clean_report(body, fields)``, equal in value and problems."""
        body = dict(body)
        job = _Cleaning(full=body.get("msg") == 0)
        out: dict[str, Any] = {}
        for key, spec in self.fields.items():
            if key not in body:
                continue
            value = body[key]
            if isinstance(value, dict | list):
                cleaned, problems = self._section(key, value, spec, job.full)
                # Each section's problems were capped alone: the report's first ones are the same.
                job.problems.extend(problems[: max(0, _MAX_PROBLEMS - len(job.problems))])
            else:  # a scalar costs less to clean than to recognise
                cleaned = _clean(value, spec, key, job)
            if cleaned is not _MISSING:
                out[key] = cleaned
        return out, job.problems

    def _section(self, key: str, value: Any, spec: Any, full: bool) -> tuple[Any, tuple[Problem, ...]]:
        try:
            raw = marshal.dumps(value)
        except ValueError:  # nested too deep, or not plain JSON: cleaned, not kept
            self.sections.pop(key, None)
            raw = None
        last = self.sections.get(key)
        if last is not None and last[0] == raw and last[1] == full:
            return last[2], last[3]
        job = _Cleaning(full=full)
        cleaned = _clean(value, spec, key, job)
        if raw is not None:
            self.sections[key] = (raw, full, cleaned, tuple(job.problems))
        return cleaned, tuple(job.problems)


def clean_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A stored state (from before this allow-list, or another version) cut to what Layerwise reads."""
    job = _Cleaning(full=True)
    cleaned = _clean_object(dict(state), STATE_FIELDS, "", job)
    return {} if cleaned is _MISSING else cleaned


# ---- merging -------------------------------------------------------------------------------------------------


def _is_id_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, Mapping) and "id" in i for i in value)


def _only_id(entry: Mapping[str, Any]) -> bool:
    return set(entry) == {"id"}


def _merge_id_lists(old: list[Any], new: list[Any], *, full: bool) -> list[Any]:
    merged: dict[str, Any] = {} if full else {str(e["id"]): e for e in old if isinstance(e, Mapping) and "id" in e}
    previous = {str(e["id"]): e for e in old if isinstance(e, Mapping) and "id" in e}
    for entry in new:
        key = str(entry["id"])
        before = previous.get(key)
        if before is None or _only_id(entry):
            merged[key] = entry
        else:
            merged[key] = _merge(before, entry, full=full)
    return list(merged.values())


def _merge(old: Any, new: Any, *, full: bool) -> Any:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = dict(old)
        for key, value in new.items():
            out[key] = _merge(old[key], value, full=full) if key in old else value
        return out
    if _is_id_list(new) and isinstance(old, list):
        return _merge_id_lists(old, new, full=full)
    return new


def merge_clean(state: Mapping[str, Any], body: Mapping[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """The state after a cleaned report body (``clean_report``) on a clean state (``merge_clean``'s or
    ``clean_state``'s); inputs are untouched.

    The result shares the parts that did not change with ``state`` and the new ones with ``body``, never
    copying them: a state and a cleaned body are never changed in place (every step makes new dicts and
    lists), and deep copies of every report were the largest cost per report with a farm (bench.farm).

    A clean full report replaces the state; anything else merges. The parts holding id-keyed lists are
    cleaned again, which bounds lists that deltas grew (new ids accumulate) to the allow-list's limits."""
    if body.get("msg") == 0 and not problems:
        return dict(body)
    merged = _merge(dict(state), body, full=False)
    job = _Cleaning(full=True)
    for key in body:
        spec = STATE_FIELDS.get(key)
        if isinstance(spec, dict | Entries):
            cleaned = _clean(merged[key], spec, key, job)
            if cleaned is _MISSING:
                del merged[key]
            else:
                merged[key] = cleaned
    return merged


def merge_report(state: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
    """The state after ``report`` (a ``push_status`` message or its ``print`` object); inputs are untouched."""
    body, problems = clean_report(report_body(report))
    return merge_clean(state, body, problems)


