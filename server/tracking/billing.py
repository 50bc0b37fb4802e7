"""The billing rule: which filament, of which layer, is billed when.

- The prelude (everything before layer 1, layer key 0) is billed when layer 1 starts.
- Layer *n* is billed when the printer reports a layer above *n*, or finishes.
- FINISH bills every remaining layer.
- A cancel or failure during layer *n* bills layer *n* pro rata (the analysis's
  `layer_at_percent(n, mc_percent)`: the mm up to the last `M73 P` mark the printer
  passed) and nothing after it.

Every function takes the billing checkpoint and returns only the new bill lines and
the next checkpoint, so a layer is never billed twice: reports that go backwards,
repeat, or arrive after the job was settled bill nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

PRELUDE = 0  # layer key of everything before the first `M73 L1`


class FilamentUsageLike(Protocol):
    index: int
    density: float  # g/cm³
    diameter: float  # mm


class ToolChangeLike(Protocol):
    layer: int
    filament: int


class AnalysisLike(Protocol):
    """The part of `server.analysis.PrintAnalysis` that tracking relies on."""

    @property
    def layer_count(self) -> int: ...

    @property
    def filaments(self) -> Mapping[int, FilamentUsageLike]: ...

    @property
    def tool_changes(self) -> Sequence[ToolChangeLike]: ...

    def layer(self, n: int) -> Mapping[int, float]: ...

    def layer_at_percent(self, n: int, mc_percent: float) -> Mapping[int, float]: ...

    def used_through(self, n: int) -> Mapping[int, float]: ...


@dataclass(frozen=True)
class BillLine:
    """One slicer filament's use in one layer (layer 0 = the prelude)."""

    layer: int
    filament: int
    mm: float
    grams: float
    estimate: bool  # True for the pro-rata part of an interrupted layer


@dataclass(frozen=True)
class BillingCheckpoint:
    """What has been billed so far for one job.

    `billed_through` is the last layer billed whole (-1 = nothing yet, 0 = the prelude).
    `partial_layer` is set once an interrupted layer was billed pro rata; the job's
    billing is then `settled` and nothing more is billed.
    """

    billed_through: int = -1
    partial_layer: int | None = None
    settled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "billed_through": self.billed_through,
            "partial_layer": self.partial_layer,
            "settled": self.settled,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BillingCheckpoint:
        partial = data.get("partial_layer")
        return cls(
            billed_through=int(data.get("billed_through", -1)),
            partial_layer=None if partial is None else int(partial),
            settled=bool(data.get("settled", False)),
        )


Bills = tuple[tuple[BillLine, ...], BillingCheckpoint]


def grams_for(mm: float, diameter: float, density: float) -> float:
    """Mass of `mm` of filament: cross-section area × length × density."""
    area_mm2 = math.pi * (diameter / 2.0) ** 2
    return area_mm2 * mm * density / 1000.0  # mm³ → cm³


def _lines(analysis: AnalysisLike, layer: int, usage: Mapping[int, float], *, estimate: bool) -> list[BillLine]:
    lines = []
    for filament in sorted(usage):
        mm = usage[filament]
        if mm <= 0:
            continue
        info = analysis.filaments.get(filament)
        grams = grams_for(mm, info.diameter, info.density) if info is not None else 0.0
        lines.append(BillLine(layer, filament, mm, grams, estimate))
    return lines


def _bill_whole_layers(analysis: AnalysisLike, checkpoint: BillingCheckpoint, through: int) -> Bills:
    """Bill every layer after the checkpoint up to and including `through`."""
    through = min(through, analysis.layer_count)
    if checkpoint.settled or through <= checkpoint.billed_through:
        return (), checkpoint
    lines: list[BillLine] = []
    for layer in range(checkpoint.billed_through + 1, through + 1):
        lines.extend(_lines(analysis, layer, analysis.layer(layer), estimate=False))
    return tuple(lines), replace(checkpoint, billed_through=through)


def bill_progress(analysis: AnalysisLike, checkpoint: BillingCheckpoint, reported_layer: int) -> Bills:
    """The printer reports it is in `reported_layer`: every layer below it is complete.

    Skipped layers (messages lost, Layerwise down) are billed too; a report that goes
    backwards bills nothing and never un-bills.
    """
    return _bill_whole_layers(analysis, checkpoint, reported_layer - 1)


def bill_finish(analysis: AnalysisLike, checkpoint: BillingCheckpoint) -> Bills:
    """FINISH: bill every layer not billed yet, then close the job's billing."""
    lines, after = _bill_whole_layers(analysis, checkpoint, analysis.layer_count)
    if checkpoint.settled:
        return lines, after
    return lines, replace(after, settled=True)


def bill_stop(
    analysis: AnalysisLike, checkpoint: BillingCheckpoint, at_layer: int | None, mc_percent: float | None
) -> Bills:
    """A cancel or failure during `at_layer`: bill the layers before it whole, that
    layer pro rata to `mc_percent`, nothing after it, and close the job's billing.

    With no layer known (the printer never said), only what was already billed stands.
    """
    if checkpoint.settled:
        return (), checkpoint
    if at_layer is None:
        return (), replace(checkpoint, settled=True)
    at_layer = min(max(at_layer, 0), analysis.layer_count)
    lines, after = _bill_whole_layers(analysis, checkpoint, at_layer - 1)
    partial: list[BillLine] = []
    if at_layer > after.billed_through and mc_percent is not None:
        whole = analysis.layer(at_layer)
        done = analysis.layer_at_percent(at_layer, mc_percent)
        # Never more than the layer holds, whatever the printer's percentage says.
        usage = {f: min(mm, whole.get(f, 0.0)) for f, mm in done.items()}
        partial = _lines(analysis, at_layer, usage, estimate=True)
        after = replace(after, partial_layer=at_layer)
    return lines + tuple(partial), replace(after, settled=True)


def billed_total(lines: Sequence[BillLine]) -> dict[int, float]:
    """mm per slicer filament over the given lines."""
    total: dict[int, float] = {}
    for line in lines:
        total[line.filament] = total.get(line.filament, 0.0) + line.mm
    return total
