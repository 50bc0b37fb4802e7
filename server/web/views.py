"""What pages and the API show: printer and slot views built from live state.

Both the JSON API and the Jinja pages render these same dataclasses, so a
field shown on the phone is the field a script can read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from server.billing.usage import price_per_gram
from server.colours import colour_name as colour_name  # re-exported: pages and the HA bridge import it here
from server.db import repo
from server.jobs.remaining import drift
from server.printer import refusals
from server.printer.task import PrinterTask
from server.printer.trays import PrinterView, TrayView
from server.runtime import Runtime
from server.spoolman import Spool, SpoolmanError
from server.web.i18n import N_, Translator, english


@dataclass
class SpoolOut:
    id: int
    name: str
    vendor: str | None
    material: str | None
    color_hex: str | None
    remaining_weight: float | None
    initial_weight: float | None
    remaining_fraction: float | None
    archived: bool = False
    price_per_gram: float | None = None  # Spoolman's spool price (or the filament's) over the spool's net weight

    @classmethod
    def of(cls, spool: Spool) -> SpoolOut:
        filament = spool.filament
        initial = spool.initial_weight or (filament.weight if filament else None)
        remaining = spool.remaining_weight
        fraction = None
        if remaining is not None and initial:
            fraction = max(0.0, min(1.0, remaining / initial))
        return cls(
            id=spool.id,
            name=(filament.name if filament and filament.name else f"Spool {spool.id}"),
            vendor=(filament.vendor.name if filament and filament.vendor else None),
            material=filament.material if filament else None,
            color_hex=filament.color_hex if filament else None,
            remaining_weight=remaining,
            initial_weight=initial,
            remaining_fraction=fraction,
            archived=bool(spool.archived),
            price_per_gram=price_per_gram(spool),
        )


@dataclass
class SlotOut:
    printer: str
    tray: int
    label: str
    unit_id: int | None
    slot: int | None
    present: bool
    active: bool
    material: str | None
    color_hex: str | None
    tray_uuid: str | None
    remain_percent: int | None
    spool_id: int | None
    source: str | None
    spool: SpoolOut | None = None
    spool_missing: bool = False  # assigned id that Spoolman does not know (deleted spool)
    # For a tagged tray: Spoolman's remaining grams minus the AMS's own estimate (remain % of the net
    # weight); positive when Spoolman thinks more is left. None when either side is unknown.
    drift_g: float | None = None
    # The tray's RFID tag names this spool, but another one was assigned by hand: the user decides.
    rfid_conflict_spool_id: int | None = None


@dataclass
class UnitOut:
    id: int
    kind: str
    humidity: int | None
    temperature: float | None
    slots: list[SlotOut]


@dataclass
class JobProgressOut:
    state: str | None
    name: str | None
    layer: int | None
    total_layers: int | None
    percent: int | None
    remaining_minutes: int | None


@dataclass
class PrinterOut:
    name: str
    model: str | None
    online: bool
    last_seen: datetime | None
    error: str | None
    job: JobProgressOut
    units: list[UnitOut] = field(default_factory=list)
    external: list[SlotOut] = field(default_factory=list)
    spoolman_error: str | None = None
    report_error: str | None = None  # the last printer report that was (partly) skipped, and why
    report_error_at: datetime | None = None
    fix: str | None = None  # what a person should do about ``error``, in words
    limited: str | None = None  # "limited: the printer refuses requests ..." (consequences, fix) or None
    # Several instances on PostgreSQL: the instance that tracks this printer when it is not this one
    # ("" while nobody does: being taken over); None when this instance tracks it.
    tracked_by: str | None = None


# The printer link reports a refused login with this wording (server.printer.link.mqtt_error); the
# card turns it into the fix a person needs.
AUTH_REFUSED = "access code was refused"
AUTH_FIX = N_("Access code refused: check it on the printer's screen under Settings → LAN Only.")


def limited_words(limited: str, gettext: Translator = english) -> str:
    """The printer link's "limited: the printer refuses requests (why). consequences. fix." sentence
    (server/printer/refusals.py, English for the log and the API) in a page's language; the whys (request
    names and the printer's answers) stay as the printer link wrote them."""
    _ = gettext
    prefix = f"{refusals.LIMITED} ("
    suffix = f"). {refusals.LIMITED_CONSEQUENCES}. {refusals.LIMITED_FIX}."
    if not (limited.startswith(prefix) and limited.endswith(suffix)):
        return limited
    return _("Limited: the printer refuses requests (%(whys)s). No full state on connect: AMS slots appear as the "
             "printer reports them; module versions unknown. Fix: put the printer in LAN-only mode, or, on "
             "firmware with authorization control, turn on Developer Mode.",
             whys=limited[len(prefix):-len(suffix)])


