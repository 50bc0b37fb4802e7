"""A printer's trays made once while its AMS stays as it was (printer.snapshot.TrayMemo): the same views
as made afresh, and made again when any part they come from changes."""

from __future__ import annotations

import pytest
from printer_captures import CAPTURES, load_capture

from server.printer.snapshot import TrayMemo, snapshot
from server.printer.state import merge_report

# Full states with an AMS (the ones whose trays a memo could reuse).
NAMES = sorted(p.name for p in CAPTURES.glob("push_status_full_*.json")
               if "ams" in load_capture(p.name).get("print", {}))


@pytest.mark.parametrize("name", NAMES[:4])
def test_reused_trays_are_the_trays_made_afresh(name: str) -> None:
    state = merge_report({}, load_capture(name))
    memo = TrayMemo()
    first = snapshot(state, memo=memo)
    warmer = merge_report(state, {"print": {"nozzle_temper": 215.0}})  # a delta that leaves the AMS alone
    again = snapshot(warmer, memo=memo)
    assert again.view == snapshot(warmer).view == first.view
    assert memo.made[0] and again.view.units[0] is first.view.units[0]  # reused, not made again


def test_a_changed_tray_is_made_again() -> None:
    name = NAMES[0]
    state = merge_report({}, load_capture(name))
    memo = TrayMemo()
    snapshot(state, memo=memo)
    unit = state["ams"]["ams"][0]
    tray = unit["tray"][0]
    emptied = merge_report(state, {"print": {"ams": {"ams": [{"id": unit["id"], "tray": [
        {"id": tray["id"], "remain": 3}]}]}}})
    assert snapshot(emptied, memo=memo).view == snapshot(emptied).view
    assert snapshot(emptied, memo=memo).view != snapshot(state).view
