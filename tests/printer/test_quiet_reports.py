"""Reports that change nothing Layerwise reads (temperatures; an X1's full state repeated): the last
snapshot is reused, the job tracker still sees every report, and the pages are told nothing new."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from printer_captures import load_capture

from server.config import PrinterConfig, ServerConfig, Settings
from server.printer.snapshot import PrinterSnapshot, ProjectFile, same_state, snapshot
from server.printer.state import merge_report
from server.printer.task import PrinterTask
from server.runtime import Runtime

FULL = "push_status_full_P2S_RUNNING_local_rfid.json"


class Recorder:
    """A job feed that keeps what it is given."""

    def __init__(self) -> None:
        self.updates: list[tuple[PrinterSnapshot, PrinterSnapshot, bool]] = []

    def restore(self) -> None:
        pass

    async def on_update(self, previous: PrinterSnapshot, current: PrinterSnapshot,
                        echo: ProjectFile | None = None, *, full: bool = False) -> None:
        self.updates.append((previous, current, full))

    async def no_full_state(self) -> None:
        pass

    async def close(self) -> None:
        pass


def _task(tmp_path: Path) -> tuple[PrinterTask[Recorder], Recorder]:
    settings = Settings(server=ServerConfig(data_dir=tmp_path), printers=(
        PrinterConfig(name="p", host="127.0.0.1", serial="00M00A000000000", access_code="12345678",
                      mqtt_port=1, ftps_port=1),))
    runtime = Runtime.build(settings)
    jobs = Recorder()
    task = PrinterTask(settings.printers[0], db=runtime.db, bus=runtime.bus, pins=runtime.printers["p"].pins,
                       jobs=jobs)
    return task, jobs


def _full(**changes: Any) -> dict[str, Any]:
    message = copy.deepcopy(load_capture(FULL))
    message["print"].update(msg=0, **changes)
    return message


def test_same_state_ignores_only_what_names_the_report() -> None:
    state = merge_report({}, _full(sequence_id="1"))
    assert same_state(merge_report(state, _full(sequence_id="2", nozzle_temper=1.0)), state)
    assert same_state(merge_report(state, {"print": {"msg": 1, "command": "push_status", "bed_temper": 3}}), state)
    assert not same_state(merge_report(state, {"print": {"msg": 1, "layer_num": 99}}), state)
    tray = merge_report(state, {"print": {"msg": 1, "ams": {"ams": [{"id": "0", "tray": [{"id": "0", "remain": 1}]}]}}})
    assert not same_state(tray, state)
    assert not same_state({k: v for k, v in state.items() if k != "mapping"}, state)


async def test_a_quiet_report_reuses_the_snapshot_feeds_the_tracker_and_tells_no_page(tmp_path: Path) -> None:
    task, jobs = _task(tmp_path)
    await task._on_message(_full(sequence_id="1"))
    first = task.snapshot
    async with task.bus.subscribe() as events:
        await task._on_message({"print": {"command": "push_status", "msg": 1, "nozzle_temper": 220.4}})
        assert task.snapshot.view is first.view and task.snapshot.status == first.status
        assert task.snapshot.reported == frozenset()  # the delta named no print field
        await task._on_message(_full(sequence_id="2", nozzle_temper=219.0))
        assert task.snapshot.reported == first.reported and jobs.updates[-1][2]  # a full report, as such
        assert events.empty()
        await task._on_message({"print": {"command": "push_status", "msg": 1, "layer_num": 42}})
        assert task.snapshot.status.layer == 42
        assert (await asyncio.wait_for(events.get(), 1)).printer == "p"
    assert len(jobs.updates) == 4  # every report reached the tracker
    # The reused snapshot is the one made afresh.
    made = snapshot(task.state, version=task.version, echo=task.project_file, report={"layer_num": 42})
    assert made == task.snapshot
