"""The fault campaign's schedules: seeded, restricted by --kinds, each fault aimed at the print's trays."""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import cast

import pytest

from bench.faults.run import FAULT_KINDS, PROXY_KINDS, TRAY_KINDS, PrintFile, _kinds, plan_run
from server.analysis import PrintAnalysis


def _file(name: str, layers: int, mapping: list[int]) -> PrintFile:
    return PrintFile(name, cast(PrintAnalysis, SimpleNamespace(layer_count=layers)), mapping)


FILES = [_file("a.gcode.3mf", 40, [0, -1, 2]), _file("b.gcode.3mf", 100, [1, 3])]


def test_a_run_is_planned_from_its_seed_alone() -> None:
    assert plan_run(1, 7, FILES, 0.04) == plan_run(1, 7, FILES, 0.04)
    seed_1, seed_2 = ([plan_run(seed, n, FILES, 0.04).faults for n in range(1, 30)] for seed in (1, 2))
    assert seed_1 != seed_2


def test_the_campaign_draws_every_kind_and_aims_at_the_print() -> None:
    plans = [plan_run(1, n, FILES, 0.04) for n in range(1, 201)]
    drawn = {fault.kind for plan in plans for fault in plan.faults}
    assert drawn == set(FAULT_KINDS)
    for plan in plans:
        trays = {tray for tray in plan.file.mapping if tray >= 0}
        assert 1 <= len(plan.faults) <= 4
        assert sum(1 for fault in plan.faults if fault.kind == "late_mapping") <= 1
        assert all(fault.tray in trays for fault in plan.faults if fault.kind in TRAY_KINDS)
        assert [fault.at for fault in plan.faults] == sorted(fault.at for fault in plan.faults)


def test_kinds_restrict_the_draw() -> None:
    kinds = ("delete", "lost_request")
    plans = [plan_run(1, n, FILES, 0.04, kinds) for n in range(1, 50)]
    assert {fault.kind for plan in plans for fault in plan.faults} == set(kinds)
    only_late = [plan_run(1, n, FILES, 0.04, ("late_mapping",)) for n in range(1, 10)]
    assert all([f.kind for f in plan.faults] == ["late_mapping"] for plan in only_late)
    assert all(1 <= plan.faults[0].layer <= 5 for plan in only_late)


def test_the_kinds_option_names_known_kinds_only() -> None:
    assert _kinds("slow, foreign,slow") == ("slow", "foreign")
    assert set(PROXY_KINDS) == {"lost_answer", "lost_request", "slow"}
    with pytest.raises(argparse.ArgumentTypeError, match="unknown fault kind"):
        _kinds("kill,meteor")
    with pytest.raises(argparse.ArgumentTypeError):
        _kinds(",")


def test_a_reassignment_sometimes_empties_the_slot_first() -> None:
    faults = [fault for n in range(1, 60) for fault in plan_run(1, n, FILES, 0.04, ("reassign", "kill")).faults]
    assert {fault.emptied for fault in faults if fault.kind == "reassign"} == {True, False}
    assert not any(fault.emptied for fault in faults if fault.kind != "reassign")
