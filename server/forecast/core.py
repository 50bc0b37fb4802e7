"""The runout forecast: for each tray a job uses, the layer during which its spool runs out. Pure.

From the job's analysis (mm per layer per slicer filament), the layer billed through, the job's
mapping (filament -> tray) and what is known of each tray's spool (Spoolman's remaining weight minus
the bills still waiting in the ledger, its density and diameter). A spool without a weight is
"unknown": never guessed. A tray runs on into its AMS backups (same material and colour, the
printer's auto refill on) before it counts as run out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from server.analysis.filament import grams
from server.billing.rules import AnalysisLike, filament_grams, layer_usage

Status = Literal["enough", "runs_out", "unknown"]


@dataclass(frozen=True)
class SpoolFacts:
    """A spool as the forecast needs it; ``remaining_g`` already less the ledger's waiting bills."""

    spool_id: int
    remaining_g: float | None  # None: Spoolman has no weight for it
    density: float  # g/cm³
    diameter: float  # mm
    filament_id: int | None = None
    material: str | None = None
    color_hex: str | None = None  # rrggbb


@dataclass(frozen=True)
class TrayFacts:
    """A tray as the printer reports it, and the spool assigned to it (None: no spool)."""

    tray: int
    spool: SpoolFacts | None
    material: str | None = None
    color_hex: str | None = None  # as the printer sends it (RRGGBBAA)
    present: bool = True
    external: bool = False


@dataclass(frozen=True)
class Pace:
    """Where the print stands in time: the printer's remaining minutes at ``layer`` of ``total`` layers."""

    remaining_s: float
    layer: int
    total: int

    def seconds_until(self, layer: int) -> float:
        """Seconds until ``layer`` starts, at the print's current pace (even over the layers left)."""
        left = max(self.total - self.layer + 1, 1)
        return max(layer - self.layer, 0) * self.remaining_s / left


@dataclass(frozen=True)
class TrayForecast:
    tray: int
    spool_id: int | None
    status: Status
    runout_layer: int | None  # the layer during which the spool (and its backups) run out
    total_layers: int
    runout_in_s: float | None
    needed_g: float  # for the layers not billed yet
    remaining_g: float | None  # the spool's, plus its backups'
    filament: str  # e.g. "PLA #161616": the slicer's material and colour
    backups: tuple[int, ...] = ()  # trays the printer switches to when this one runs out

    def event(self) -> dict[str, object]:
        """The ``forecast`` event's tray entry (docs/tracking.md): exactly these keys."""
        return {"tray": self.tray, "spool_id": self.spool_id, "status": self.status,
                "runout_layer": self.runout_layer, "total_layers": self.total_layers,
                "runout_in_s": self.runout_in_s, "needed_g": self.needed_g, "remaining_g": self.remaining_g,
                "filament": self.filament}


@dataclass(frozen=True)
class Forecast:
    trays: tuple[TrayForecast, ...] = field(default_factory=tuple)

    @property
    def warnings(self) -> tuple[TrayForecast, ...]:
        return tuple(t for t in self.trays if t.status == "runs_out")


def _colour(value: str | None) -> str | None:
    return value[:6].lower() if value and len(value) >= 6 else None


def _same_filament(a: TrayFacts, b: TrayFacts) -> bool:
    """The printer's rule for a backup tray: same material and colour (case and alpha ignored)."""
    return bool(a.material and b.material and a.material.strip().upper() == b.material.strip().upper()
                and _colour(a.color_hex) is not None and _colour(a.color_hex) == _colour(b.color_hex))


def backups_of(tray: TrayFacts, trays: Mapping[int, TrayFacts], used: set[int]) -> tuple[int, ...]:
    """AMS trays the printer would continue ``tray`` from: loaded, same material and colour, not used by
    the job itself (their spool is consumed on its own), not the external spool, in tray order."""
    if tray.external:
        return ()
    return tuple(t.tray for t in sorted(trays.values(), key=lambda t: t.tray)
                 if t.tray != tray.tray and t.tray not in used and t.present and not t.external
                 and _same_filament(tray, t))


def _label(analysis: AnalysisLike, filaments: Sequence[int]) -> str:
    parts = []
    for index in filaments:
        info = analysis.filaments.get(index)
        kind = getattr(info, "type", None) or "?"
        colour = getattr(info, "color", None)
        parts.append(f"{kind} {colour}" if colour else kind)
    return ", ".join(dict.fromkeys(parts))


