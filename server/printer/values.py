"""Reading a merged state: typed values at a path (printers send numbers as ints, floats or text), and a
log that tells each kind of oddity once per printer."""

from __future__ import annotations

import logging
import reprlib
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

Path = tuple[str | int, ...]


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
    """Logs each kind of oddity once per printer, so a misbehaving printer cannot flood the log.

    Kinds may be built from what a printer sent, so their number and the lines' length are bounded."""

    MAX_KINDS = 200
    MAX_LINE = 400

    def __init__(self, printer: str, logger: logging.Logger | None = None) -> None:
        self.printer = printer
        self.logger = logger or log
        self.seen: set[str] = set()

    def warn(self, kind: str, message: str, *args: Any, exc_info: BaseException | None = None) -> None:
        kind = kind[:200]
        if kind in self.seen:
            return
        if len(self.seen) >= self.MAX_KINDS:
            kind, message, args, exc_info = "(too many)", "too many kinds of odd reports; no more are logged", (), None
            if kind in self.seen:
                return
        self.seen.add(kind)
        text = message % args if args else message
        if len(text) > self.MAX_LINE:
            text = text[: self.MAX_LINE] + "..."
        self.logger.warning("printer %s: %s (logged once)", self.printer, text, exc_info=exc_info)


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
            self.once.warn(f"type:{name}", "%s is %s, not %s; ignored", name, reprlib.repr(raw), type_name)
        return value

    def int_at(self, state: Mapping[str, Any], *path: str | int) -> int | None:
        return self._typed(state, path, as_int, "an integer")

    def float_at(self, state: Mapping[str, Any], *path: str | int) -> float | None:
        return self._typed(state, path, as_float, "a number")

    def str_at(self, state: Mapping[str, Any], *path: str | int) -> str | None:
        return self._typed(state, path, lambda v: v if isinstance(v, str) else None, "a string")
