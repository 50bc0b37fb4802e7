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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from server.analysis.filament import grams

PRELUDE = 0  # layer key of everything before the first `M73 L1`


class FilamentUsageLike(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def mm(self) -> float: ...
    @property
    def g(self) -> float | None: ...
    @property
    def density(self) -> float | None: ...  # g/cm³
    @property
    def diameter(self) -> float | None: ...  # mm


class ToolChangeLike(Protocol):
    @property
    def layer(self) -> int: ...
    @property
    def filament(self) -> int: ...


class AnalysisLike(Protocol):
    """The part of `server.analysis.PrintAnalysis` that tracking relies on."""

    @property
    def layer_count(self) -> int: ...

    @property
    def filaments(self) -> Mapping[int, FilamentUsageLike]: ...

    @property
    def tool_changes(self) -> Sequence[ToolChangeLike]: ...

    def prelude(self) -> Mapping[int, float]: ...

    def layer(self, n: int) -> Mapping[int, float]: ...  # 1-based

    def layer_at_percent(self, n: int, mc_percent: float) -> Mapping[int, float]: ...

    def used_through(self, n: int) -> Mapping[int, float]: ...


@dataclass(frozen=True)
class BillLine:
    """One slicer filament's use in one layer (layer 0 = the prelude)."""

    layer: int
    filament_index: int
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


DEFAULT_DIAMETER = 1.75  # mm: every Bambu Lab printer
DEFAULT_DENSITY = 1.24  # g/cm³ (PLA), only when the file states neither density nor grams


def filament_grams(info: FilamentUsageLike | None, mm: float) -> float:
    """Grams for `mm` of one slicer filament, from the analysis's density and diameter;
    when the file lacks them, from its own g/mm ratio, else PLA at 1.75 mm."""
    if info is None:
        return grams(mm, DEFAULT_DIAMETER, DEFAULT_DENSITY)
    if info.density is not None:
        return grams(mm, info.diameter or DEFAULT_DIAMETER, info.density)
    if info.g is not None and info.mm > 0:
        return mm * info.g / info.mm
    return grams(mm, info.diameter or DEFAULT_DIAMETER, DEFAULT_DENSITY)


def layer_usage(analysis: AnalysisLike, layer: int) -> Mapping[int, float]:
    """mm per filament of one layer; layer 0 is the prelude."""
    return analysis.prelude() if layer == PRELUDE else analysis.layer(layer)


def _lines(analysis: AnalysisLike, layer: int, usage: Mapping[int, float], *, estimate: bool) -> list[BillLine]:
    return [
        BillLine(layer, filament, usage[filament], filament_grams(analysis.filaments.get(filament), usage[filament]),
                 estimate)
        for filament in sorted(usage)
        # A layer's net use can be negative (the retraction before an unload is counted
        # where it happens); it is billed as is so the job's sum matches the analysis.
        if usage[filament] != 0
    ]


def _bill_whole_layers(analysis: AnalysisLike, checkpoint: BillingCheckpoint, through: int) -> Bills:
    """Bill every layer after the checkpoint up to and including `through`."""
    through = min(through, analysis.layer_count)
    if checkpoint.settled or through <= checkpoint.billed_through:
        return (), checkpoint
    lines: list[BillLine] = []
    for layer in range(checkpoint.billed_through + 1, through + 1):
        lines.extend(_lines(analysis, layer, layer_usage(analysis, layer), estimate=False))
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
        # What the analysis counts up to the last progress mark passed: a prefix of the
        # layer, which may exceed the layer's net use when the layer ends with the
        # retraction before an unload (billed then as the next layers' negative use).
        done = analysis.layer_at_percent(at_layer, mc_percent)
        partial = _lines(analysis, at_layer, done, estimate=True)
        after = replace(after, partial_layer=at_layer)
    return lines + tuple(partial), replace(after, settled=True)


def billed_total(lines: Sequence[BillLine]) -> dict[int, float]:
    """mm per slicer filament over the given lines."""
    total: dict[int, float] = {}
    for line in lines:
        total[line.filament_index] = total.get(line.filament_index, 0.0) + line.mm
    return total
