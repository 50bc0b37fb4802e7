"""Prometheus metrics: a registry owned by the runtime (never the library's global one, so tests and several
apps in one process do not clash), the counters the hot paths increment, and the figures computed at scrape.

Hot paths only increment: a report counter per printer, Spoolman errors per kind, and the delivery latency
histogram (observed when a delivery is recorded). Everything that is a state (bills per state, grams per
spool, printers connected) is read at scrape time by :class:`ScrapeCollector` from the callables the
runtime hands it, so nothing has to be kept in step by hand. Labels carry printer names, spool ids,
ledger states and error kinds: never an address, a code or a token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text format generate_latest writes
# Written -> delivered: sub-second while Spoolman answers, minutes to days while it is away.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)


@dataclass(frozen=True)
class LedgerFigures:
    """What the ledger holds now (plain values: the billing side builds it, this side formats it)."""

    bills: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (printer, state) -> entries
    written: Mapping[str, int] = field(default_factory=dict)  # printer -> bills ever written
    delivered: Mapping[str, int] = field(default_factory=dict)  # printer -> bills in Spoolman (or counted so)
    spool_grams: Mapping[tuple[int, str], float] = field(default_factory=dict)  # (spool, delivered|pending) -> g


def ledger_families(figures: LedgerFigures) -> list[Metric]:
    """The ledger's figures as metric families (pure)."""
    bills = GaugeMetricFamily("layerwise_bills", "Ledger entries per printer and state", labels=["printer", "state"])
    for (printer, state), count in sorted(figures.bills.items()):
        bills.add_metric([printer, state], count)
    written = CounterMetricFamily("layerwise_bills_written", "Bills written to the ledger (layer bills, ever)",
                                  labels=["printer"])
    for printer, count in sorted(figures.written.items()):
        written.add_metric([printer], count)
    delivered = CounterMetricFamily("layerwise_bills_delivered", "Bills applied in Spoolman (delivered or doubtful)",
                                    labels=["printer"])
    for printer, count in sorted(figures.delivered.items()):
        delivered.add_metric([printer], count)
    grams = GaugeMetricFamily("layerwise_spool_grams_billed", "Grams billed per spool, in Spoolman or on their way",
                              labels=["spool", "state"])
    for (spool, state), value in sorted(figures.spool_grams.items()):
        grams.add_metric([str(spool), state], value)
    return [bills, written, delivered, grams]


def printer_families(online: Mapping[str, bool]) -> list[Metric]:
    each = GaugeMetricFamily("layerwise_printer_connected", "1 while the printer's MQTT link is up",
                             labels=["printer"])
    for name, up in sorted(online.items()):
        each.add_metric([name], 1 if up else 0)
    total = GaugeMetricFamily("layerwise_printers_connected", "Printers whose MQTT link is up",
                              value=sum(1 for up in online.values() if up))
    return [total, each]


class ScrapeCollector(Collector):
    """Metric families computed at scrape time by ``source`` (read from the ledger, the printer tasks)."""

    def __init__(self, source: Callable[[], Iterable[Metric]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source()

    def describe(self) -> list[Metric]:
        return []  # computed at scrape: never run at registration


class Metrics:
    """The runtime's registry and the instruments the hot paths touch."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reports = Counter("layerwise_printer_reports", "MQTT reports received per printer",
                               ["printer"], registry=self.registry)
        self.spoolman_errors = Counter("layerwise_spoolman_errors", "Spoolman requests that failed, by kind",
                                       ["kind"], registry=self.registry)
        self.delivery_latency = Histogram("layerwise_delivery_latency_seconds",
                                          "Seconds from a bill written to the ledger to its delivery to Spoolman",
                                          buckets=LATENCY_BUCKETS, registry=self.registry)

    def report_counter(self, printer: str) -> Callable[[], None]:
        """The increment a printer task calls per report (the label is looked up once, not per report)."""
        return self.reports.labels(printer).inc

    def spoolman_error(self, kind: str) -> None:
        self.spoolman_errors.labels(kind).inc()

    def delivered(self, written: Iterable[datetime], now: datetime) -> None:
        for at in written:
            self.delivery_latency.observe(max(0.0, (now - at).total_seconds()))

    def add_source(self, source: Callable[[], Iterable[Metric]]) -> None:
        self.registry.register(ScrapeCollector(source))

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes (blocking: the figures read SQLite; call it in a thread)."""
        return generate_latest(self.registry)
