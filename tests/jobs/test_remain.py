"""The remaining-percent fallback (server.jobs.remaining): virtual-printer tray reports and a real capture."""

from __future__ import annotations

import json
from pathlib import Path

from server.jobs.remaining import EstimateBill, RemainTracker, drift
from server.printer.trays import PrinterView, printer_view
from server.sim.printer import AmsUnit, Tray, VirtualPrinter

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mqtt-captures"
TAG = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
OTHER_TAG = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"


def printer() -> VirtualPrinter:
    trays = [Tray(0, type="PLA", tray_uuid=TAG, remain=80), Tray(1, type="PLA", remain=50),
             Tray(2, type="PETG", tray_uuid=OTHER_TAG, remain=-1), Tray(3, empty=True)]
    return VirtualPrinter(model="X1C", ams=[AmsUnit(0, trays=trays)])


def view(vp: VirtualPrinter) -> PrinterView:
    return printer_view(vp.state["print"])


def test_drops_are_billed_as_estimates_times_the_net_weight() -> None:
    vp = printer()
    tracker = RemainTracker({0: 1000.0, 1: 1000.0, 2: 1000.0})
    assert tracker.feed(view(vp)) == []  # the first reading is the baseline
    vp.set_tray(0, 0, remain=77)
    assert tracker.feed(view(vp)) == [EstimateBill(0, 30.0, 80.0, 77.0, estimate=True)]
    assert tracker.feed(view(vp)) == []  # billed once
    vp.set_tray(0, 0, remain=76)
    assert tracker.feed(view(vp)) == [EstimateBill(0, 10.0, 77.0, 76.0)]


def test_untagged_and_unknown_trays_are_never_billed() -> None:
    vp = printer()
    tracker = RemainTracker({0: 1000.0, 1: 1000.0, 2: 1000.0})
    tracker.feed(view(vp))
    vp.set_tray(0, 1, remain=10)  # no tag: a third-party spool's remain means nothing
    vp.set_tray(0, 2, remain=-1)
    assert tracker.feed(view(vp)) == []
    vp.set_tray(0, 2, remain=40)  # known from now on: a baseline, not a bill
    assert tracker.feed(view(vp)) == []
    vp.set_tray(0, 2, remain=-1)
    assert tracker.feed(view(vp)) == []
    vp.set_tray(0, 2, remain=38)  # the baseline survived the unknown reading
    assert tracker.feed(view(vp)) == [EstimateBill(2, 20.0, 40.0, 38.0)]


def test_increases_and_new_spools_rebaseline_without_billing() -> None:
    vp = printer()
    tracker = RemainTracker({0: 500.0})
    tracker.feed(view(vp))
    vp.set_tray(0, 0, remain=95)  # refilled / re-read higher
    assert tracker.feed(view(vp)) == []
    vp.set_tray(0, 0, tray_uuid=OTHER_TAG, remain=60)  # another spool: its drop is not a use
    assert tracker.feed(view(vp)) == []
    vp.set_tray(0, 0, remain=58)
    assert tracker.feed(view(vp)) == [EstimateBill(0, 10.0, 60.0, 58.0)]
    vp.set_tray(0, 0, empty=True)
    assert tracker.feed(view(vp)) == []
    vp.set_tray(0, 0, empty=False, remain=20)
    assert tracker.feed(view(vp)) == []  # back in: a new baseline


def test_moves_within_the_threshold_are_held_until_they_add_up() -> None:
    vp = printer()
    tracker = RemainTracker({0: 1000.0}, threshold=1.5)
    tracker.feed(view(vp))
    vp.set_tray(0, 0, remain=79)
    assert tracker.feed(view(vp)) == []
    vp.set_tray(0, 0, remain=78)
    assert tracker.feed(view(vp)) == [EstimateBill(0, 20.0, 80.0, 78.0)]


def test_trays_without_a_net_weight_are_not_billed() -> None:
    vp = printer()
    tracker = RemainTracker({})
    tracker.feed(view(vp))
    vp.set_tray(0, 0, remain=10)
    assert tracker.feed(view(vp)) == []


def test_real_capture_gives_baselines_for_its_tagged_trays() -> None:
    state = json.loads((CAPTURES / "push_status_full_H2D_diag.json").read_text("utf-8"))["print"]
    capture = printer_view(state)
    tracker = RemainTracker({t.global_index: 1000.0 for t in capture.trays})
    assert tracker.feed(capture) == []
    assert tracker.baselines == {0: ("D99401E841C14828BF2E1B859AF2F770", 47.0),
                                 1: ("73C26A43CD6A42AFB35375345595F535", 35.0),
                                 2: ("0C498B7595C1408C90DAE6A6A5957FB8", 82.0),
                                 3: ("95E6DD727C8F455C8C749C2ECD4343A3", 26.0),
                                 128: ("EED2E539AAC54C6BAD2559AA9C822F09", 100.0)}
    state["ams"]["ams"][0]["tray"][1]["remain"] = 33
    assert tracker.feed(printer_view(state)) == [EstimateBill(1, 20.0, 35.0, 33.0)]


def test_drift_between_spoolman_and_the_ams() -> None:
    assert drift(500.0, 45, 1000.0) == 50.0  # Spoolman thinks 50 g more is left
    assert drift(400.0, 45, 1000.0) == -50.0
    assert drift(None, 45, 1000.0) is None
    assert drift(500.0, None, 1000.0) is None
    assert drift(500.0, -1, 1000.0) is None
    assert drift(500.0, 45, None) is None
