"""What a run should have billed, and how the ledger and Spoolman compare with it: pure functions.

Layer keys follow the billing rule: 0 is the prelude (everything before layer 1), 1..N the layers.
A finished print owes every layer; one cancelled during layer K at ``mc_percent`` p owes layers
0..K-1 whole and layer K up to its last ``M73 P`` mark at or below p.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from server.analysis import PrintAnalysis

TOLERANCE_MM = 0.01

Owed = dict[int, dict[int, float]]  # layer key -> slicer filament index -> mm


def owed_layers(analysis: PrintAnalysis, cancelled_at: tuple[int, int] | None = None) -> Owed:
    """Per layer key, the mm each filament owes; ``cancelled_at`` = (layer K, mc_percent) or None."""
    if cancelled_at is None:
        return {n: dict(analysis.layers[n]) for n in range(analysis.layer_count + 1)}
    layer, percent = cancelled_at
    owed = {n: dict(analysis.layers[n]) for n in range(layer)}
    owed[layer] = analysis.layer_at_percent(layer, percent)
    return owed


@dataclass(frozen=True)
class Bill:
    """One ledger entry as the comparison needs it."""

    layer: int
    filament: int
    mm: float
    spool_id: int | None
    state: str


@dataclass
class LayerCounts:
    billed: int = 0  # layer keys with at least one bill
    lost: int = 0  # layer keys owing more than was billed (or not billed at all)
    twice: int = 0  # layer keys with a (layer, filament) billed more than once or more than owed
    lost_keys: list[int] = field(default_factory=list)
    twice_keys: list[int] = field(default_factory=list)


def count_layers(owed: Owed, bills: Iterable[Bill]) -> LayerCounts:
    """Compare the ledger's bills with what each layer owes, layer by layer, to ``TOLERANCE_MM``."""
    billed_mm: dict[tuple[int, int], float] = defaultdict(float)
    billed_times: dict[tuple[int, int], int] = defaultdict(int)
    for bill in bills:
        billed_mm[bill.layer, bill.filament] += bill.mm
        billed_times[bill.layer, bill.filament] += 1
    counts = LayerCounts()
    for layer in sorted({key for key, _ in billed_mm} | set(owed)):
        owes = owed.get(layer, {})
        filaments = set(owes) | {f for (key, f) in billed_mm if key == layer}
        if any((layer, f) in billed_times for f in filaments):
            counts.billed += 1
        # Per filament: owed but never billed, or billed short, is lost; billed more than once, or more
        # than owed, is twice. (A layer's net use can be negative: a missing bill is still a loss.)
        short = any(
            ((layer, f) not in billed_times and abs(owes.get(f, 0.0)) > TOLERANCE_MM)
            or billed_mm.get((layer, f), 0.0) < owes.get(f, 0.0) - TOLERANCE_MM
            for f in filaments
        )
        over = any(
            (layer, f) in billed_times
            and (billed_times[layer, f] > 1 or billed_mm[layer, f] > owes.get(f, 0.0) + TOLERANCE_MM)
            for f in filaments
        )
        if short:
            counts.lost += 1
            counts.lost_keys.append(layer)
        if over:
            counts.twice += 1
            counts.twice_keys.append(layer)
    return counts


def owed_per_spool(owed: Owed, mapping: list[int], spool_for_tray: Mapping[int, int]) -> dict[int, float]:
    """mm each Spoolman spool should have gained: filament -> tray (``ams_mapping``) -> spool."""
    totals: dict[int, float] = defaultdict(float)
    for usage in owed.values():
        for filament, mm in usage.items():
            totals[spool_for_tray[mapping[filament]]] += mm
    return dict(totals)


def spool_differences(owed: Mapping[int, float], gained: Mapping[int, float]) -> dict[int, float]:
    """Spools whose gain in Spoolman differs from what is owed by more than ``TOLERANCE_MM`` (gained - owed)."""
    spools = set(owed) | set(gained)
    differences = {s: gained.get(s, 0.0) - owed.get(s, 0.0) for s in spools}
    return {s: d for s, d in sorted(differences.items()) if abs(d) > TOLERANCE_MM}
