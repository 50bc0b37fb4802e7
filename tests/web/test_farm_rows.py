"""The farm view's rows (issue 15): state, the spool feeding now, problems, filters and search."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

from hypothesis import given
from hypothesis import strategies as st

from server.db.repo import SlotAssignmentData
from server.printer.task import PrinterTask
from server.printer.trays import AmsUnitView, PrinterView, TrayView
from server.runtime import Runtime
from server.spoolman import Filament, Spool
from server.web.farm import FILTERS, FarmRow, counts, farm_row, row_state, shown
from server.web.views import JobProgressOut, PrinterOut, SlotOut, SpoolOut, UnitOut, printer_out

IDLE = JobProgressOut(state="IDLE", name=None, layer=None, total_layers=None, percent=None, remaining_minutes=None)
PRINTING = JobProgressOut(state="RUNNING", name="Benchy", layer=12, total_layers=200, percent=7, remaining_minutes=90)
SPOOL = SpoolOut(id=12, name="PolyTerra Black", vendor="Polymaker", material="PLA", color_hex="000000",
                 remaining_weight=80.0, initial_weight=1000.0, remaining_fraction=0.08)


def _slot(tray: int, *, active: bool = False, spool: SpoolOut | None = None, missing: bool = False) -> SlotOut:
    return SlotOut(printer="P", tray=tray, label=f"A{tray + 1}", unit_id=0, slot=tray, present=True, active=active,
                   material="PLA", color_hex="000000", tray_uuid=None, remain_percent=None,
                   spool_id=spool.id if spool else (7 if missing else None), source="manual", spool=spool,
                   spool_missing=missing)


def _printer(job: JobProgressOut = IDLE, *, online: bool = True, slots: list[SlotOut] | None = None,
             **extra: object) -> PrinterOut:
    units = [UnitOut(id=0, kind="ams", humidity=None, temperature=None, slots=slots or [])]
    return replace(PrinterOut(name="Farm 07", model="P1S", online=online, last_seen=None, error=None, job=job,
                              units=units), **extra)  # type: ignore[arg-type]


def test_a_printing_row_names_the_spool_feeding_now_and_warns_when_it_is_low() -> None:
    row = farm_row(_printer(PRINTING, slots=[_slot(0), _slot(1, active=True, spool=SPOOL)]), "Printing")
    assert (row.state, row.percent, row.layer, row.total_layers) == ("printing", 7, 12, 200)
    assert row.spool == "A2: PolyTerra Black (#12)" and row.remaining_g == 80.0 and row.low
    assert not row.attention


def test_problems_offline_waiting_bills_spoolman_and_a_deleted_spool() -> None:
    assert farm_row(_printer(online=False), "Offline").problems == ("offline",)
    row = farm_row(_printer(PRINTING, slots=[_slot(0, active=True, missing=True)], spoolman_error="refused"),
                   "Printing", waiting=3)
    assert row.problems == ("3 bills waiting", "Spoolman unreachable", "tray A1: spool deleted")
    assert row.spool == "A1: no spool" and row.attention


def test_states_map_to_the_filters() -> None:
    def state(gcode: str) -> str:
        return row_state(_printer(replace(IDLE, state=gcode)))

    assert [state(s) for s in ("RUNNING", "PREPARE", "PAUSE", "FAILED", "FINISH", "IDLE")] == [
        "printing", "printing", "paused", "failed", "finished", "idle"]
    assert row_state(_printer(PRINTING, online=False)) == "offline"  # offline wins: its state is old news


def test_filters_and_search() -> None:
    printing = farm_row(_printer(PRINTING), "Printing")
    offline = farm_row(replace(_printer(online=False), name="Farm 12"), "Offline")
    assert counts([printing, offline]) == {"all": 2, "printing": 1, "paused": 0, "failed": 0, "offline": 1,
                                           "attention": 1}
    assert shown(printing, "printing", "") and not shown(offline, "printing", "")
    assert shown(offline, "attention", "") and not shown(printing, "attention", "")
    assert shown(printing, "all", "benchy farm") and not shown(printing, "all", "farm 12")


@given(st.sampled_from(FILTERS), st.text(max_size=20))
def test_every_shown_row_is_counted_under_its_filter(chosen: str, query: str) -> None:
    rows = [farm_row(_printer(PRINTING), "Printing"), farm_row(_printer(online=False), "Offline")]
    visible = [row for row in rows if shown(row, chosen, query)]
    assert len(visible) <= counts(rows)[chosen]


class _Spools:
    """Spoolman's directory as printer_out reads it: spool 1 is known, 2 was deleted, 3 is out of reach."""

    def __init__(self) -> None:
        self.last_error: str | None = None

    async def get_many(self, spool_ids: Iterable[int]) -> dict[int, Spool | None]:
        ids = set(spool_ids)
        self.last_error = "refused" if 3 in ids else None
        filament = Filament(id=1, name="PolyTerra Black", density=1.24, diameter=1.75, weight=1000.0)
        return {i: Spool(id=1, filament=filament, remaining_weight=80.0) if i == 1 else None
                for i in ids if i != 3}


_TRAYS = (0, 1, 2, 3, 254)


@given(active=st.sampled_from((None, *_TRAYS)), spools=st.fixed_dictionaries(
    {}, optional={tray: st.sampled_from((1, 2, 3)) for tray in _TRAYS}), online=st.booleans())
def test_a_row_from_the_feeding_slot_alone_is_the_row_from_the_full_card(
        active: int | None, spools: dict[int, int], online: bool) -> None:
    """The farm page's row asks build only the slot feeding now (issue 15: ~80 rows a second); the row
    must be the one the full card gives, Spoolman's outage on another tray included."""
    trays = [TrayView(global_index=i, unit_id=0, slot=i, present=True, active=i == active) for i in range(4)]
    external = [TrayView(global_index=254, unit_id=None, slot=0, present=True, active=active == 254)]
    view = PrinterView(units=[AmsUnitView(id=0, kind="ams", humidity=None, humidity_level=None, temperature=None,
                                          trays=trays)], external=external, active_tray=active,
                       gcode_state="RUNNING", subtask_name="Benchy", layer_num=3, total_layer_num=9, mc_percent=30)
    task = SimpleNamespace(name="Farm 07", view=lambda: view, config=SimpleNamespace(model="P1S"), online=online,
                           last_seen=None, link_error=None, last_report_error=None, last_report_error_at=None,
                           limited=None)
    runtime = SimpleNamespace(spools=_Spools(), rfid=None, tracked_by=lambda name: None)
    assigned = [SlotAssignmentData("Farm 07", tray, spool, "manual", datetime(2026, 12, 6, tzinfo=UTC))
                for tray, spool in spools.items()]

    async def rows() -> tuple[FarmRow, FarmRow]:
        full, slim = [await printer_out(cast(Runtime, runtime), cast(PrinterTask, task), assigned,
                                        feeding_only=only) for only in (False, True)]
        return farm_row(full, "Printing", 2), farm_row(slim, "Printing", 2)

    full, slim = asyncio.run(rows())
    assert slim == full
