"""A printer's report sections cleaned once while they repeat (printer.state.CleanMemo): the same reports,
problems and merged states as ``clean_report`` on every report, whatever the sequence."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from printer_captures import CAPTURES, load_capture
from test_report_fuzz import JSON, KEYS, ODD, mutated

from server.printer.state import CleanMemo, clean_report, merge_clean

FULL = [p.name for p in sorted(CAPTURES.glob("push_status_full_*.json"))]
DELTAS = [e for e in load_capture("push_status_delta_examples.json").values() if isinstance(e, dict)]
X1C = "push_status_full_X1C_3xAMS_1xAMSHT_rfid_FINISH.json"


def _typed(value: Any) -> str:
    """Equal texts for equal values of equal types (``==`` holds 1, 1.0 and True for the same)."""
    return repr(value)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
    if items is None or len(path) > 20:  # deep junk: its top is enough to change
        return [path]
    return [leaf for key, child in items for leaf in _leaves(child, (*path, key))]


def _twin(value: Any) -> Any:
    """A value ``==`` to ``value`` but of another type, where there is one."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and abs(value) < 2**53:
        return float(value) if value not in (0, 1) else bool(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


@st.composite
def after(draw: st.DrawFn, last: dict[str, Any]) -> dict[str, Any]:
    """The next report after ``last``: mostly the same again, as an X1 sends it."""
    try:
        body = json.loads(json.dumps(last))  # a new message, as decoded from the wire
    except RecursionError:  # nested too deep to copy: the same again, but for a temperature
        return {**last, "nozzle_temper": draw(st.floats(0, 300))}
    for _ in range(draw(st.integers(0, 3))):
        leaves = [p for p in _leaves(body) if p]
        how = draw(st.sampled_from(["temperature", "twin", "odd", "json", "msg", "drop"]))
        if how == "temperature":
            body["nozzle_temper"] = draw(st.floats(0, 300))
        elif how == "msg":
            body["msg"] = draw(st.sampled_from([0, 1, False, None]))
        elif how == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif leaves:
            path = draw(st.sampled_from(leaves))
            parent = body
            for step in path[:-1]:
                parent = parent[step]
            old = parent[path[-1]]
            parent[path[-1]] = _twin(old) if how == "twin" else draw(ODD if how == "odd" else JSON)
    return body


@st.composite
def reports(draw: st.DrawFn) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["again", "again", "again", "full", "mutated", "delta", "arbitrary"]))
        if kind == "again" and out:
            out.append(draw(after(out[-1])))
        elif kind == "mutated":
            body = draw(mutated(load_capture(draw(st.sampled_from(FULL))))).get("print")
            out.append(body if isinstance(body, dict) else {})
        elif kind == "delta":
            out.append(dict(draw(st.sampled_from(DELTAS))).get("print", {}))
        elif kind == "arbitrary":
            out.append(draw(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8)))
        else:
            out.append(load_capture(draw(st.sampled_from(FULL)))["print"])
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(reports())
def test_the_memo_cleans_and_merges_as_clean_report(bodies: list[dict[str, Any]]) -> None:
    memo = CleanMemo()
    plain_state: dict[str, Any] = {}
    memo_state: dict[str, Any] = {}
    for body in bodies:
        plain, plain_problems = clean_report(body)
        cleaned, problems = memo.clean(body)
        assert _typed(cleaned) == _typed(plain)
        assert problems == plain_problems
        plain_state = merge_clean(plain_state, plain, plain_problems)
        memo_state = merge_clean(memo_state, cleaned, problems)
        assert _typed(memo_state) == _typed(plain_state)


def test_a_repeated_section_is_reused_and_a_changed_one_cleaned_again() -> None:
    memo = CleanMemo()
    body = load_capture(X1C)["print"]
    first, _ = memo.clean(body)
    warmer = {**json.loads(json.dumps(body)), "nozzle_temper": 215.0}
    again, _ = memo.clean(warmer)
    assert again == clean_report(warmer)[0]
    assert again["ams"] is first["ams"]  # reused, not cleaned again
    warmer["ams"]["ams"][0]["tray"][0]["remain"] = 3
    changed, _ = memo.clean(warmer)
    assert changed["ams"] is not first["ams"] and changed == clean_report(warmer)[0]


def test_a_reused_section_keeps_its_problems() -> None:
    memo = CleanMemo()
    body = {"msg": 0, "ams": {"tray_now": "abc", "ams": [{"id": "0", "temp": float("nan")}]}}
    expected = clean_report(body)
    assert expected[1] and memo.clean(body) == expected
    assert memo.clean(json.loads(json.dumps(body))) == expected  # reused, with the same problems


def test_an_equal_value_of_another_type_is_cleaned_again() -> None:
    memo = CleanMemo()
    assert memo.clean({"ams": {"tray_now": 1}}) == ({"ams": {"tray_now": 1}}, [])
    assert memo.clean({"ams": {"tray_now": True}}) == clean_report({"ams": {"tray_now": True}})
    assert memo.clean({"ams": {"tray_now": True}})[1]  # a bool is no number: a problem, as the first time


def test_a_section_too_deep_to_recognise_is_still_cleaned() -> None:
    memo = CleanMemo()
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    body = {"mapping": deep, "vt_tray": {"id": "254", "tray_type": "PLA"}}
    assert memo.clean(body) == clean_report(body)
    assert "mapping" not in memo.sections and set(memo.sections) == {"vt_tray"}

