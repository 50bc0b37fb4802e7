"""Which tray prints which slicer filament.

Known when the printer or the slicer says so (`ams_mapping`, `ams_mapping2`: the echo's
`ProjectFile.mapping`; the printer's `mapping` report: `PrinterSnapshot.reported_mapping`);
otherwise learned while the print runs: the analysis knows at which layer each filament is
loaded (`tool_changes`, the first load in the prelude included) and the printer's active-tray
reports say which tray it loaded.

Global tray index: `ams_id * 4 + slot` for AMS / AMS Lite / AMS 2 Pro, `128..135`
for AMS HT units (one slot each), `254`/`255` for the external spool holder(s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from server.billing.rules import ToolChangeLike
from server.printer.snapshot import NO_TRAY
from server.printer.values import as_int

# A layer-numbered change may be seen while the printer still reports the previous
# layer (the change block runs at the layer boundary), so accept one layer of slack.
LAYER_SLACK = 1


@dataclass(frozen=True)
class MappingLearner:
    """Learns `{slicer filament: tray}` from the printer's tray reports, pure and frozen.

    Each new tray the printer loads (or targets) is matched to the analysis's filament
    change due next, if it lies within one layer of the job's current layer and fits
    what is known; after lost reports only a fit that names one filament teaches. Until
    the analysis is known (the file is still downloading) the evidence is kept and
    matched when it arrives. `docs/tracking.md` lists the rules and why.
    """

    changes: tuple[tuple[int, int], ...] | None = None  # (layer, filament) in print order; None = not known yet
    learned: Mapping[int, int] = field(default_factory=dict)
    next_change: int = 0  # index into `changes` of the first change not yet matched
    last_tray: int | None = None  # the tray of the last load seen
    seen_now: int | None = None  # the last `tray_now` / `tray_tar` observed, so that only
    seen_tar: int | None = None  # their changes count (a merged state keeps stale values)
    primed: bool = False  # the baseline observation has been made
    start_tray: int | None = None  # the tray loaded at the baseline (what the job started with)
    start_layer: int | None = None  # the layer of the baseline (None: before any layer)
    pending: tuple[tuple[int | None, int], ...] = ()  # (layer, tray) loads seen before `changes` was known
    conflicts: tuple[tuple[int, int, int], ...] = ()  # (filament, tray kept, other tray seen)

    @classmethod
    def for_changes(cls, tool_changes: Sequence[ToolChangeLike]) -> MappingLearner:
        return cls().with_changes(tool_changes)

    def with_changes(self, tool_changes: Sequence[ToolChangeLike]) -> MappingLearner:
        """The learner once the analysis is known: evidence seen before is matched now."""
        if self.changes is not None:
            return self
        ordered: list[tuple[int, int]] = []
        for change in tool_changes:
            # A change to the filament already loaded makes the printer do nothing.
            if not ordered or ordered[-1][1] != change.filament:
                ordered.append((change.layer, change.filament))
        learner = replace(self, changes=tuple(ordered), pending=())._skip_history()
        for layer, tray in self.pending:
            learner = learner._saw_tray(layer, tray)
        return learner

    @property
    def filaments(self) -> frozenset[int]:
        return frozenset(filament for _layer, filament in self.changes or ())

    def observe(self, layer: int | None, tray_now: int | None, tray_tar: int | None) -> MappingLearner:
        """Feed one merged-state observation (the job's current layer, the loaded tray,
        the targeted tray); returns the learner after it."""
        learner = replace(self, seen_now=tray_now, seen_tar=tray_tar, primed=True)
        if not self.primed:
            # The first look only sets the baseline: what is loaded when a job starts is
            # the previous print's tray, not evidence about this one.
            return replace(learner, start_tray=tray_now, start_layer=layer)._skip_history()
        learner = learner._first_load_unseen(self.seen_now, layer, tray_now, tray_tar)
        # The target is announced first (at the start of the change block), the loaded
        # tray follows; a change of either tells which tray the upcoming filament is in.
        for tray, before in ((tray_tar, self.seen_tar), (tray_now, self.seen_now)):
            if tray is None or tray in (NO_TRAY, before, learner.last_tray):
                continue
            if learner.changes is None:
                learner = replace(learner, pending=(*learner.pending, (layer, tray)), last_tray=tray)
            else:
                learner = learner._saw_tray(layer, tray)
        return learner._steady(layer, tray_now)

    def _skip_history(self) -> MappingLearner:
        """Picked up mid-print (joined, or back after a restart) away from any change: the changes
        before the baseline look are history, so the first load seen is the next change in print
        order. (Without this, changes in consecutive layers each fit two filaments of the one-layer
        window and nothing would be learned.) A baseline within a layer of a change may be mid-change,
        so nothing is skipped then: the ambiguous loads teach nothing, as before."""
        if self.changes is None or self.start_layer is None:
            return self
        ahead = self.changes[self.next_change:]
        if any(abs(layer - self.start_layer) <= LAYER_SLACK for layer, _filament in ahead):
            return self
        first = next((self.next_change + offset for offset, (layer, _filament) in enumerate(ahead)
                      if layer > self.start_layer), len(self.changes))
        return self if first == self.next_change else replace(self, next_change=first)

    def after_gap(self) -> MappingLearner:
        """Layerwise was down: loads happened unseen. The next look is a new baseline (the tray loaded
        then feeds the filament printing, it is no change) and the changes before it are history."""
        if not self.primed:
            return self
        return replace(self, primed=False, seen_now=None, seen_tar=None, last_tray=None)

    def _first_load_unseen(self, before: int | None, layer: int | None, tray_now: int | None,
                           tray_tar: int | None) -> MappingLearner:
        """The print began with the filament already loaded (left in by the last print), so its
        first load moved no tray. When the next change starts, well past the first load, with
        the start tray still loaded until then, that tray was the first filament's. (Only for a
        job seen from its start: one picked up mid-print started with whatever was loaded then.)"""
        changes = self.changes
        if (not changes or len(changes) < 2 or self.next_change != 0 or self.last_tray is not None
                or layer is None or layer <= changes[0][0] + LAYER_SLACK
                or (self.start_layer is not None and self.start_layer > changes[0][0] + LAYER_SLACK)
                or self.start_tray in (None, NO_TRAY) or before != self.start_tray
                or (tray_now in (before, None) and tray_tar in (before, None, NO_TRAY))
                or changes[0][1] in self.learned or self.start_tray in self.learned.values()):
            return self
        return replace(self, learned={**self.learned, changes[0][1]: self.start_tray}, next_change=1,
                       last_tray=self.start_tray)

    def _steady(self, layer: int | None, tray_now: int | None) -> MappingLearner:
        """A single-filament print away from its load: the loaded tray is the filament's.
        This teaches a job picked up mid-print, whose load went unseen. (For several
        filaments a merged `tray_now` left stale by a lost report could name another
        filament's tray, so they learn from changes only.)"""
        # The set of filaments last: it is built anew on each look, and most looks stop before it.
        if self.learned or layer is None or tray_now is None or tray_now == NO_TRAY or len(self.filaments) != 1:
            return self
        (load_layer, filament), *_ = self.changes or ()
        if layer - load_layer <= LAYER_SLACK:
            return self  # the load may be under way: the tray may still be the last print's
        return replace(self, learned={filament: tray_now})

    def _saw_tray(self, layer: int | None, tray: int) -> MappingLearner:
        changes = self.changes or ()
        candidates = self._candidates(layer)
        if not candidates:
            return replace(self, last_tray=tray)  # a tray move outside any change (manual load)
        owner = {t: f for f, t in self.learned.items()}

        def fits(index: int) -> bool:
            """The change's filament comes from this tray, or is new and the tray unclaimed."""
            filament = changes[index][1]
            return self.learned.get(filament) == tray or (filament not in self.learned and tray not in owner)

        if candidates[0] == self.next_change and fits(self.next_change):
            index: int | None = self.next_change  # the change due next, as expected
        else:
            # The change due next is not the one seen: reports were lost (changes in
            # consecutive layers make that likely). Only a fit that names one filament
            # teaches; two possible filaments teach nothing rather than guess.
            fitting = [i for i in candidates if fits(i)]
            index = fitting[0] if len({changes[i][1] for i in fitting}) == 1 else None
            if not fitting:
                # Nothing fits what is known (an AMS backup refill, or lost reports):
                # keep it, and record the disagreement for the page to show.
                filament = changes[candidates[0]][1]
                conflict = (filament, self.learned.get(filament, -1), tray)
                return replace(self, last_tray=tray, conflicts=(*self.conflicts, conflict))
        if index is None:
            return replace(self, last_tray=tray)
        learned = {**self.learned, changes[index][1]: tray}
        return replace(self, learned=learned, next_change=index + 1, last_tray=tray)

    def _candidates(self, layer: int | None) -> list[int]:
        """The unmatched changes that fit the job's current layer, in print order."""
        changes = self.changes or ()
        if layer is None:
            # No layer seen yet for this job: only a single-filament print is unambiguous.
            single = len(self.filaments) == 1 and self.next_change < len(changes)
            return [self.next_change] if single else []
        found = []
        for index in range(self.next_change, len(changes)):
            if changes[index][0] > layer + LAYER_SLACK:
                break  # changes are in print order, so in layer order
            if changes[index][0] >= layer - LAYER_SLACK:
                found.append(index)
        return found

    def mapping(self) -> dict[int, int]:
        """`{slicer filament: tray}` learned so far."""
        return dict(self.learned)

    def to_dict(self) -> dict[str, Any]:
        return {
            # As it is: JSON writes tuples as lists; the file's changes (tens of pairs for the farm's files, never
            # changed once known) were copied into lists for every layer's checkpoint (bench.farm).
            "changes": self.changes,
            "learned": {str(k): v for k, v in self.learned.items()},
            "next_change": self.next_change,
            "last_tray": self.last_tray,
            "seen_now": self.seen_now,
            "seen_tar": self.seen_tar,
            "primed": self.primed,
            "start_tray": self.start_tray,
            "start_layer": self.start_layer,
            "pending": [list(p) for p in self.pending],
            "conflicts": [list(c) for c in self.conflicts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MappingLearner:
        changes = data.get("changes")
        return cls(
            changes=None if changes is None else tuple((int(a), int(b)) for a, b in changes),
            learned={int(k): int(v) for k, v in dict(data.get("learned", {})).items()},
            next_change=int(data.get("next_change", 0)),
            last_tray=as_int(data.get("last_tray")),
            seen_now=as_int(data.get("seen_now")),
            seen_tar=as_int(data.get("seen_tar")),
            primed=bool(data.get("primed", False)),
            start_tray=as_int(data.get("start_tray")),
            start_layer=as_int(data.get("start_layer")),
            pending=tuple((as_int(a), int(b)) for a, b in data.get("pending", ())),
            conflicts=tuple((int(a), int(b), int(c)) for a, b, c in data.get("conflicts", ())),
        )
