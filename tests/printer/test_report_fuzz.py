"""Fuzz of the printer-report path: decode -> clean and merge -> snapshot -> lifecycle events (issue 9).

Inputs are arbitrary JSON, arbitrary bytes, and real captures mutated (wrong types, odd values, missing
keys, extra nesting, cut or garbled text). The path is the one ``PrinterTask`` takes, without its I/O and
without its last-resort ``except``: no exception may escape the pure core itself. After every bad input a
good report follows, and it must be understood: the job goes on to the next layer.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from printer_captures import CAPTURES, load_capture

from server.jobs import lifecycle
from server.jobs.checkpoint import JobCheckpoint, decide_resume
from server.printer.link import decode_payload
from server.printer.snapshot import BLANK, PrinterSnapshot, project_file, snapshot
from server.printer.state import (
    ECHO_FIELDS,
    STATE_FIELDS,
    VERSION_FIELDS,
    Entries,
    Items,
    clean_report,
    clean_state,
    merge_clean,
)
from server.printer.values import OnceLog

AT = datetime(2026, 1, 1, tzinfo=UTC)
RUNNING = [p.name for p in sorted(CAPTURES.glob("push_status_full_*RUNNING*.json"))]
VERSIONS = [p.name for p in sorted(CAPTURES.glob("get_version_*.json"))]
ECHOES = [e for e in load_capture("project_file_command_examples.json").values()
          if isinstance(e, dict) and isinstance(e.get("print"), dict)]
STATE_BOUND = 300_000  # bytes of JSON: far above a real state (~10 KB), far below what junk could make


def _keys(fields: Any, out: set[str]) -> set[str]:
    if isinstance(fields, Entries):
        return _keys(fields.fields, out)
    if isinstance(fields, Items):
        return _keys(fields.of, out)
    if isinstance(fields, dict):
        for key, spec in fields.items():
            out.add(key)
            _keys(spec, out)
    return out


KEYS = sorted(_keys(STATE_FIELDS, set()) | _keys(ECHO_FIELDS, set()) | _keys(VERSION_FIELDS, set()) | {"print"})
ODD = st.sampled_from([
    float("nan"), float("inf"), -float("inf"), 1e308, 10**30, 2**64, -1, -(2**70), 0, True, False, None,
    "", "abc", "255", "0xFF", "1e999", "nan", "9" * 5000, "x" * 5000, [], {}, [[[[[]]]]], {"id": None},
    [{"id": "0"}], [5], {"id": {"x": 1}}, "Metadata/plate_" + "9" * 4000 + ".gcode",
]).map(copy.deepcopy)  # a later mutation may change what it put in: never the shared example
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | ODD
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=5), max_leaves=25)


def _paths(value: Any) -> list[tuple[Any, ...]]:
    """Every path to a node of ``value`` (iteratively: real reports are shallow, but be safe)."""
    out: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        out.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend(((*path, key), child) for key, child in items)
    return out


def _deep(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutated(draw: st.DrawFn, message: dict[str, Any]) -> dict[str, Any]:
    """A real report with one to four of its nodes replaced, removed, wrapped or nested."""
    message = json.loads(json.dumps(message))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(message)))
        if not path:
            continue
        parent: Any = message
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        how = draw(st.sampled_from(["odd", "json", "delete", "wrap_list", "wrap_dict", "nest"]))
        if how == "delete" and isinstance(parent, dict):
            del parent[key]
        elif how == "wrap_list":
            parent[key] = [parent[key]]
        elif how == "wrap_dict":
            parent[key] = {"id": parent[key]}
        elif how == "nest":
            parent[key] = _deep(parent[key], draw(st.sampled_from([5, 40, 3000])))
        else:
            parent[key] = draw(ODD if how == "odd" else JSON)
    return message


def _as_bytes(message: Any) -> bytes | None:
    try:
        return json.dumps(message).encode()
    except (ValueError, RecursionError):  # nested beyond what json can write: fed as an object instead
        return None


@st.composite
def bad_inputs(draw: st.DrawFn) -> bytes | dict[str, Any]:
    """What a broken printer, a broken broker or a hostile client on the LAN could deliver."""
    kind = draw(st.sampled_from(["report", "echo", "version", "arbitrary", "bytes", "garbled", "deep"]))
    if kind == "report":
        message = draw(mutated(load_capture(draw(st.sampled_from(RUNNING)))))
        if draw(st.booleans()):
            message.setdefault("print", {})
            if isinstance(message["print"], dict):
                message["print"]["msg"] = draw(st.sampled_from([0, 1]))
    elif kind == "echo":
        message = draw(mutated(draw(st.sampled_from(ECHOES))))
    elif kind == "version":
        message = draw(mutated(load_capture(draw(st.sampled_from(VERSIONS)))))
    elif kind == "arbitrary":
        command = draw(st.sampled_from(["push_status", "project_file", None]))
        body = draw(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8))
        message = {"print": {**body, **({"command": command} if command else {})}}
    elif kind == "bytes":
        return draw(st.binary(max_size=200))
    elif kind == "deep":
        depth = draw(st.sampled_from([33, 1000, 100_000]))
        return b'{"print":{"command":"push_status","ams":' + b"[" * depth + b"]" * depth + b"}}"
    else:
        text = _as_bytes(load_capture(draw(st.sampled_from(RUNNING)))) or b""
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + draw(st.binary(max_size=20)) + text[cut + draw(st.integers(0, 50)):]
    raw = _as_bytes(message) if draw(st.booleans()) else None
    return raw if raw is not None else message


class Pipeline:
    """``PrinterTask._on_message`` and ``JobTracker.on_update`` without their I/O."""

    def __init__(self) -> None:
        self.once = OnceLog("fuzz")
        self.state: dict[str, Any] = {}
        self.version: dict[str, Any] | None = None
        self.echo: dict[str, Any] | None = None
        self.job: JobCheckpoint | None = None
        self.snapshot: PrinterSnapshot = BLANK

    def feed(self, raw: bytes | dict[str, Any]) -> list[lifecycle.LifecycleEvent]:
        message = decode_payload(raw, self.once) if isinstance(raw, bytes) else raw
        if message is None:
            return []
        info = message.get("info")
        if isinstance(info, dict) and info.get("command") == "get_version":
            self.version = clean_report(info, VERSION_FIELDS)[0]
            self.snapshot = snapshot(self.state, version=self.version, echo=self.echo, once=self.once)
            return []
        body = message.get("print")
        if not isinstance(body, dict):
            return []
        previous = self.snapshot
        if body.get("command") == "project_file":
            self.echo = clean_report(body, ECHO_FIELDS)[0]
            self.snapshot = snapshot(self.state, version=self.version, echo=self.echo, once=self.once)
            events = lifecycle.derive_events(self.job, previous, self.snapshot, project_file(self.echo))
        elif body.get("command") in (None, "push_status"):
            report, problems = clean_report(body)
            self.state = merge_clean(self.state, report, problems)
            self.snapshot = snapshot(self.state, version=self.version, echo=self.echo, report=report, once=self.once)
            events = lifecycle.derive_events(self.job, previous, self.snapshot, None)
        else:
            return []
        for event in events:
            self.job = lifecycle.apply_event(self.job, event, None, printer="fuzz", at=AT).job
        if self.job is not None:
            self.job = lifecycle.observe_trays(self.job, self.snapshot)
            if self.job.open:
                decide_resume(self.job, self.snapshot.status)  # what a restart would decide now
        return events

    def check_state(self) -> None:
        text = json.dumps(self.state, allow_nan=False)  # what SQLite gets: plain JSON, bounded
        assert len(text) < STATE_BOUND
        assert clean_state(self.state) == self.state


def _good_layer(layer: int) -> dict[str, Any]:
    return {"print": {"command": "push_status", "msg": 1, "gcode_state": "RUNNING", "layer_num": layer,
                      "mc_percent": 50}}


def _next_layer(pipeline: Pipeline) -> int:
    seen = [v for v in (pipeline.snapshot.status.layer, pipeline.job.last_layer if pipeline.job else None)
            if v is not None]
    return max([0, *seen]) + 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(start=st.sampled_from(RUNNING), bad=st.lists(bad_inputs(), min_size=1, max_size=4))
def test_bad_reports_never_stop_tracking(start: str, bad: list[bytes | dict[str, Any]]) -> None:
    pipeline = Pipeline()
    pipeline.feed(load_capture(start))
    pipeline.feed(_good_layer(_next_layer(pipeline)))
    assert pipeline.job is not None and pipeline.job.open
    for raw in bad:
        pipeline.feed(raw)
        pipeline.check_state()
        layer = _next_layer(pipeline)
        events = pipeline.feed(_good_layer(layer))
        pipeline.check_state()
        # The good report is understood: the printer is printing this layer, and a job bills it.
        assert pipeline.snapshot.status.gcode_state == "RUNNING" and pipeline.snapshot.status.layer == layer
        assert pipeline.job is not None and pipeline.job.open and pipeline.job.last_layer == layer, events
        assert any(isinstance(e, lifecycle.LayerReached) and e.layer == layer for e in events)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), JSON, max_size=10))
def test_cleaning_any_object_gives_a_clean_bounded_state(body: dict[str, Any]) -> None:
    for fields in (STATE_FIELDS, ECHO_FIELDS, VERSION_FIELDS):
        cleaned, problems = clean_report(body, fields)
        assert clean_report(cleaned, fields)[0] == cleaned  # idempotent: what is kept is kept as it is
        json.dumps(cleaned, allow_nan=False)
        assert len(problems) <= 20
    state = merge_clean(clean_state({}), *clean_report(body))
    for value in _walk_numbers(state):
        assert math.isfinite(value)


def _walk_numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _walk_numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _walk_numbers(v)]
    return [value] if isinstance(value, float) else []