def link_fix(error: str | None) -> str | None:
    """The fix for a printer link error a person can act on, or None."""
    if error and AUTH_REFUSED in error:
        return AUTH_FIX
    return None


def tray_label(tray: TrayView, external_count: int = 2) -> str:
    if tray.global_index in (254, 255):
        # H2D-style printers have two external spools (left 254, right 255); a lone one is just "External".
        # Marked for translation: pages show labels with the ``translate`` filter ("A1" stays "A1").
        if external_count < 2:
            return N_("External")
        return N_("External R") if tray.global_index == 255 else N_("External L")
    if tray.unit_id is not None and tray.unit_id >= 128:
        return f"HT{tray.unit_id - 127}"
    unit = tray.unit_id if tray.unit_id is not None and tray.unit_id < 16 else 0
    return f"{chr(ord('A') + unit)}{(tray.slot or 0) + 1}"


def _slot(printer: str, tray: TrayView, assignment: repo.SlotAssignmentData | None,
          spools: dict[int, Spool | None], external_count: int = 2) -> SlotOut:
    spool_id = assignment.spool_id if assignment else None
    spool = spools.get(spool_id) if spool_id is not None else None
    return SlotOut(
        printer=printer,
        tray=tray.global_index,
        label=tray_label(tray, external_count),
        unit_id=tray.unit_id,
        slot=tray.slot,
        present=tray.present,
        active=tray.active,
        material=tray.material,
        color_hex=tray.color_hex,
        tray_uuid=tray.tray_uuid,
        remain_percent=tray.remain_percent,
        spool_id=spool_id,
        source=assignment.source if assignment else None,
        spool=SpoolOut.of(spool) if spool is not None else None,
        spool_missing=spool_id is not None and spool_id in spools and spools[spool_id] is None,
        drift_g=_drift(tray, spool),
    )


def _drift(tray: TrayView, spool: Spool | None) -> float | None:
    if spool is None or not (tray.tray_uuid or tray.tag_uid):
        return None
    net = spool.initial_weight or (spool.filament.weight if spool.filament else None)
    return drift(spool.remaining_weight, tray.remain_percent, net)


async def printer_out(runtime: Runtime, task: PrinterTask, assigned: list[repo.SlotAssignmentData] | None = None,
                      *, feeding_only: bool = False) -> PrinterOut:
    """The printer for pages and the API (``assigned``: its slots' spools, when the caller read them for
    many printers at once, as the farm view does: one thread hop per printer was a cost there).

    ``feeding_only``: what a farm row reads, for the farm page's row asks (~80 printers a second): only the
    slot feeding now (of every tray), no RFID conflicts. Spools are still looked up for every assigned
    tray (from the cache) so that ``spoolman_error`` says what the full card says."""
    view: PrinterView = task.view()
    if assigned is None:
        assigned = await runtime.slots.assignments(task.name)
    assignments = {a.tray: a for a in assigned}
    spools: dict[int, Spool | None] = {}
    spoolman_error = None
    try:
        spools = await runtime.spools.get_many(a.spool_id for a in assignments.values())
        spoolman_error = runtime.spools.last_error
    except SpoolmanError as exc:  # pragma: no cover - get_many already folds these
        spoolman_error = str(exc)
    units = [
        UnitOut(
            id=unit.id,
            kind=unit.kind,
            humidity=unit.humidity,
            temperature=unit.temperature,
            slots=[_slot(task.name, t, assignments.get(t.global_index), spools) for t in unit.trays
                   if t.active or not feeding_only],
        )
        for unit in view.units
    ]
    external = [_slot(task.name, t, assignments.get(t.global_index), spools, len(view.external))
                for t in view.external if t.active or not feeding_only]
    if runtime.rfid is not None and not feeding_only:
        conflicts = {c.tray: c.tag_spool_id for c in await runtime.rfid.conflicts(task.name)}
        for slot in [s for u in units for s in u.slots] + external:
            slot.rfid_conflict_spool_id = conflicts.get(slot.tray)
    return PrinterOut(
        name=task.name,
        model=task.config.model,
        online=task.online,
        last_seen=task.last_seen,
        error=task.link_error,
        job=JobProgressOut(
            state=view.gcode_state,
            name=view.subtask_name,
            layer=view.layer_num,
            total_layers=view.total_layer_num,
            percent=view.mc_percent,
            remaining_minutes=view.mc_remaining_time,
        ),
        units=units,
        external=external,
        spoolman_error=spoolman_error,
        report_error=task.last_report_error,
        report_error_at=task.last_report_error_at,
        fix=None if task.online else link_fix(task.link_error),
        limited=task.limited,
        tracked_by=runtime.tracked_by(task.name),
    )


def all_slots(printer: PrinterOut) -> list[SlotOut]:
    return [s for u in printer.units for s in u.slots] + printer.external
