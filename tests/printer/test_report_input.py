"""Bad printer reports never stop tracking: issue 9, items 9 (malformed), 11 (deep nesting), 12 (growth)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from printer_captures import CAPTURES, load_capture

from server.config import PrinterConfig, ServerConfig, Settings
from server.db import repo
from server.printer.link import decode_payload, nesting_depth
from server.printer.state import ECHO_FIELDS, VERSION_FIELDS, clean_report, merge_report
from server.printer.task import PrinterTask
from server.printer.trays import printer_view, version_modules
from server.printer.values import OnceLog
from server.runtime import Runtime, printer_task

# The report from the issue: `tray` is a number where a list of trays belongs.
ITEM_9 = {"print": {"command": "push_status", "msg": 1, "ams": {"ams": [{"id": "0", "tray": 5}]}}}
FULL = "push_status_full_P1P_msg0_FAILED_amsstatus_vt_tray.json"


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": [value]}
    return value


def _task(tmp_path: Path) -> PrinterTask:
    settings = Settings(server=ServerConfig(data_dir=tmp_path), printers=(
        PrinterConfig(name="p", host="127.0.0.1", serial="00M00A000000000", access_code="12345678",
                      mqtt_port=1, ftps_port=1),))
    return Runtime.build(settings).printers["p"]


def test_item9_malformed_tray_list_keeps_the_last_good_trays() -> None:
    state = merge_report({}, load_capture(FULL))
    before = printer_view(state)
    after = merge_report(state, ITEM_9)
    assert printer_view(after).units == before.units


@pytest.mark.parametrize("ams", [
    {"ams": [{"id": "0", "tray": 5}]},
    {"ams": [{"id": "0", "tray": [5, "x", None, {"id": {"x": 1}}]}]},
    {"ams": [{"id": [], "tray": {}}, 7, None]},
    {"ams": {"id": "0"}, "tray_exist_bits": 12, "tray_now": {"x": 1}},
])
def test_item9_tray_view_tolerates_any_shape(ams: dict[str, Any]) -> None:
    """The view reads states that were never cleaned too (mapping.py, tests): no shape may raise."""
    view = printer_view({"ams": ams, "vir_slot": 3, "vt_tray": [1], "device": {"extruder": {"info": 4}}})
    assert view.units == [] or all(u.trays == [] for u in view.units)


async def test_item9_printer_task_drops_the_report_and_keeps_tracking(tmp_path: Path) -> None:
    task = _task(tmp_path)
    await task._on_message(load_capture(FULL))
    good = task.view()
    await task._on_message(ITEM_9)
    assert task.view().units == good.units  # the view is served, from the last good state
    assert task.last_report_error is not None and "tray" in task.last_report_error
    await task._on_message({"print": {"command": "push_status", "msg": 1, "layer_num": 7}})
    assert task.view().layer_num == 7  # the next report is understood


async def test_the_pages_read_the_reports_snapshot_and_build_no_view_of_their_own(tmp_path: Path) -> None:
    task = _task(tmp_path)
    await task._on_message(load_capture(FULL))
    assert task.view() is task.snapshot.view  # made once, by the report
    assert task.snapshot.status.gcode_state == "FAILED" and "gcode_state" in task.snapshot.reported
    echo = {"print": {"command": "project_file", "url": "ftp:///cube.gcode.3mf", "ams_mapping": [2]}}
    await task._on_message(echo)
    assert task.view().job_mapping == [2] and task.snapshot.reported == frozenset()  # the echo reports no field


def test_item11_deep_json_is_refused_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    once = OnceLog("p")
    with caplog.at_level(logging.DEBUG):
        for raw in ("[" * 100_000 + "]" * 100_000, '{"print":' * 50_000 + "1" + "}" * 50_000,
                    json.dumps({"print": _deep(200)})):
            assert decode_payload(raw, once) is None
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is None
    assert len(caplog.records[0].getMessage().splitlines()) == 1


def test_item11_deep_values_never_reach_a_recursion_error() -> None:
    """A decoded report (e.g. from the sim or a test) nested beyond the recursion limit merges cleanly."""
    state = merge_report({}, load_capture(FULL))
    after = merge_report(state, {"print": {"msg": 1, "layer_num": 3, "ams": _deep(5_000)}})
    assert after["layer_num"] == 3
    printer_view(after)


def test_item12_full_report_replaces_and_unknown_keys_are_not_kept() -> None:
    junk = {f"unknown_{i}": "x" * 1000 for i in range(200)}
    state = merge_report({}, {"print": {"msg": 0, **junk, "gcode_state": "IDLE"}})
    state = merge_report(state, {"print": {"msg": 1, "more_junk": ["y" * 1000] * 200}})
    assert len(json.dumps(state)) < 1000
    state = merge_report(state, load_capture(FULL))
    assert set(state) <= set(load_capture(FULL)["print"])


def test_item12_state_stays_bounded_under_hostile_deltas() -> None:
    state = merge_report({}, load_capture(FULL))
    for n in range(20):
        units = [{"id": str(i), "tray": [{"id": str(j), "tray_type": "z" * 5000} for j in range(50)]}
                 for i in range(n * 50, n * 50 + 50)]
        state = merge_report(state, {"print": {"msg": 1, "subtask_name": "s" * 100_000, "ams": {"ams": units}}})
    assert len(json.dumps(state)) < 400_000


def test_item12_absurdly_large_message_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    once = OnceLog("p")
    huge = json.dumps({"print": {"command": "push_status", "msg": 1, "junk": "x" * 3_000_000}})
    with caplog.at_level(logging.WARNING):
        assert decode_payload(huge, once) is None
        assert decode_payload(huge, once) is None
    assert len(caplog.records) == 1
    assert decode_payload(json.dumps(load_capture(FULL)), once) is not None


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.json")
                                        if p.name.startswith(("push_status_full_", "get_version_"))))
def test_real_captures_clean_without_problems_and_view_the_same(name: str) -> None:
    """The allow-list drops nothing any view reads: every real capture reads exactly as before."""
    message = load_capture(name)
    if name.startswith("get_version_"):
        version, problems = clean_report(message["info"], VERSION_FIELDS)
        assert problems == [] and version_modules(version) == version_modules(message)
        return
    body, problems = clean_report(message["print"])
    assert problems == []
    assert printer_view(merge_report({}, message)) == printer_view(message["print"])
    assert len(json.dumps(body)) < len(json.dumps(message))


def test_echo_examples_clean_without_problems() -> None:
    for example in load_capture("project_file_command_examples.json").values():
        if isinstance(example, dict) and isinstance(example.get("print"), dict):
            echo, problems = clean_report(example["print"], ECHO_FIELDS)
            assert problems == []
            assert printer_view({}, project_file=echo).job_mapping == printer_view(
                {}, project_file=example["print"]).job_mapping


def test_a_stored_state_from_before_is_cleaned_at_start(tmp_path: Path) -> None:
    """A snapshot saved by an older version may hold the issue's report and junk: the task starts clean."""
    task = _task(tmp_path)
    stored = merge_report({}, load_capture(FULL))
    stored["ams"]["ams"][0]["tray"] = 5
    stored["junk"] = "x" * 100_000
    repo.save_printer_state(task.db, "p", stored, False, None)
    again = printer_task(task.config, db=task.db, bus=task.bus, data_dir=tmp_path)
    assert "junk" not in again.state and "tray" not in again.state["ams"]["ams"][0]
    assert again.view().gcode_state == "FAILED"


def test_once_log_stays_bounded(caplog: pytest.LogCaptureFixture) -> None:
    once = OnceLog("p")
    with caplog.at_level(logging.WARNING):
        for i in range(1000):
            once.warn(f"kind-{i}-" + "k" * 1000, "odd value %s", "v" * 10_000)
    assert len(once.seen) <= OnceLog.MAX_KINDS + 1
    assert len(caplog.records) == OnceLog.MAX_KINDS + 1  # the last says no more are logged
    assert max(len(r.getMessage()) for r in caplog.records) < 600


def _parsed_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_parsed_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_parsed_depth, value), default=0)
    return 0


# Strings full of what could fool a count of brackets: quotes, backslashes and brackets, escaped or not.
# (json.dumps escapes them: a raw backslash before a quote becomes \\\", the case a plain scan gets wrong.)
_TRICKY = st.text(alphabet=st.sampled_from(['"', "\\", "[", "]", "{", "}", "a", "\n", "é"]), max_size=8)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | _TRICKY,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY, inner, max_size=3),
                     max_leaves=40)


@settings(max_examples=300)
@given(_JSON, st.booleans())
def test_item11_the_depth_counted_before_decoding_is_the_decoded_values_depth(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth(raw, limit=1000) == _parsed_depth(value)
