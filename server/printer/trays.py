"""The tray model for every kind of filament unit, from a merged printer state. Pure.

Global tray indexes (what ``ams_mapping`` and the ledger use):

=======================================  ==============================  ==========================
unit                                     unit ids                        global index
=======================================  ==============================  ==========================
AMS, AMS Lite (A1), AMS 2 Pro            0-3, four slots                 ``unit_id * 4 + slot`` (0-15)
AMS Lite on the A2L                      16, four slots                  ``24 + slot`` (24-27)
AMS HT                                   128-135, one slot               the unit id (128-135)
external spool                           ``vt_tray`` / ``vir_slot``      254 (deputy/left), 255 (main/right)
=======================================  ==============================  ==========================

The A2L's AMS Lite (unit 16) takes 24-27 because that is where Bambu Studio maps it in ``ams_mapping`` and
where its slots sit in ``tray_exist_bits`` (16 bits for four AMS, 8 for AMS HT, then this unit); 24-27 also
cannot collide with the other ranges. Units 17-19, should they ever appear, continue the pattern.

Inputs differ by firmware generation and every one is handled:

* unit kind from ``info`` (hex; low nibble 1 AMS, 2 and 5 AMS Lite, 3 AMS 2 Pro, 4 AMS HT), else from the
  ``get_version`` module names (``ams``, ``ams_f1``, ``n3f``, ``n3s``), else from the id range;
* slot occupancy from per-tray ``state`` (3/9/11 loaded; 0/1/2/5/8/10/17/21 empty), else filament data
  or ``tray_exist_bits``;
  a tray sent as ``{id}`` or ``{id, state}`` carries no filament data;
* the active tray from ``device.extruder.info[active].snow`` (``unit << 8 | slot``; 0xFF00/0xFE00 external,
  0xFFFF none) on H2D, P2S, H2S, X2D and A2L, else ``ams.tray_now`` (255 none, 254 external);
* the job's filament-to-tray mapping from ``ams_mapping2``, ``ams_mapping`` or the ``mapping`` report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.printer.state import report_body
from server.printer.values import OnceLog, StateReader, as_float, as_int, value_at

EXTERNAL_MAIN = 255  # right nozzle's external spool; the only one on single-nozzle printers with vir_slot
EXTERNAL_DEPUTY = 254  # left nozzle's (H2D); older firmware also names the only external spool 254
EXTERNAL_IDS = (EXTERNAL_DEPUTY, EXTERNAL_MAIN)
AMS_HT_IDS = range(128, 136)
A2L_LITE_IDS = range(16, 20)

KIND_AMS = "ams"
KIND_AMS_LITE = "ams_lite"
KIND_AMS_2_PRO = "ams_2_pro"
KIND_AMS_HT = "ams_ht"
KIND_UNKNOWN = "unknown"
_KIND_BY_INFO = {1: KIND_AMS, 2: KIND_AMS_LITE, 3: KIND_AMS_2_PRO, 4: KIND_AMS_HT, 5: KIND_AMS_LITE}
_KIND_BY_MODULE = {"ams": KIND_AMS, "ams_f1": KIND_AMS_LITE, "n3f": KIND_AMS_2_PRO, "n3s": KIND_AMS_HT}

_LOADED_STATES = frozenset({3, 9, 11})
_EMPTY_STATES = frozenset({0, 1, 2, 5, 8, 10, 17, 21})
_NONE_SNOW = 0xFFFF
# Callers that pass no OnceLog of their own share this one, so an odd value is still logged once, not
# on every report.
_UNNAMED = OnceLog("(unnamed)")


@dataclass(frozen=True)
class TrayView:
    global_index: int
    unit_id: int | None  # None for an external spool
    slot: int
    present: bool
    material: str | None = None
    color_hex: str | None = None  # RRGGBBAA as the printer sends it
    name: str | None = None  # the sub-brand, e.g. "PLA Matte"
    tray_uuid: str | None = None  # Bambu spool RFID: spool serial (None when all zeros)
    tag_uid: str | None = None  # RFID tag UID (None when all zeros)
    remain_percent: int | None = None
    weight_g: int | None = None
    diameter: float | None = None
    info_idx: str | None = None  # filament preset id, e.g. GFA01
    active: bool = False
    state: int | None = None

    @property
    def external(self) -> bool:
        return self.unit_id is None


@dataclass(frozen=True)
class AmsUnitView:
    id: int
    kind: str
    humidity: int | None  # percent (``humidity_raw``) when the unit reports it
    humidity_level: int | None  # the printer's 1-5 index
    temperature: float | None
    trays: list[TrayView]
    serial: str | None = None


@dataclass(frozen=True)
class PrinterView:
    units: list[AmsUnitView]
    external: list[TrayView]
    active_tray: int | None
    job_mapping: list[int | None] = field(default_factory=list)
    gcode_state: str | None = None
    subtask_name: str | None = None
    gcode_file: str | None = None
    layer_num: int | None = None
    total_layer_num: int | None = None
    mc_percent: int | None = None
    mc_remaining_time: int | None = None
    print_error: int | None = None

    @property
    def trays(self) -> list[TrayView]:
        return [tray for unit in self.units for tray in unit.trays] + list(self.external)

    def tray(self, global_index: int) -> TrayView | None:
        return next((t for t in self.trays if t.global_index == global_index), None)


# ---- index arithmetic -------------------------------------------------------------------------------


def global_index(unit_id: int, slot: int) -> int | None:
    """Global tray index of ``slot`` in unit ``unit_id`` (external ids give themselves), None if invalid."""
    if 0 <= unit_id <= 3 and 0 <= slot <= 3:
        return unit_id * 4 + slot
    if unit_id in A2L_LITE_IDS and 0 <= slot <= 3:
        return 24 + (unit_id - 16) * 4 + slot
    if unit_id in AMS_HT_IDS and slot == 0:
        return unit_id
    if unit_id in EXTERNAL_IDS:
        return unit_id
    return None


def locate(index: int) -> tuple[int, int] | None:
    """(unit id, slot) of a global tray index; externals give (254|255, 0)."""
    if 0 <= index <= 15:
        return index // 4, index % 4
    if 24 <= index <= 39:
        return 16 + (index - 24) // 4, (index - 24) % 4
    if index in AMS_HT_IDS or index in EXTERNAL_IDS:
        return index, 0
    return None


def exist_bit(unit_id: int, slot: int) -> int | None:
    """Bit of ``tray_exist_bits`` for a slot: 0-15 for AMS 0-3, 16-23 for AMS HT, 24-27 for unit 16."""
    if unit_id in AMS_HT_IDS:
        return 16 + unit_id - 128
    index = global_index(unit_id, slot)
    return None if index is None or index in EXTERNAL_IDS else index


def decode_packed(value: int | None) -> int | None:
    """``unit << 8 | slot`` (extruder ``snow``, the ``mapping`` report) to a global index."""
    if value is None or value < 0 or value == _NONE_SNOW:
        return None
    unit_id, slot = value >> 8, value & 0xFF
    if unit_id in EXTERNAL_IDS:
        return unit_id if slot != 0xFF else None  # 0xFEFF: the left nozzle has nothing loaded
    return None if slot == 0xFF else global_index(unit_id, slot)


def decode_legacy(value: int | None) -> int | None:
    """An ``ams_mapping`` entry or ``tray_now``: already a global index; -1 and 255-as-none give None."""
    if value is None or value < 0:
        return None
    return value if locate(value) is not None else None


def mapping_from(ams_mapping: Any = None, ams_mapping2: Any = None, mapping: Any = None) -> list[int | None]:
    """Global tray per slicer filament index, from the first of ``ams_mapping2``, ``ams_mapping`` and the
    ``mapping`` report that is a non-empty list. ``ams_mapping2`` comes first because older Studio versions
    write external spools as -1 in ``ams_mapping``."""
    if isinstance(ams_mapping2, list) and ams_mapping2:
        out: list[int | None] = []
        for entry in ams_mapping2:
            unit_id = as_int(entry.get("ams_id")) if isinstance(entry, Mapping) else None
            slot = as_int(entry.get("slot_id")) if isinstance(entry, Mapping) else None
            if unit_id is None or slot is None or (unit_id == 255 and slot == 255):
                out.append(None)
            else:
                out.append(global_index(unit_id, 0 if unit_id in EXTERNAL_IDS else slot))
        return out
    if isinstance(ams_mapping, list) and ams_mapping:
        return [decode_legacy(as_int(v)) for v in ams_mapping]
    if isinstance(mapping, list) and mapping:
        return [decode_packed(as_int(v)) for v in mapping]
    return []


# ---- units and trays ----------------------------------------------------------------------------------


def version_modules(version: Mapping[str, Any] | None) -> dict[int, tuple[str, str | None]]:
    """Unit id -> (kind, serial) from a ``get_version`` reply (module names like ``n3f/0``)."""
    if not version:
        return {}
    info = version.get("info", version)
    modules = info.get("module") if isinstance(info, Mapping) else None
    out: dict[int, tuple[str, str | None]] = {}
    for module in modules if isinstance(modules, list) else []:
        if not isinstance(module, Mapping):
            continue
        name = module.get("name")
        prefix, _, unit = (name if isinstance(name, str) else "").partition("/")
        unit_id = as_int(unit)
        if prefix in _KIND_BY_MODULE and unit_id is not None:
            serial = module.get("sn")
            out[unit_id] = (_KIND_BY_MODULE[prefix], serial if isinstance(serial, str) else None)
    return out


def unit_kind(unit_id: int, info: Any, from_version: str | None) -> str:
    info_bits = None
    if isinstance(info, str):
        try:
            info_bits = int(info, 16)
        except ValueError:
            info_bits = None
    elif isinstance(info, int):
        info_bits = info
    if info_bits is not None and (info_bits & 0xF) in _KIND_BY_INFO:
        return _KIND_BY_INFO[info_bits & 0xF]
    if from_version:
        return from_version
    if unit_id in AMS_HT_IDS:
        return KIND_AMS_HT
    if unit_id in A2L_LITE_IDS:
        return KIND_AMS_LITE
    return KIND_UNKNOWN


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _zero_is_none(value: Any) -> str | None:
    text = _text(value)
    return None if text is None or set(text) <= {"0"} else text


def _positive(value: int | float | None) -> Any:
    return value if value is not None and value > 0 else None


def _occupied(tray: Mapping[str, Any], exist_bits: int | None, bit: int | None) -> bool:
    state = as_int(tray.get("state"))
    if state in _LOADED_STATES:
        return True
    if state in _EMPTY_STATES:
        return False
    # Without a state, filament data means a spool: printers send an emptied slot as a bare {id}, which
    # the merge turns into a tray without data. Some firmware numbers tray_exist_bits by list position
    # rather than unit id (an AMS HT alone at bit 0), so the bits only add spools, never remove them.
    if _text(tray.get("tray_type")) is not None:
        return True
    return exist_bits is not None and bit is not None and bool(exist_bits >> bit & 1)


def tray_view(tray: Mapping[str, Any], index: int, unit_id: int | None, slot: int, present: bool,
              active_tray: int | None) -> TrayView:
    state = as_int(tray.get("state"))
    if not present:
        return TrayView(index, unit_id, slot, False, active=index == active_tray, state=state)
    remain = as_int(tray.get("remain"))
    tag_uid = _zero_is_none(tray.get("tag_uid"))
    if remain is not None and (remain < 0 or (unit_id is None and remain == 0 and tag_uid is None)):
        remain = None  # -1: unknown; an external spool without a tag always says 0
    return TrayView(
        global_index=index, unit_id=unit_id, slot=slot, present=True,
        material=_text(tray.get("tray_type")), color_hex=_text(tray.get("tray_color")),
        name=_text(tray.get("tray_sub_brands")), tray_uuid=_zero_is_none(tray.get("tray_uuid")),
        tag_uid=tag_uid, remain_percent=remain, weight_g=_positive(as_int(tray.get("tray_weight"))),
        diameter=_positive(as_float(tray.get("tray_diameter"))), info_idx=_text(tray.get("tray_info_idx")),
        active=index == active_tray, state=state,
    )


def _units(state: Mapping[str, Any], version: Mapping[str, Any] | None, active: int | None,
           once: OnceLog | None) -> list[AmsUnitView]:
    ams = state.get("ams")
    raw_units = ams.get("ams") if isinstance(ams, Mapping) else None
    if not isinstance(raw_units, list):
        return []
    exist_raw = ams.get("tray_exist_bits") if isinstance(ams, Mapping) else None
    try:
        exist_bits: int | None = int(exist_raw, 16) if isinstance(exist_raw, str) else None
    except ValueError:
        exist_bits = None
    modules = version_modules(version)
    units: list[AmsUnitView] = []
    for raw in raw_units:
        unit_id = as_int(raw.get("id")) if isinstance(raw, Mapping) else None
        if unit_id is None or global_index(unit_id, 0) is None or unit_id in EXTERNAL_IDS:
            if once is not None:
                shown = repr(raw.get("id") if isinstance(raw, Mapping) else raw)[:40]
                once.warn(f"unit:{shown}", "unknown AMS unit %s ignored", shown)
            continue
        kind_from_version, serial = modules.get(unit_id, (None, None))
        kind = unit_kind(unit_id, raw.get("info"), kind_from_version)
        trays: list[TrayView] = []
        raw_trays = raw.get("tray")
        for tray in raw_trays if isinstance(raw_trays, list) else []:  # any other shape: no trays known
            slot = as_int(tray.get("id")) if isinstance(tray, Mapping) else None
            index = None if slot is None else global_index(unit_id, slot)
            if slot is None or index is None:
                continue
            present = _occupied(tray, exist_bits, exist_bit(unit_id, slot))
            trays.append(tray_view(tray, index, unit_id, slot, present, active))
        temperature = as_float(raw.get("temp"))
        if kind == KIND_AMS_LITE and temperature == 0.0:
            temperature = None  # the AMS Lite has no sensor and says 0.0
        units.append(AmsUnitView(
            id=unit_id, kind=kind, humidity=as_int(raw.get("humidity_raw")),
            humidity_level=as_int(raw.get("humidity")), temperature=temperature,
            trays=sorted(trays, key=lambda t: t.slot), serial=serial,
        ))
    return sorted(units, key=lambda u: u.id)


def _external(state: Mapping[str, Any], active: int | None) -> list[TrayView]:
    slots = state.get("vir_slot")
    if not isinstance(slots, list) or not slots:
        vt_tray = state.get("vt_tray")
        slots = [vt_tray] if isinstance(vt_tray, Mapping) else []
    out: list[TrayView] = []
    for raw in slots:
        index = as_int(raw.get("id")) if isinstance(raw, Mapping) else None
        if index not in EXTERNAL_IDS:
            continue
        present = _text(raw.get("tray_type")) is not None
        out.append(tray_view(raw, index, None, 0, present, active))
    return out


def resolve_external(index: int | None, external: Sequence[TrayView]) -> int | None:
    """254/255 name the external spool; older firmware says 254 for the only one, newer ids it 255."""
    if index not in EXTERNAL_IDS or any(t.global_index == index for t in external):
        return index
    return external[0].global_index if len(external) == 1 else index


def active_tray_raw(state: Mapping[str, Any]) -> int | None:
    """The feeding tray's global index before external ids are resolved against the printer's spools."""
    extruder = value_at(state, ("device", "extruder"))
    infos = extruder.get("info") if isinstance(extruder, Mapping) else None
    if isinstance(infos, list) and infos:
        active_id = (as_int(extruder.get("state")) or 0) >> 4 & 0xF
        entry = next((i for i in infos if isinstance(i, Mapping) and as_int(i.get("id")) == active_id), None)
        if entry is not None and "snow" in entry:
            return decode_packed(as_int(entry.get("snow")))
    tray_now = as_int(value_at(state, ("ams", "tray_now")))
    if tray_now is None or tray_now == 255:
        return None
    return decode_legacy(tray_now)


Trays = tuple[list[AmsUnitView], list[TrayView], int | None]  # units, external spools, the feeding tray


def trays_of(state: Mapping[str, Any], version: Mapping[str, Any] | None, once: OnceLog | None = None) -> Trays:
    raw_active = active_tray_raw(state)
    external_probe = _external(state, None)
    active = resolve_external(raw_active, external_probe)
    return _units(state, version, active, once or _UNNAMED), _external(state, active), active


def printer_view(state: Mapping[str, Any], version: Mapping[str, Any] | None = None,
                 project_file: Mapping[str, Any] | None = None, once: OnceLog | None = None,
                 trays: Trays | None = None) -> PrinterView:
    """Everything the tray and job pages need, from a merged state (+ ``get_version`` reply and the
    job's ``project_file`` request/echo when known). Pass the printer's ``OnceLog`` so odd values are
    logged once per printer with its name; ``trays``: ``trays_of`` this state, when already known."""
    once = once or _UNNAMED
    read = StateReader(once)
    units, external, active = trays if trays is not None else trays_of(state, version, once)
    job = report_body(project_file) if project_file else {}
    mapping = mapping_from(job.get("ams_mapping"), job.get("ams_mapping2"), state.get("mapping"))
    return PrinterView(
        units=units, external=external, active_tray=active,
        job_mapping=[resolve_external(i, external) for i in mapping],
        gcode_state=read.str_at(state, "gcode_state"), subtask_name=read.str_at(state, "subtask_name"),
        gcode_file=read.str_at(state, "gcode_file"), layer_num=read.int_at(state, "layer_num"),
        total_layer_num=read.int_at(state, "total_layer_num"), mc_percent=read.int_at(state, "mc_percent"),
        mc_remaining_time=read.int_at(state, "mc_remaining_time"),
        print_error=read.int_at(state, "print_error"),
    )


def tray_tag(tray: TrayView) -> str | None:
    """The tag matching keys on: ``tray_uuid``, else ``tag_uid``, upper case (None: no tag)."""
    tag = tray.tray_uuid or tray.tag_uid
    return tag.strip().upper() if tag else None
