# ruff: noqa: F811  (the rig fixture is imported by name)
"""The job tracker after a restart with a printer that gives no full state (it refuses pushall): deltas alone
continue the job, also when the state saved before the restart is an older print's (issue 10)."""

from __future__ import annotations

from typing import Any

import pytest
from snapshots import echo_of, snap
from test_lifecycle_tracker import CUBE_4, FIXTURES, IDLE, Rig, rig  # noqa: F401 (the fixture)

from server.analysis import analyze_file


async def delta(rig: Rig, **fields: Any) -> None:
    """A P1-style delta: only the fields that changed, never a full report."""
    previous, rig.state = rig.state, {**rig.state, **fields}
    await rig.tracker.on_update(snap(previous), snap(rig.state, report=fields), full=False)


async def restart(rig: Rig, snapshot: dict[str, Any]) -> None:
    """Layerwise starts again; its merged state is ``snapshot`` (what it saved before it died)."""
    await rig.tracker.close()
    rig.tracker = rig.new_tracker()
    rig.state = dict(snapshot)


async def start_and_print_to(rig: Rig, layer: int) -> None:
    await rig.start(CUBE_4)
    for n in range(0, layer + 1):
        await rig.report(gcode_state="RUNNING", layer_num=n)


def total_billed(rig: Rig) -> float:
    return sum(e.mm for e in rig.entries())


@pytest.mark.parametrize("snapshot", ["older print's FINISH", "no gcode_state", "this print"])
async def test_deltas_alone_bill_the_missed_layers_and_finish(rig: Rig, snapshot: str) -> None:
    await start_and_print_to(rig, 20)
    state = {"older print's FINISH": dict(IDLE), "no gcode_state": {"subtask_name": CUBE_4},
             "this print": dict(rig.state)}[snapshot]
    await restart(rig, state)
    await delta(rig, mc_percent=61)  # before the printer's refusal came: kept, decides nothing yet
    assert rig.tracker.job is not None and rig.tracker.job.billing.billed_through == 19
    await rig.tracker.no_full_state()  # the link: pushall refused
    await delta(rig, layer_num=35)  # layers 21-34 were printed while Layerwise was down
    assert rig.tracker.job.billing.billed_through == 34
    await delta(rig, layer_num=36)
    assert rig.tracker.job.billing.billed_through == 35
    await delta(rig, gcode_state="FINISH", mc_percent=100)
    job = rig.tracker.job
    assert job is not None and job.final_state == "finished" and job.billing.settled
    analysis = analyze_file(FIXTURES / CUBE_4)
    assert total_billed(rig) == pytest.approx(sum(analysis.totals().values()), abs=0.01)
    keys = [(e.layer, e.filament_index) for e in rig.entries()]
    assert len(keys) == len(set(keys))


async def test_without_no_full_state_deltas_wait_for_the_full_report(rig: Rig) -> None:
    """A printer that answers pushall: its full report decides (a delta arriving first does not)."""
    await start_and_print_to(rig, 20)
    await restart(rig, dict(rig.state))
    await delta(rig, layer_num=30)
    assert rig.tracker.job is not None and rig.tracker.job.billing.billed_through == 19
    await rig.report(layer_num=31)  # the full report
    assert rig.tracker.job.billing.billed_through == 30


async def test_a_print_that_starts_while_requests_are_refused_is_followed(rig: Rig) -> None:
    await rig.tracker.close()
    rig.tracker = rig.new_tracker()  # Layerwise started; the printer refuses pushall, nothing open
    rig.printer.add_file(f"/cache/{CUBE_4}", FIXTURES / CUBE_4)
    await rig.tracker.no_full_state()
    await delta(rig, subtask_name=CUBE_4, gcode_file=CUBE_4)
    await delta(rig, gcode_state="PREPARE")
    assert rig.tracker.job is not None
    await rig.file_read()
    await delta(rig, gcode_state="RUNNING", layer_num=0, mc_percent=0)
    for n in range(1, 51):
        await delta(rig, layer_num=n)
    await delta(rig, gcode_state="FINISH")
    analysis = analyze_file(FIXTURES / CUBE_4)
    assert rig.tracker.job.final_state == "finished"
    assert total_billed(rig) == pytest.approx(sum(analysis.totals().values()), abs=0.01)


async def test_a_cloud_print_whose_url_gives_nothing_is_read_from_the_printer_by_its_own_name(rig: Rig) -> None:
    """The echo (with its https URL) comes while the state still names the previous print's file: the file
    looked for on the printer is the echo's, never the previous one's."""
    from test_lifecycle_tracker import CUBE_1

    rig.printer.add_file(f"/cache/{CUBE_1}", FIXTURES / CUBE_1)
    rig.printer.add_file(f"/cache/{CUBE_4}", FIXTURES / CUBE_4)
    rig.state = {**IDLE, "subtask_name": CUBE_1.removesuffix(".gcode.3mf"), "gcode_file": CUBE_1}
    echo = {"command": "project_file", "param": "Metadata/plate_1.gcode", "subtask_name": "testqube-a1-4colour-bs2.04",
            "url": f"https://127.0.0.1:1/{CUBE_4}?signature=x", "task_id": "77", "subtask_id": "77",
            "ams_mapping": [0, 1, 2, 3]}
    await rig.tracker.on_update(snap(rig.state), snap(rig.state), echo_of(echo))
    await rig.file_read()
    assert rig.tracker.analysis is not None
    assert rig.tracker.analysis.layer_count == analyze_file(FIXTURES / CUBE_4).layer_count
    assert len(rig.tracker.analysis.filaments) == 4


async def test_a_reconnect_that_lost_the_start_of_running_continues_from_the_next_layer(rig: Rig) -> None:
    """The echo started the job; the link dropped and the printer's PREPARE and RUNNING were reported to no
    one; after the reconnect (pushall refused) the state still shows the previous print's FINISH."""
    rig.printer.add_file(f"/cache/{CUBE_4}", FIXTURES / CUBE_4)
    rig.state = {**IDLE, "gcode_state": "FINISH"}
    echo = {"command": "project_file", "param": "Metadata/plate_1.gcode", "subtask_name": "testqube-a1-4colour-bs2.04",
            "url": f"file:///sdcard/cache/{CUBE_4}", "task_id": "78", "subtask_id": "78", "ams_mapping": [0, 1, 2, 3]}
    await rig.tracker.no_full_state()  # the first connection: nothing open yet
    await rig.tracker.on_update(snap(rig.state), snap(rig.state), echo_of(echo))
    await rig.file_read()
    await rig.tracker.no_full_state()  # the reconnect
    for n in range(5, 51):
        await delta(rig, layer_num=n)
    assert rig.tracker.job is not None and rig.tracker.job.billing.billed_through == 49
    await delta(rig, gcode_state="FINISH", mc_percent=100)
    assert rig.tracker.job.final_state == "finished"
    analysis = analyze_file(FIXTURES / CUBE_4)
    assert total_billed(rig) == pytest.approx(sum(analysis.totals().values()), abs=0.01)
