"""The remaining-percent fallback: estimated bills from the AMS's own ``remain`` readings. Pure.

When a job's sliced file cannot be obtained there is no per-layer usage to bill. Trays holding a Bambu
spool with an RFID tag still report how much is left (``remain``, 0-100; -1 unknown), so the drop in
``remain`` times the spool's net filament weight is billed instead, marked as an estimate. The AMS counts
in whole percent (10 g steps on a 1 kg spool), so a bill only goes out once the reading moved by more than
``threshold`` points; smaller moves are kept until they add up.

Never billed: a rise (a refill or another spool), an unknown reading, a tray without a tag (its ``remain``
means nothing), and a tray whose spool changed (its tag changed: a new baseline).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from server.printer.trays import PrinterView
from server.tracking.rfid import tray_tag

THRESHOLD_POINTS = 0.5


@dataclass(frozen=True)
class EstimateBill:
    tray: int
    grams: float
    from_percent: float
    to_percent: float
    estimate: bool = True


class RemainTracker:
    """Fed each new view of the printer during a job without a file; returns the bills to make."""

    def __init__(self, net_weight_by_tray: Mapping[int, float], threshold: float = THRESHOLD_POINTS) -> None:
        self.net_weight_by_tray = dict(net_weight_by_tray)
        self.threshold = threshold
        self.baselines: dict[int, tuple[str, float]] = {}  # tray -> (tag, percent last billed up to)

    def feed(self, view: PrinterView) -> list[EstimateBill]:
        bills: list[EstimateBill] = []
        for tray in view.trays:
            index = tray.global_index
            net = self.net_weight_by_tray.get(index)
            tag = tray_tag(tray) if tray.present else None
            if tag is None or net is None or net <= 0:
                self.baselines.pop(index, None)
                continue
            percent = tray.remain_percent
            if percent is None or percent < 0:
                continue  # unknown now: keep the baseline for when it is known again
            before = self.baselines.get(index)
            if before is None or before[0] != tag or percent > before[1]:
                self.baselines[index] = (tag, float(percent))
                continue
            drop = before[1] - percent
            if drop > self.threshold:
                bills.append(EstimateBill(index, round(drop / 100 * net, 2), before[1], float(percent)))
                self.baselines[index] = (tag, float(percent))
        return bills


def drift(spoolman_remaining_g: float | None, ams_remain_percent: float | None,
          net_weight: float | None) -> float | None:
    """Spoolman's remaining weight minus the AMS's estimate, in grams (positive: Spoolman thinks more is
    left); None when either side is unknown."""
    if spoolman_remaining_g is None or ams_remain_percent is None or ams_remain_percent < 0:
        return None
    if net_weight is None or net_weight <= 0:
        return None
    return round(spoolman_remaining_g - ams_remain_percent / 100 * net_weight, 1)
