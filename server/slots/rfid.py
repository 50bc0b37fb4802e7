"""RFID auto-matching decisions: which spool belongs in which tray, from the tags trays report. Pure.

A Bambu spool's RFID tag gives the tray a ``tray_uuid`` (the spool's serial, the same on both tags of a
spool) and a ``tag_uid`` (one tag's chip id). Matching keys on ``tray_uuid`` and falls back to
``tag_uid``; all-zero values mean "no tag" and already arrive as None in the tray view.

The service (``server.slots.rfid_service``) does the I/O: it looks up which Spoolman spool carries each
tag, then applies the actions returned here through the slot service. The rules:

* a tray emptied loses its assignment, whatever its source: the spool has left the tray;
* a tray whose tag changed (another spool loaded) loses the old spool's assignment and is matched anew;
* a tag carried by a spool assigns it (source ``rfid``), moving it from wherever it was assigned before,
  since the tag is physical evidence of where the spool is now;
* an assignment made by a person (``manual``, or ``env`` from the settings) is never replaced silently:
  when the tag names another spool the decision is a ``Conflict`` for the user to resolve, unless the user
  already chose to keep that very assignment for that tag;
* an unknown tag creates a spool only when ``create_spools`` is on and nobody assigned one by hand.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from server.printer.trays import PrinterView, TrayView, tray_tag

PERSON_SOURCES = frozenset({"manual", "env"})  # assignments a person made: never replaced silently

# Densities (g/cm³) for filaments created from a tray, by material family; Bambu's own values where
# they publish one. Spoolman needs a density to turn lengths into weights.
DENSITY_BY_MATERIAL: dict[str, float] = {
    "PLA": 1.24, "PETG": 1.27, "ABS": 1.04, "ASA": 1.07, "TPU": 1.21, "PC": 1.20, "PA": 1.14,
    "PAHT": 1.20, "PET": 1.38, "PPS": 1.36, "PVA": 1.23, "HIPS": 1.04, "BVOH": 1.14, "PP": 0.90,
    "PE": 0.95, "PPA": 1.17,
}
DEFAULT_DENSITY = 1.24
DEFAULT_DIAMETER = 1.75


@dataclass(frozen=True)
class TrayTag:
    """What matching remembers of a tray: whether a spool is in it, and the spool's tag."""

    present: bool
    tag: str | None


@dataclass(frozen=True)
class Held:
    """A tray's current assignment, as plain values."""

    spool_id: int
    source: str


@dataclass(frozen=True)
class Assign:
    tray: int
    spool_id: int
    tag: str


@dataclass(frozen=True)
class Unassign:
    tray: int
    reason: str  # "emptied" | "tag changed"


@dataclass(frozen=True)
class Conflict:
    tray: int
    tag: str
    manual_spool_id: int
    tag_spool_id: int


@dataclass(frozen=True)
class NewSpool:
    """What a spool created for a tray should say about its filament."""

    material: str
    color_hex: str | None  # RRGGBB, upper case
    name: str | None  # the sub-brand, e.g. "PLA Matte"
    weight_g: float | None
    diameter: float
    density: float


@dataclass(frozen=True)
class Create:
    tray: int
    tag: str
    spool: NewSpool


@dataclass(frozen=True)
class NoChange:
    tray: int
    reason: str
    retry: bool = False  # the decision needs a tag lookup that could not be made yet


Action = Assign | Unassign | Conflict | Create | NoChange

# A tag lookup result: the id of the spool carrying the tag, None when no spool does. A tag absent from
# the mapping was not looked up (Spoolman unreachable), and decisions needing it are retried later.
Lookup = Mapping[str, int | None]


def tags_of(view: PrinterView) -> dict[int, TrayTag]:
    """Each tray's presence and tag, as the printer's snapshot shows them (``PrinterSnapshot.view``)."""
    return {tray.global_index: TrayTag(tray.present, tray_tag(tray) if tray.present else None)
            for tray in view.trays}


def changed_trays(previous: Mapping[int, TrayTag], view: PrinterView) -> list[int]:
    """Trays whose presence or tag differs from what was last applied (unknown trays count as changed)."""
    now = tags_of(view)
    return sorted(index for index, seen in now.items() if previous.get(index) != seen)


