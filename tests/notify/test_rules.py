"""The decision core: which observations produce which message, and the once-only rules."""

from __future__ import annotations

from typing import Any

from server.config.reach import NotificationsConfig
from server.notify.rules import (
    Attention,
    Decider,
    Forecast,
    JobEnded,
    Progress,
    Reachability,
    SpoolLevel,
    Tick,
    duration,
)


def tray(number: int = 2, *, layer: int | None = 143, status: str = "runs_out", **extra: Any) -> dict[str, Any]:
    return {"tray": number, "spool_id": 12, "status": status, "runout_layer": layer, "total_layers": 200,
            "runout_in_s": 7800.0, "needed_g": 35.0, "remaining_g": 20.0, "filament": "PLA Black", **extra}


def decider(**config: Any) -> Decider:
    return Decider(NotificationsConfig(urls=["json://127.0.0.1/x"], **config))


def test_runout_is_told_once_per_job_and_tray_in_words() -> None:
    d = decider()
    first = d.feed(Forecast("X1C", 7, [tray()]))
    assert [m.event for m in first] == ["runout"]
    assert first[0].body == ("Tray A3 (PLA Black, spool #12) runs out during layer 143 of 200, about 2 h 10 min "
                             "from now (at the print's current pace): needs 35 g, 20 g left.")
    assert d.feed(Forecast("X1C", 7, [tray(layer=150)])) == []  # updated forecast: no repeat
    assert len(d.feed(Forecast("X1C", 7, [tray(3)]))) == 1  # another tray
    assert len(d.feed(Forecast("X1C", 8, [tray()]))) == 1  # another job


def test_runout_again_once_when_within_n_layers() -> None:
    d = decider(runout_within_layers=10)
    assert len(d.feed(Forecast("X1C", 7, [tray(layer=143)]))) == 1
    d.feed(Progress("X1C", 7, 120))
    assert d.feed(Forecast("X1C", 7, [tray(layer=143)])) == []  # 23 layers away
    d.feed(Progress("X1C", 7, 133))
    again = d.feed(Forecast("X1C", 7, [tray(layer=143)]))
    assert [m.title for m in again] == ["X1C: Filament runs out soon"]
    d.feed(Progress("X1C", 7, 140))
    assert d.feed(Forecast("X1C", 7, [tray(layer=143)])) == []


def test_runout_already_near_is_one_message_and_unknown_or_enough_none() -> None:
    d = decider(runout_within_layers=10)
    assert len(d.feed(Forecast("X1C", 7, [tray(layer=5)]))) == 1
    assert d.feed(Forecast("X1C", 7, [tray(layer=5)])) == []
    unknown = tray(4, layer=None, status="unknown", remaining_g=None, runout_in_s=None)
    assert d.feed(Forecast("X1C", 7, [unknown, tray(5, layer=None, status="enough")])) == []


def test_no_runout_for_a_job_that_ended() -> None:
    """The forecast service may publish a forecast it computed before the job ended after the job's end."""
    d = decider()
    assert len(d.feed(Forecast("X1C", 7, [tray()]))) == 1
    d.feed(JobEnded("X1C", 7, "finished", "benchy", []))
    assert d.feed(Forecast("X1C", 7, [tray()])) == []
    assert d.feed(Forecast("X1C", 7, [])) == []


def test_job_endings_once_with_grams_per_spool() -> None:
    d = decider()
    ended = JobEnded("X1C", 7, "finished", "benchy", [("Bambu PLA Black (spool #12)", 12.345), ("spool #13", 3.21)])
    [message] = d.feed(ended)
    assert (message.event, message.title) == ("job_finished", "X1C: benchy finished")
    assert message.body == "Used Bambu PLA Black (spool #12): 12 g; spool #13: 3.2 g."
    assert d.feed(ended) == []
    assert [m.event for m in d.feed(JobEnded("X1C", 8, "failed", "b", []))] == ["job_failed"]
    assert [m.event for m in d.feed(JobEnded("X1C", 9, "cancelled", "c", []))] == ["job_cancelled"]


def test_low_stock_once_per_crossing() -> None:
    d = decider(low_stock_g=50)
    assert d.feed(SpoolLevel(12, "PLA", 80)) == []
    [low] = d.feed(SpoolLevel(12, "PLA", 45))
    assert low.body == "PLA (spool #12): 45 g left."
    assert d.feed(SpoolLevel(12, "PLA", 30)) == []
    assert d.feed(SpoolLevel(12, "PLA", None)) == []  # no weight: says nothing
    assert d.feed(SpoolLevel(12, "PLA", 1000)) == []  # refilled or corrected
    assert len(d.feed(SpoolLevel(12, "PLA", 20))) == 1


def test_attention_when_more_groups_wait() -> None:
    d = decider()
    assert d.feed(Attention(0)) == []
    assert [m.body for m in d.feed(Attention(2))] == ["2 groups of bills need a person (Layerwise's Ledger page)."]
    assert d.feed(Attention(2)) == [] and d.feed(Attention(1)) == []
    assert len(d.feed(Attention(2))) == 1


def test_printer_offline_after_n_minutes_then_back() -> None:
    d = decider(printer_offline_minutes=10)
    assert d.feed(Reachability("X1C", False, 1000.0)) == []
    assert d.feed(Reachability("X1C", False, 1100.0)) == []  # the outage started at 1000
    assert d.feed(Tick(1599.0)) == []
    [offline] = d.feed(Tick(1600.0))
    assert (offline.event, offline.body) == ("printer_offline", "Printer X1C has been offline for 10 min.")
    assert d.feed(Tick(5000.0)) == []
    assert [m.title for m in d.feed(Reachability("X1C", True, 5001.0))] == ["Printer X1C is back"]
    assert d.feed(Reachability("X1C", False, 6000.0)) == []
    assert d.feed(Reachability("X1C", True, 6100.0)) == []  # short outage: never told, no "back"


def test_spoolman_unreachable_after_n_minutes() -> None:
    d = decider(spoolman_unreachable_minutes=5)
    d.feed(Reachability(None, False, 0.0))
    assert [m.event for m in d.feed(Tick(300.0))] == ["spoolman_unreachable"]
    assert [m.body for m in d.feed(Reachability(None, True, 400.0))] == ["Spoolman is reachable again."]


def test_per_event_and_per_printer_choice() -> None:
    d = decider(events=["job_failed", "attention"], printers=["X1C"], printer_events={"P1S": ["job_finished"]})
    assert d.feed(JobEnded("X1C", 1, "finished", "a", [])) == []  # event not chosen
    assert len(d.feed(JobEnded("X1C", 2, "failed", "a", []))) == 1
    assert d.feed(JobEnded("A1", 3, "failed", "a", [])) == []  # printer not chosen
    assert len(d.feed(Attention(1))) == 1  # not about a printer
    assert d.feed(Forecast("X1C", 4, [tray()])) == []


def test_duration_words() -> None:
    assert [duration(s) for s in (20, 90, 3600, 7800)] == ["under a minute", "2 min", "1 h 0 min", "2 h 10 min"]
