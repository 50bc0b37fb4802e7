"""One printer-state model, fed by full (``msg: 0``) and delta (``msg: 1``) ``push_status`` reports. Pure.

P1/A1-series printers send only what changed, so reports are merged, never swapped in: a field that a
report leaves out keeps its last value (it never becomes 0 or empty), and fields nobody knows are kept.
Lists of objects with an ``id`` (AMS units, trays, external slots, extruders, nozzles) merge entry by entry;
A1/P1 deltas re-send ``ams`` blocks partially. Two list rules follow what the printers send:

* a tray sent as only ``{"id"}`` is an empty slot, so it replaces what was known about that tray;
* in a full report (``msg: 0``) an id-keyed list is complete, so entries it lacks (an AMS unit unplugged)
  are dropped.

Values of unexpected types (``layer_num: "abc"``) are kept as sent; ``StateReader``'s typed accessors turn
them into None and log each kind once.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

Path = tuple[str | int, ...]


def report_body(report: Mapping[str, Any]) -> dict[str, Any]:
    """The ``print`` object of a report message, or the report itself when already unwrapped."""
    body = report.get("print")
    return dict(body) if isinstance(body, Mapping) else dict(report)


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
            merged[key] = copy.deepcopy(dict(entry))
        else:
            merged[key] = _merge(before, entry, full=full)
    return list(merged.values())


def _merge(old: Any, new: Any, *, full: bool) -> Any:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = dict(old)
        for key, value in new.items():
            out[key] = _merge(old[key], value, full=full) if key in old else copy.deepcopy(value)
        return out
    if _is_id_list(new) and isinstance(old, list):
        return _merge_id_lists(old, new, full=full)
    return copy.deepcopy(new)


def merge_report(state: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
    """The state after ``report`` (a ``push_status`` message or its ``print`` object); inputs are untouched."""
    body = report_body(report)
    return _merge(dict(state), body, full=body.get("msg") == 0)


def value_at(state: Mapping[str, Any], path: Path) -> Any:
    node: Any = state
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                return None
            node = node[step]
        else:
            if not isinstance(node, Mapping) or step not in node:
                return None
            node = node[step]
    return node


def as_int(value: Any) -> int | None:
    """Printers send numbers as ints, floats or strings ("3", "255"); anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            return None
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


class OnceLog:
    """Logs each kind of oddity once per printer, so a misbehaving printer cannot flood the log."""

    def __init__(self, printer: str, logger: logging.Logger | None = None) -> None:
        self.printer = printer
        self.logger = logger or log
        self.seen: set[str] = set()

    def warn(self, kind: str, message: str, *args: Any) -> None:
        if kind in self.seen:
            return
        self.seen.add(kind)
        self.logger.warning("printer %s: " + message + " (logged once)", self.printer, *args)


class StateReader:
    """Typed reads from a merged state: None for missing or ill-typed values, each odd kind logged once."""

    def __init__(self, once: OnceLog) -> None:
        self.once = once

    def _typed(self, state: Mapping[str, Any], path: Path, convert: Any, type_name: str) -> Any:
        raw = value_at(state, path)
        if raw is None:
            return None
        value = convert(raw)
        if value is None:
            name = ".".join(str(p) for p in path)
            self.once.warn(f"type:{name}", "%s is %r, not %s; ignored", name, raw, type_name)
        return value

    def int_at(self, state: Mapping[str, Any], *path: str | int) -> int | None:
        return self._typed(state, path, as_int, "an integer")

    def float_at(self, state: Mapping[str, Any], *path: str | int) -> float | None:
        return self._typed(state, path, as_float, "a number")

    def str_at(self, state: Mapping[str, Any], *path: str | int) -> str | None:
        return self._typed(state, path, lambda v: v if isinstance(v, str) else None, "a string")