def tray_forecast(analysis: AnalysisLike, billed_through: int, tray: int, filaments: Sequence[int],
                  chain: Sequence[SpoolFacts | None], pace: Pace | None, backups: tuple[int, ...] = ()) -> TrayForecast:
    """One tray: ``filaments`` are the slicer filaments it prints; ``chain`` its spool then its backups'."""
    spool = chain[0] if chain else None
    first = billed_through + 1  # layer 0 is the prelude
    weights = [s.remaining_g for s in chain if s is not None]
    known = spool is not None and spool.remaining_g is not None
    remaining = sum(w for w in weights if w is not None) if known else None
    # Later spools in the chain share the first one's filament; its density and diameter convert mm.
    needed = 0.0
    runout: int | None = None
    for layer in range(max(first, 0), analysis.layer_count + 1):
        usage = layer_usage(analysis, layer)
        mm = sum(usage.get(f, 0.0) for f in filaments)
        if spool is not None:
            needed += grams(mm, spool.diameter, spool.density)
        else:
            needed += sum(filament_grams(analysis.filaments.get(f), usage.get(f, 0.0)) for f in filaments)
        if runout is None and remaining is not None and needed > remaining:
            runout = layer
    status: Status
    if not known:
        status = "unknown"
    elif runout is None:
        status = "enough"
    elif any(s is None or s.remaining_g is None for s in chain[1:]):
        status, runout = "unknown", None  # a backup of unknown weight takes over: when it ends is not known
    else:
        status = "runs_out"
    return TrayForecast(
        tray=tray, spool_id=spool.spool_id if spool else None, status=status, runout_layer=runout,
        total_layers=analysis.layer_count,
        runout_in_s=pace.seconds_until(runout) if pace is not None and runout is not None else None,
        needed_g=round(needed, 2), remaining_g=None if remaining is None else round(remaining, 2),
        filament=_label(analysis, filaments), backups=backups,
    )


def forecast(analysis: AnalysisLike, billed_through: int, mapping: Mapping[int, int],
             trays: Mapping[int, TrayFacts], pace: Pace | None, *, auto_refill: bool | None) -> Forecast:
    """Every tray the job uses (``mapping``: slicer filament -> tray; filaments without a tray are left
    out). ``auto_refill`` is the printer's AMS backup setting; None (not reported) counts as off, so a
    forecast never says "enough" on the strength of a switch the printer may not make."""
    per_tray: dict[int, list[int]] = {}
    for filament in sorted(analysis.filaments):
        tray = mapping.get(filament)
        if tray is not None and tray >= 0:
            per_tray.setdefault(tray, []).append(filament)
    used = set(per_tray)
    out = []
    for tray, filaments in sorted(per_tray.items()):
        facts = trays.get(tray, TrayFacts(tray, None))
        backups = backups_of(facts, trays, used) if auto_refill else ()
        chain = [facts.spool, *(trays[b].spool for b in backups)]
        out.append(tray_forecast(analysis, billed_through, tray, filaments, chain, pace, backups))
    return Forecast(tuple(out))


def suggestions(needed_g: float, current: SpoolFacts | None, want: TrayFacts, candidates: Sequence[SpoolFacts],
                *, skip: set[int] | None = None, limit: int = 5) -> list[SpoolFacts]:
    """Spools with enough left for ``needed_g``: the same Spoolman filament as ``current`` first, then
    the same material and colour as the tray; within each, the nearest in remaining weight first (finish
    off the smallest spool that lasts). ``skip``: spools already in a tray."""
    skip = skip or set()
    colour = _colour(want.color_hex) or (current.color_hex if current else None)
    material = (want.material or (current.material if current else None) or "").strip().upper()

    def rank(spool: SpoolFacts) -> int | None:
        if current is not None and current.filament_id is not None and spool.filament_id == current.filament_id:
            return 0
        if material and (spool.material or "").strip().upper() == material and colour \
                and _colour(spool.color_hex) == colour:
            return 1
        return None

    fitting = [(r, s) for s in candidates
               if (r := rank(s)) is not None and s.spool_id not in skip
               and (current is None or s.spool_id != current.spool_id)
               and s.remaining_g is not None and s.remaining_g >= needed_g]
    fitting.sort(key=lambda rs: (rs[0], (rs[1].remaining_g or 0.0) - needed_g, rs[1].spool_id))
    return [s for _, s in fitting[:limit]]


def match_loaded(analysis: AnalysisLike, trays: Mapping[int, TrayFacts]) -> dict[int, int]:
    """A file's filaments in the trays loaded now, as the slicer maps them: a loaded tray of the same
    material and colour, each tray once while another one fits; a filament nothing matches is left out."""
    out: dict[int, int] = {}
    for index in sorted(analysis.filaments):
        info = analysis.filaments[index]
        want = TrayFacts(-1, None, getattr(info, "type", None), (getattr(info, "color", None) or "").lstrip("#"))
        fits = [t.tray for t in sorted(trays.values(), key=lambda t: t.tray) if t.present and _same_filament(want, t)]
        free = [t for t in fits if t not in out.values()]
        if fits:
            out[index] = (free or fits)[0]
    return out
