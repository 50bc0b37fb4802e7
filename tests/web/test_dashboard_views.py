"""Pure pieces of the dashboard (issue 12): tray labels, colour names, the refused-code fix, state words,
the end-of-print summary and a Jobs page line with its costs."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from server.jobs.store import JobRecord, JobSummary, SpoolUsage
from server.printer.trays import TrayView
from server.web.history import job_row
from server.web.pages import EndOfPrint, place_words, state_words
from server.web.views import AUTH_FIX, SpoolOut, colour_name, link_fix, tray_label


def _tray(index: int) -> TrayView:
    return TrayView(global_index=index, unit_id=None, slot=0, present=True)


def test_a_lone_external_spool_is_just_external_two_are_left_and_right() -> None:
    assert tray_label(_tray(254), 1) == "External"
    assert tray_label(_tray(255), 1) == "External"
    assert (tray_label(_tray(254), 2), tray_label(_tray(255), 2)) == ("External L", "External R")


def test_colours_have_plain_names() -> None:
    assert colour_name("#ffffff") == "white"
    assert colour_name("FFFFFFFF") == "white"  # printers send RRGGBBAA
    assert colour_name("000000") == "black"
    assert colour_name("C12E1F") == "red"
    assert colour_name("1F4E9E") == "blue"
    assert colour_name(None) is None and colour_name("#zzzzzz") is None and colour_name("#fff") is None


@settings(max_examples=100)
@given(st.text(max_size=12))
def test_colour_name_never_raises(text: str) -> None:
    assert colour_name(text) is None or isinstance(colour_name(text), str)


def test_a_refused_access_code_names_the_fix_other_errors_do_not() -> None:
    # The wording server.printer.link.mqtt_error gives a refused MQTT login.
    assert link_fix("printer X1C: the access code was refused (MQTT login)") == AUTH_FIX
    assert "Settings → LAN Only" in AUTH_FIX
    assert link_fix("printer X1C: connection refused at 10.0.0.2:8883") is None
    assert link_fix(None) is None


def test_state_words() -> None:
    assert state_words("FINISH") == "Finished"
    assert state_words("RUNNING") == "Printing"
    assert state_words(None) == "Idle"
    assert state_words("SOME_NEW_STATE") == "Some new state"


def test_end_of_print_words() -> None:
    assert EndOfPrint(1, 7.6, 4).words == "7.6 g billed to 4 spools"
    assert EndOfPrint(1, 0.04, 1).words == "0.0 g billed to 1 spool"


def test_place_words() -> None:
    assert place_words("P1S", 1) == "P1S tray A2"
    assert place_words("P1S", 254) == "P1S external spool"


def _spool(spool_id: int, price_per_gram: float | None) -> SpoolOut:
    return SpoolOut(spool_id, "PLA", None, "PLA", "ff0000", 500.0, 1000.0, 0.5, price_per_gram=price_per_gram)


def test_a_jobs_line_costs_each_spool_and_totals_only_when_every_price_is_known() -> None:
    job = JobRecord(7, "X1C", "Cube|1", "Cube.gcode.3mf", 1, "thumb.png", "finished", True, None, {},
                    datetime(2026, 1, 2, 3, 4, tzinfo=UTC), None)
    usage = [SpoolUsage(1, 0, grams_delivered=4.0), SpoolUsage(2, 1, grams_delivered=1.0, grams_pending=1.0)]
    row = job_row(JobSummary(job, usage), {1: _spool(1, 0.02), 2: _spool(2, 0.03)})
    assert (row.name, row.state, row.thumbnail) == ("Cube", "Finished", "/api/v1/jobs/7/thumbnail.png")
    assert [u.grams for u in row.usage] == [4.0, 2.0]
    assert [round(u.cost or 0, 4) for u in row.usage] == [0.08, 0.06]
    assert row.cost is not None and round(row.cost, 4) == 0.14
    unknown = job_row(JobSummary(job, usage), {1: _spool(1, 0.02)})
    assert unknown.usage[1].cost is None and unknown.cost is None