def tags_to_look_up(view: PrinterView, trays: Iterable[int]) -> set[str]:
    wanted = set(trays)
    return {tag for tray in view.trays if tray.global_index in wanted and (tag := tray_tag(tray))}


def new_spool_for(tray: TrayView) -> NewSpool | None:
    """The filament a spool created for this tray gets; None when the tray says too little (no material)."""
    if not tray.material:
        return None
    color = tray.color_hex[:6].upper() if tray.color_hex and len(tray.color_hex) >= 6 else None
    return NewSpool(
        material=tray.material, color_hex=color, name=tray.name,
        weight_g=float(tray.weight_g) if tray.weight_g else None,
        diameter=tray.diameter or DEFAULT_DIAMETER, density=density_for(tray.material),
    )


def density_for(material: str) -> float:
    """Density of a material family: "PLA-S", "PLA Matte" and "PLA-CF" are PLA; "PA6-GF" is PA."""
    upper = material.upper()
    if upper in DENSITY_BY_MATERIAL:
        return DENSITY_BY_MATERIAL[upper]
    family = max((key for key in DENSITY_BY_MATERIAL if upper.startswith(key)), key=len, default=None)
    return DENSITY_BY_MATERIAL[family] if family else DEFAULT_DENSITY


@dataclass(frozen=True)
class Options:
    auto_assign: bool = True
    create_spools: bool = False


def decide_tray(
    tray: TrayView,
    before: TrayTag | None,
    held: Held | None,
    lookup: Lookup,
    options: Options,
    kept: Collection[tuple[int, str, int]] = (),
) -> list[Action]:
    """The actions for one tray. ``before`` is what was last applied for it (None: not known, e.g. the
    first report after a start), ``kept`` the (tray, tag, spool) conflicts the user resolved as "manual"."""
    index = tray.global_index
    if not tray.present:
        return [Unassign(index, "emptied")] if held else [NoChange(index, "empty")]
    tag = tray_tag(tray)
    actions: list[Action] = []
    # A different spool is in the tray when the tag changed from a known one, or when a tag appeared on
    # a tray matched by tag before (an rfid assignment without its tag is stale).
    swapped = before is not None and before.present and before.tag is not None and before.tag != tag
    if held and (swapped or (held.source == "rfid" and tag is None)):
        actions.append(Unassign(index, "tag changed"))
        held = None
    if tag is None:
        return actions or [NoChange(index, "no tag")]
    if not options.auto_assign:
        return actions or [NoChange(index, "auto-assign off")]
    if tag not in lookup:
        return [*actions, NoChange(index, "tag lookup pending", retry=True)]
    spool_id = lookup[tag]
    if spool_id is None:
        if held is not None:
            # Someone said which spool this is: offer to remember the tag on it rather than create one.
            return [*actions, NoChange(index, "tag unknown; assigned by hand")]
        spool = new_spool_for(tray) if options.create_spools else None
        if spool is None:
            return [*actions, NoChange(index, "tag unknown")]
        return [*actions, Create(index, tag, spool)]
    if held is None or held.source not in PERSON_SOURCES:
        if held is not None and held.spool_id == spool_id:
            return [*actions, NoChange(index, "matched")]
        return [*actions, Assign(index, spool_id, tag)]
    if held.spool_id == spool_id:
        return [*actions, NoChange(index, "matched")]
    if (index, tag, held.spool_id) in kept:
        return [*actions, NoChange(index, "user kept the manual assignment")]
    return [*actions, Conflict(index, tag, held.spool_id, spool_id)]


def decide(
    previous: Mapping[int, TrayTag],
    view: PrinterView,
    held: Mapping[int, Held],
    lookup: Lookup,
    options: Options,
    *,
    trays: Collection[int] | None = None,
    kept: Collection[tuple[int, str, int]] = (),
) -> list[Action]:
    """Actions for the trays of ``view`` that changed since ``previous``, or for exactly ``trays`` when
    given (every tray at a start or reconnect, when assignments or Spoolman may have changed meanwhile;
    changed trays plus those whose lookup failed on a retry)."""
    wanted = set(changed_trays(previous, view)) if trays is None else set(trays)
    actions: list[Action] = []
    for tray in view.trays:
        if tray.global_index in wanted:
            index = tray.global_index
            actions.extend(decide_tray(tray, previous.get(index), held.get(index), lookup, options, kept))
    return actions
