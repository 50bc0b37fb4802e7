"""Mid-print tray switches: a filament continuing from another tray. Pure.

When a spool runs out, the AMS continues from another tray holding the same filament (auto-refill /
backup spool), and a user may swap trays while paused; the layers after that are billed to the new tray's
spool. The tracker is fed, for each printer report, the layer, the tray the printer says is feeding, the
job's filament-to-tray mapping and the filament the analysis says is printing, and tells when the
feeding tray stopped being the mapped one for good.

A normal filament change also moves the active tray, and the printer reports the new tray around the
layer boundary, possibly while the analysis still names the previous filament. So:

* a tray that is mapped to another filament (or any tray while the mapping is incomplete) counts as a
  switch only when it keeps feeding the same filament for more than ``slack_layers`` layers;
* a tray no filament is mapped to (the backup spool) counts after ``confirm`` consecutive reports;
* any report of the expected tray, or of no tray (mid-change), starts the count again.

The switch takes effect from the layer it was first seen at.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class TraySwitch:
    filament: int
    old_tray: int
    new_tray: int
    from_layer: int


@dataclass(frozen=True)
class _Candidate:
    filament: int
    tray: int
    first_layer: int
    reports: int


@dataclass(frozen=True)
class TraySwitchTracker:
    """Frozen: ``feed`` returns the next tracker and the switch it found, if any."""

    filaments: frozenset[int] | None = None  # the job's filaments (from the analysis), None if unknown
    confirm: int = 2
    slack_layers: int = 1
    switches: tuple[TraySwitch, ...] = ()
    candidate: _Candidate | None = field(default=None, repr=False)

    @classmethod
    def for_job(cls, filaments: Collection[int] | None = None, *, confirm: int = 2,
                slack_layers: int = 1) -> TraySwitchTracker:
        return cls(frozenset(filaments) if filaments is not None else None, confirm, slack_layers)

    def with_switches(self, switches: Iterable[TraySwitch]) -> TraySwitchTracker:
        """The tracker with switches found before (restored after a restart)."""
        return replace(self, switches=(*self.switches, *switches))

    def mapping_at(self, layer: int, mapping: Mapping[int, int]) -> dict[int, int]:
        """The filament-to-tray mapping in effect at ``layer``: the job's, with switches applied."""
        effective = dict(mapping)
        for switch in self.switches:
            if switch.from_layer <= layer:
                effective[switch.filament] = switch.new_tray
        return effective

    def current(self, mapping: Mapping[int, int]) -> dict[int, int]:
        """The mapping in effect now (every switch applied)."""
        effective = dict(mapping)
        for switch in self.switches:
            effective[switch.filament] = switch.new_tray
        return effective

    def feed(self, layer: int, active_tray: int | None, mapping: Mapping[int, int],
             active_filament: int | None) -> tuple[TraySwitchTracker, TraySwitch | None]:
        if active_tray is None or active_filament is None:
            return replace(self, candidate=None), None
        effective = self.current(mapping)
        expected = effective.get(active_filament)
        if expected is None or active_tray == expected:
            # Unmapped filaments are for the mapping learner; the expected tray ends any suspicion.
            return replace(self, candidate=None), None
        seen = self.candidate
        if seen is None or (seen.filament, seen.tray) != (active_filament, active_tray):
            seen = _Candidate(active_filament, active_tray, layer, 0)
        seen = replace(seen, reports=seen.reports + 1)
        mapped_elsewhere = active_tray in {t for f, t in effective.items() if f != active_filament}
        complete = self.filaments is not None and self.filaments <= effective.keys()
        if mapped_elsewhere or not complete:
            confirmed = layer - seen.first_layer > self.slack_layers
        else:
            confirmed = seen.reports >= self.confirm
        if not confirmed:
            return replace(self, candidate=seen), None
        switch = TraySwitch(active_filament, expected, active_tray, seen.first_layer)
        return replace(self, switches=(*self.switches, switch), candidate=None), switch
