"""The metrics' own parts: hand-made figures formatted and parsed back, error kinds, latency, registries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from server.metrics import LedgerFigures, Metrics, ledger_families, printer_families
from server.spoolman.errors import SpoolmanNotFound, SpoolmanRejected, SpoolmanUnreachable, error_kind


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_figures_at_scrape_parse_back() -> None:
    figures = LedgerFigures(bills={("X1C", "delivered"): 7, ("X1C", "ready"): 2, ("A1", "waiting_spool"): 1},
                            written={"X1C": 9, "A1": 1}, delivered={"X1C": 7, "A1": 0},
                            spool_grams={(12, "delivered"): 3.5, (12, "pending"): 0.25})
    metrics = Metrics()
    metrics.add_source(lambda: [*ledger_families(figures), *printer_families({"X1C": True, "A1": False})])
    found = samples(metrics)
    assert found[("layerwise_bills", (("printer", "X1C"), ("state", "ready")))] == 2
    assert found[("layerwise_bills", (("printer", "A1"), ("state", "waiting_spool")))] == 1
    assert found[("layerwise_bills_written_total", (("printer", "X1C"),))] == 9
    assert found[("layerwise_bills_delivered_total", (("printer", "A1"),))] == 0
    assert found[("layerwise_spool_grams_billed", (("spool", "12"), ("state", "pending")))] == 0.25
    assert found[("layerwise_printers_connected", ())] == 1
    assert found[("layerwise_printer_connected", (("printer", "A1"),))] == 0


def test_counters_and_latency() -> None:
    metrics = Metrics()
    count = metrics.report_counter("X1C")
    for _ in range(3):
        count()
    metrics.spoolman_error("unreachable")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    metrics.delivered([now - timedelta(seconds=0.2), now - timedelta(seconds=40)], now)
    found = samples(metrics)
    assert found[("layerwise_printer_reports_total", (("printer", "X1C"),))] == 3
    assert found[("layerwise_spoolman_errors_total", (("kind", "unreachable"),))] == 1
    assert found[("layerwise_delivery_latency_seconds_count", ())] == 2
    assert found[("layerwise_delivery_latency_seconds_sum", ())] == 40.2
    assert found[("layerwise_delivery_latency_seconds_bucket", (("le", "0.25"),))] == 1
    assert found[("layerwise_delivery_latency_seconds_bucket", (("le", "60.0"),))] == 2


def test_two_registries_do_not_clash() -> None:
    first, second = Metrics(), Metrics()  # the global registry would refuse the second set of names
    first.report_counter("p")()
    assert ("layerwise_printer_reports_total", (("printer", "p"),)) not in samples(second)


def test_error_kinds_never_carry_the_message() -> None:
    assert error_kind(SpoolmanNotFound("gone", resource="spool", id=3)) == "not_found"
    assert error_kind(SpoolmanRejected("bad", status_code=422)) == "rejected"
    assert error_kind(SpoolmanUnreachable("x", request_sent=False)) == "unreachable"
    assert error_kind(SpoolmanUnreachable("x", request_sent=True)) == "no_answer"
    assert error_kind(SpoolmanUnreachable("x", request_sent=True, status_code=502)) == "server_error"
    assert error_kind(SpoolmanUnreachable("x", request_sent=False, status_code=401)) == "unauthorised"
    assert error_kind(SpoolmanUnreachable("x", request_sent=True, status_code=404)) == "wrong_url"
