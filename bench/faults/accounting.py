"""What a run should have billed, and how the ledger and Spoolman compare with it: pure functions.

Layer keys follow the billing rule: 0 is the prelude (everything before layer 1), 1..N the layers.
A finished print owes every layer; one cancelled during layer K at ``mc_percent`` p owes layers
0..K-1 whole and layer K up to its last ``M73 P`` mark at or below p.

The invariant judged is "nothing undelivered without a visible reason": a layer is **lost** when
the ledger holds no bill for what it owes (billed nowhere, no reason), **waiting** when its bill is
in the ledger but undelivered with a reason a person sees (``waiting_tray``, ``waiting_spool``,
``rejected``), **billed twice** when a (layer, filament) has two bills or more than it owes. On
Spoolman's side, each spool's ``used_length`` must equal what the ledger delivered to it plus what
others used of it (foreign uses); each tray's spools together must have gained what the analysis
owes the tray, whichever spool was in it (a spool deleted, another assigned, one reassigned).
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


# Ledger entry states, as the comparison sorts them. The ledger counts "doubtful" as applied (it is
# flagged for a person); Spoolman's side then shows whether it was.
APPLIED_STATES = frozenset({"delivered", "doubtful"})
WAITING_STATES = frozenset({"waiting_tray", "waiting_spool", "rejected"})  # undelivered, reason visible
PENDING_STATES = frozenset({"ready", "sending"})  # the outbox still has work: the run has not drained
COUNTED_STATES = APPLIED_STATES | WAITING_STATES | PENDING_STATES


@dataclass(frozen=True)
class Bill:
    """One ledger entry as the comparison needs it."""

    layer: int
    filament: int
    mm: float
    spool_id: int | None
    state: str
    error: str | None = None

    @property
    def reason(self) -> str:
        """Why an undelivered bill waits, in short (its state, and Spoolman's refusal for a rejected one)."""
        if self.state == "rejected" and self.error:
            return f"rejected: {_gist(self.error)}"
        return self.state


def _gist(error: str) -> str:
    if "No spool with ID" in error or "deleted" in error or "404" in error:
        return "spool deleted"
    return error[:60]


@dataclass
class LayerCounts:
    billed: int = 0  # layer keys with at least one bill (delivered, waiting or pending)
    lost: int = 0  # layer keys owing more than the ledger holds for them: billed nowhere, no reason
    waiting: int = 0  # not lost, but some of it only in bills waiting with a visible reason
    pending: int = 0  # not lost, but some of it still queued or in flight (the run did not drain)
    twice: int = 0  # layer keys with a (layer, filament) billed more than once or more than owed
    lost_keys: list[int] = field(default_factory=list)
    waiting_keys: list[int] = field(default_factory=list)
    twice_keys: list[int] = field(default_factory=list)
    waiting_mm: dict[str, float] = field(default_factory=dict)  # reason -> mm undelivered for it
    other_states: dict[str, int] = field(default_factory=dict)  # states this judge does not know -> bills


def count_layers(owed: Owed, bills: Iterable[Bill]) -> LayerCounts:
    """Compare the ledger's bills with what each layer owes, layer by layer, to ``TOLERANCE_MM``.

    Bills in a state this judge does not know are left out (and counted in ``other_states``): a
    ledger that marks a bill superseded by another must not make it count twice.
    """
    counts = LayerCounts()
    billed_mm: dict[tuple[int, int], float] = defaultdict(float)
    billed_times: dict[tuple[int, int], int] = defaultdict(int)
    waiting: set[tuple[int, int]] = set()
    pending: set[tuple[int, int]] = set()
    for bill in bills:
        if bill.state not in COUNTED_STATES:
            counts.other_states[bill.state] = counts.other_states.get(bill.state, 0) + 1
            continue
        key = (bill.layer, bill.filament)
        billed_mm[key] += bill.mm
        billed_times[key] += 1
        if bill.state in WAITING_STATES:
            waiting.add(key)
            counts.waiting_mm[bill.reason] = counts.waiting_mm.get(bill.reason, 0.0) + bill.mm
        elif bill.state in PENDING_STATES:
            pending.add(key)
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
        elif any((layer, f) in waiting for f in filaments):
            counts.waiting += 1
            counts.waiting_keys.append(layer)
        elif any((layer, f) in pending for f in filaments):
            counts.pending += 1
        if over:
            counts.twice += 1
            counts.twice_keys.append(layer)
    return counts


def owed_per_tray(owed: Owed, mapping: list[int]) -> dict[int, float]:
    """mm each tray should have fed: slicer filament -> tray (``ams_mapping``)."""
    totals: dict[int, float] = defaultdict(float)
    for usage in owed.values():
        for filament, mm in usage.items():
            totals[mapping[filament]] += mm
    return dict(totals)


def owed_per_spool(owed: Owed, mapping: list[int], spool_for_tray: Mapping[int, int]) -> dict[int, float]:
    """mm each Spoolman spool should have gained when each tray kept one spool: tray -> spool."""
    totals: dict[int, float] = defaultdict(float)
    for tray, mm in owed_per_tray(owed, mapping).items():
        totals[spool_for_tray[tray]] += mm
    return dict(totals)


def spoolman_vs_ledger(
    shown: Mapping[int, float], delivered: Mapping[int, float], foreign: Mapping[int, float] | None = None
) -> dict[int, float]:
    """Spools whose ``used_length`` in Spoolman is not what the ledger delivered to them plus the foreign
    uses, by more than ``TOLERANCE_MM``: spool -> Spoolman minus (ledger + foreign).

    ``shown`` holds every spool Spoolman has or had (a deleted one as it was when deleted), so a bill
    delivered to a spool before its deletion still counts there, and one after it would show.
    """
    foreign = foreign or {}
    expected = {s: delivered.get(s, 0.0) + foreign.get(s, 0.0) for s in set(delivered) | set(foreign)}
    return spool_differences(expected, shown)


def per_tray(per_spool: Mapping[int, float], tray_of_spool: Mapping[int, int]) -> dict[int, float]:
    """Sum per tray of per-spool figures; every spool was only ever in one tray."""
    totals: dict[int, float] = defaultdict(float)
    for spool, mm in per_spool.items():
        totals[tray_of_spool[spool]] += mm
    return dict(totals)


def spool_differences(owed: Mapping[int, float], gained: Mapping[int, float]) -> dict[int, float]:
    """Keys (spools or trays) whose gain differs from what is owed by more than ``TOLERANCE_MM`` (gained - owed)."""
    spools = set(owed) | set(gained)
    differences = {s: gained.get(s, 0.0) - owed.get(s, 0.0) for s in spools}
    return {s: d for s, d in sorted(differences.items()) if abs(d) > TOLERANCE_MM}
