"""The live-update stream's writes: events gathered into one write, in order, each once."""

from __future__ import annotations

from server.events import Event
from server.web.events import encode, one_write


def test_a_burst_goes_out_in_order_and_without_repeats() -> None:
    first, job, again = Event("printer", "A"), Event("job", "A", {"id": 3}), Event("printer", "A")
    other = Event("printer", "B", {"online": True})
    assert one_write([first, job, again, other]) == encode(first) + encode(job) + encode(other)


def test_an_event_is_one_server_sent_event() -> None:
    assert encode(Event("printer", "Farm 01", {"online": False})) == (
        b'event: printer\r\ndata: {"printer": "Farm 01", "online": false}\r\n\r\n')


def test_a_forecast_reaches_pages_as_its_printer_and_job_only() -> None:
    trays = [{"tray": 1, "spool_id": 12, "status": "enough", "needed_g": 3.5, "remaining_g": 999.31}]
    first = Event("forecast", "Farm 01", {"job_id": 17, "trays": trays})
    later = Event("forecast", "Farm 01", {"job_id": 17, "trays": [{**trays[0], "remaining_g": 999.32}]})
    assert encode(first) == b'event: forecast\r\ndata: {"printer": "Farm 01", "job_id": 17}\r\n\r\n'
    assert one_write([first, later]) == encode(first)  # the same to a page: one reload
