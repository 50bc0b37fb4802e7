"""Property: any walk of printer reports through one print, fed through
`derive_events` and `apply_event`, starts one job and bills what was printed, once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snapshots import events_between

from server.billing.rules import BillLine, billed_total
from server.jobs.checkpoint import JobCheckpoint
from server.jobs.lifecycle import JobStarted, apply_event
from tests.billing.test_billing_fake_analysis import FakeAnalysis

AT = datetime(2026, 11, 21, tzinfo=UTC)
LAYERS = 6
ANALYSIS = FakeAnalysis(
    {n: {n % 2: 1.0 + n, 2: 0.5} for n in range(LAYERS + 1)},
    marks={n: [(10 * n + 2, {n % 2: 0.5}), (10 * n + 6, {n % 2: 1.0, 2: 0.25})] for n in range(LAYERS + 1)},
)
LAST_PRINT = {"gcode_state": "FINISH", "layer_num": 50, "mc_percent": 100, "subtask_name": "Old", "gcode_file": "",
              "print_error": 0, "task_id": "0", "subtask_id": "0"}

steps = st.lists(
    st.one_of(
        st.tuples(st.just("layer"), st.integers(0, LAYERS + 2), st.integers(0, 100)),
        st.tuples(st.just("percent"), st.integers(0, 100)),
        st.tuples(st.just("pause")),
        st.tuples(st.just("resume")),
        st.tuples(st.just("again")),
    ),
    max_size=25,
)
ends = st.sampled_from(["finish", "cancel", "fail", "reboot", "none"])


def used_through(n: int) -> dict[int, float]:
    return ANALYSIS.used_through(min(n, LAYERS)) if n >= 0 else {}


@settings(max_examples=200, deadline=None)
@given(steps, ends, st.booleans())
def test_one_print_bills_what_was_printed_once(walk: list[tuple], end: str, running_has_layer: bool) -> None:
    state: dict[str, Any] = dict(LAST_PRINT)
    job: JobCheckpoint | None = None
    bills: list[BillLine] = []
    starts = 0

    def report(**delta: Any) -> None:
        nonlocal state, job, starts
        previous, state = state, {**state, **delta}
        for event in events_between(job, previous, state):
            starts += isinstance(event, JobStarted)
            step = apply_event(job, event, ANALYSIS, printer="p", at=AT)
            job = step.job
            bills.extend(step.bills)

    report(gcode_state="IDLE", subtask_name="Cube.3mf", gcode_file="Cube.3mf")
    report(gcode_state="PREPARE")
    # Some reports start RUNNING without layer_num: the last print's 50 stays then.
    report(gcode_state="RUNNING", **({"layer_num": 0, "mc_percent": 0} if running_has_layer else {}))
    top = 0 if running_has_layer else -1  # the highest layer reported for this print
    for op in walk:
        if op[0] == "layer":
            report(layer_num=op[1], mc_percent=op[2])
            top = max(top, op[1])
        elif op[0] == "percent":
            report(mc_percent=op[1])
        elif op[0] == "pause":
            report(gcode_state="PAUSE")
        elif op[0] == "resume":
            report(gcode_state="RUNNING")
        else:
            report()

    assert starts == 1
    assert job is not None
    pairs = [(line.layer, line.filament_index) for line in bills]
    assert len(pairs) == len(set(pairs)), "a (layer, filament) pair was billed twice"
    # Before the end: every layer below the highest reported one, nothing more.
    assert billed_total(bills) == pytest.approx(used_through(top - 1))

    if end == "finish":
        report(gcode_state="FINISH")
        assert billed_total(bills) == pytest.approx(used_through(LAYERS))
        assert job.final_state == "finished"
    elif end in ("cancel", "fail"):
        report(gcode_state="FAILED", print_error=50348044 if end == "cancel" else 0x07008011)
        assert job.final_state == ("cancelled" if end == "cancel" else "failed")
        total = billed_total(bills)
        whole = used_through(top - 1)
        assert all(total.get(f, 0.0) >= mm - 1e-9 for f, mm in whole.items())
        assert all(mm <= used_through(top).get(f, 0.0) + 1e-9 for f, mm in total.items())
    elif end == "reboot":
        report(gcode_state="IDLE", subtask_name="", gcode_file="", layer_num=0, mc_percent=0)
        assert job.final_state == "failed" and job.end_reason == "ended while offline"
    # Nothing after the end bills anything.
    settled = len(bills)
    report(layer_num=LAYERS + 5)
    report(gcode_state="FINISH")
    assert len(bills) == settled or end == "none"
