# ruff: noqa: F811  (the rig fixture is imported by name)
"""Reports that bring the very same snapshot again (most of a farm's: temperatures) skip the tracker's
pure steps that gave nothing last time (``JobTracker._derive_and_apply``, ``_observe_trays``,
``TrayWatch.watch_switches``), and nothing else: what depends on more than the snapshot still happens."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from snapshots import echo_of, snap
from test_lifecycle_tracker import Rig, rig  # noqa: F401 (the fixture)
from test_tracker_no_full_state import restart, start_and_print_to

from server.jobs import lifecycle
from server.jobs.checkpoint import JobCheckpoint, JobKey
from server.jobs.trays import TrayWatch
from server.printer.snapshot import BLANK, PrinterSnapshot
from server.printer.state import merge_report
from server.printer.trays import PrinterView
from tests.billing.test_billing_fake_analysis import FakeAnalysis

SEQUENCES = Path(__file__).resolve().parents[1] / "fixtures" / "sequences"


def counting_derive(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = lifecycle.derive_events

    def counted(*args: Any, **kwargs: Any) -> list[lifecycle.LifecycleEvent]:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "derive_events", counted)
    return calls


async def test_the_very_same_report_again_still_retries_the_files_fetch(rig: Rig,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fetches: list[int] = []
    # The fetch never gets going (as when a reconnect cut it short): every report must ask again.
    monkeypatch.setattr(rig.tracker.files, "start", lambda job_id, *_: fetches.append(job_id))
    await rig.report(gcode_state="IDLE", subtask_name="cube", gcode_file="cube.gcode.3mf")
    await rig.report(gcode_state="PREPARE")
    asked = len(fetches)
    assert asked >= 1 and rig.tracker.job is not None and rig.tracker.job.lifecycle == "downloading"
    derived = counting_derive(monkeypatch)
    shot = snap(rig.state, report={"bed_temper": 60})
    for _ in range(3):
        await rig.tracker.on_update(shot, shot)
    assert len(derived) == 1  # the same snapshot again: no events derived again
    assert len(fetches) == asked + 3


async def test_an_echo_with_the_very_same_snapshot_still_starts_its_job(rig: Rig,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rig.tracker.files, "start", lambda *_: None)
    shot = snap(rig.state)
    for _ in range(2):
        await rig.tracker.on_update(shot, shot)
    assert rig.tracker.job is None
    echo = echo_of({"command": "project_file", "param": "Metadata/plate_1.gcode", "subtask_name": "Cube",
                    "url": "ftp:///Cube.3mf"})
    await rig.tracker.on_update(shot, shot, echo)
    assert rig.tracker.job is not None and rig.tracker.job.key.name == "Cube"


async def test_the_very_same_report_full_after_a_restart_still_resumes_the_job(rig: Rig) -> None:
    await start_and_print_to(rig, 3)
    await restart(rig, rig.state)
    shot = snap({**rig.state, "layer_num": 6}, report={**rig.state, "layer_num": 6})
    for _ in range(2):  # deltas: the state saved before the restart may be stale, nothing is decided
        await rig.tracker.on_update(shot, shot)
    assert rig.tracker.job is not None and rig.tracker.job.last_layer == 3
    await rig.tracker.on_update(shot, shot, full=True)
    assert rig.tracker.job is not None and rig.tracker.job.last_layer == 6
    billed = len(rig.entries())
    await rig.tracker.on_update(shot, shot, full=True)
    assert rig.tracker.job.last_layer == 6 and len(rig.entries()) == billed


def sequence_snapshots(name: str) -> list[PrinterSnapshot]:
    state: dict[str, Any] = {}
    shots = []
    for line in (SEQUENCES / f"{name}.log").read_text("utf-8").splitlines():
        body = json.loads(line.partition(" :: ")[2]).get("print")
        if isinstance(body, dict) and body.get("command") != "project_file":
            state = merge_report(state, body)
            shots.append(snap(state, report=body))
    return shots


def bare(shot: PrinterSnapshot) -> PrinterSnapshot:
    """The snapshot with nothing but what ``event_inputs`` and ``trays_seen`` name."""
    view = PrinterView(units=[], external=[], active_tray=shot.active_tray)
    return replace(BLANK, status=shot.status, reported_mapping=shot.reported_mapping, view=view,
                   loading_tray=shot.loading_tray)


@pytest.mark.parametrize("name", ["a1-fw01.07-Testqube_Multicolor_cloud", "a1-fw01.07-Testqube_local"])
def test_events_and_tray_lessons_read_only_what_the_tracker_compares(name: str) -> None:
    """What the tracker keeps to skip a report is all these pure steps read (else a skip could be wrong)."""
    job: JobCheckpoint | None = None
    previous = BLANK
    at = datetime(2025, 1, 1, tzinfo=UTC)
    for shot in sequence_snapshots(name):
        events = lifecycle.derive_events(job, previous, shot)
        assert events == lifecycle.derive_events(job, bare(previous), bare(shot))
        for event in events:
            job = lifecycle.apply_event(job, event, None, printer="a1", at=at).job
        if job is not None:
            assert lifecycle.observe_trays(job, shot) == lifecycle.observe_trays(job, bare(shot))
            job = lifecycle.observe_trays(job, shot)
        previous = shot
    assert job is not None and job.final_state == "finished"


async def test_a_backup_tray_reported_twice_by_the_very_same_snapshot_is_a_switch(tmp_path: Path) -> None:
    """A switch is confirmed by a second report of the backup tray: the same snapshot again counts."""
    analysis = FakeAnalysis({1: {0: 1.0, 1: 1.0}})
    job = JobCheckpoint(printer="a1", key=JobKey(name="cube"), mapping={0: 0, 1: 1}, last_layer=5)
    watch = TrayWatch("a1", db=None, spools=None)  # type: ignore[arg-type]  (no remain estimate here)

    def at(tray: int) -> PrinterSnapshot:
        return replace(BLANK, view=PrinterView(units=[], external=[], active_tray=tray))

    def folder(job_id: int) -> Path:
        return tmp_path / str(job_id)

    mapped, backup = at(0), at(2)
    for _ in range(3):  # filament 0 feeds from its tray: settled, the same again is skipped
        assert await watch.watch_switches(folder, 1, job, analysis, mapped) is None  # type: ignore[arg-type]
    assert await watch.watch_switches(folder, 1, job, analysis, backup) is None  # type: ignore[arg-type]
    switch = await watch.watch_switches(folder, 1, job, analysis, backup)  # type: ignore[arg-type]
    assert switch is not None and (switch.filament, switch.old_tray, switch.new_tray) == (0, 0, 2)
    assert (folder(1) / "tray-switches.json").is_file()

