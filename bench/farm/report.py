"""bench.farm's report: the figures of one farm size, the table of them and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.farm.browser import PageFigures
from bench.farm.judgement import PrinterJudgement

TARGETS = {"cpu": 25.0, "rss": 300.0, "lag_p99": 50.0}  # at 100 printers (issue 15)


@dataclass
class Figures:
    printers: int
    cpu_percent: float
    rss_mb: float
    lag_p50: float | None
    lag_p99: float | None
    own_lag_p99: float | None  # the part of the lag the loop thread's own CPU could explain (measure.own_lag)
    commit_p99: float | None
    bill_p99: float | None
    reports_per_s: float
    stream_bytes_per_s: float
    layers: int
    lost: int
    twice: int
    waiting: int
    spools_off: int
    drained: bool
    seconds: float
    page: PageFigures | None = None
    load: tuple[float, float] = (0.0, 0.0)  # the 1-minute load average's lowest and highest in the window
    judgements: list[PrinterJudgement] = field(default_factory=list)  # the printers whose billing is not exact

    def billing(self) -> dict[str, object]:
        """The run's billing figures, for judgement.json."""
        return {"layers": self.layers, "lost": self.lost, "twice": self.twice, "waiting": self.waiting,
                "spools_off": self.spools_off, "drained": self.drained, "load": list(self.load)}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _page_cells(page: PageFigures | None) -> tuple[str, str, str]:
    if page is None:
        return "-", "-", "-"
    return (f"{page.fps:.0f}", f"{page.long_tasks} ({page.long_task_ms:.0f})",
            f"{page.stream_bytes_per_s:.0f} + {page.rows_bytes_per_s:.0f}")


def table(rows: list[Figures]) -> str:
    head = ("printers", "CPU % of a core", "RSS MB", "loop lag p50/p99 ms", "of which own CPU p99 ms", "commit p99 ms",
            "report->bill p99 ms", "reports/s", "stream B/s per client", "layers billed", "lost", "twice",
            "waiting", "spools off", "drained", "wall s", "/farm fps", "/farm long tasks (ms)",
            "/farm B/s stream + rows", "load (1 min)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in rows:
        cells = (str(f.printers), f"{f.cpu_percent:.1f}", f"{f.rss_mb:.0f}", f"{_ms(f.lag_p50)} / {_ms(f.lag_p99)}",
                 _ms(f.own_lag_p99),
                 _ms(f.commit_p99), _ms(f.bill_p99), f"{f.reports_per_s:.0f}", f"{f.stream_bytes_per_s:.0f}",
                 str(f.layers), str(f.lost), str(f.twice), str(f.waiting), str(f.spools_off),
                 "yes" if f.drained else "NO", f"{f.seconds:.0f}", *_page_cells(f.page),
                 f"{f.load[0]:.1f}-{f.load[1]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(rows: list[Figures]) -> tuple[bool, list[str]]:
    """Exact billing at every N; the issue's resource targets at 100 printers (when measured)."""
    notes, ok = [], True
    for f in rows:
        if f.lost or f.twice or f.waiting or f.spools_off or not f.drained:
            ok = False
            notes.append(f"{f.printers} printers: billing NOT exact")
        if f.printers == 100:
            for name, value, target in (("CPU", f.cpu_percent, TARGETS["cpu"]), ("RSS", f.rss_mb, TARGETS["rss"]),
                                        ("loop lag p99", f.lag_p99 or 0.0, TARGETS["lag_p99"])):
                met = value < target
                ok = ok and met
                notes.append(f"100 printers: {name} {value:.1f} (target < {target:g}: {'met' if met else 'MISSED'})")
    return ok, notes
