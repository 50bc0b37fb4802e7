"""Build ``push_status`` payloads shaped like the captures, and the deltas P1/A1 firmware sends."""

from __future__ import annotations

import copy
from typing import Any

from server.sim.printer.model import EXTERNAL_SPOOL_ID, NO_TRAY, AmsUnit, ModelFamily, Tray, global_tray_id

# P1/A1 deltas never carry these even when they change (they only appear in full msg:0 reports).
NEVER_IN_DELTAS = frozenset({"total_layer_num"})
# Bookkeeping keys every report carries; they are not "changes".
ENVELOPE = ("command", "msg", "sequence_id")


def tray_report(tray: Tray, *, tray_id: int | None = None) -> dict[str, Any]:
    if tray.empty:
        return {"id": str(tray.slot if tray_id is None else tray_id)}
    return {
        "id": str(tray.slot if tray_id is None else tray_id),
        "remain": tray.remain,
        "k": 0.019999999552965164,
        "n": 1,
        "cali_idx": -1,
        "tag_uid": tray.tag_uid,
        "tray_id_name": "",
        "tray_info_idx": tray.info_idx,
        "tray_type": tray.type,
        "tray_sub_brands": tray.sub_brands,
        "tray_color": tray.color,
        "tray_weight": str(tray.weight_g),
        "tray_diameter": "1.75",
        "tray_temp": "0",
        "tray_time": "0",
        "bed_temp_type": "0",
        "bed_temp": "0",
        "nozzle_temp_max": "240",
        "nozzle_temp_min": "190",
        "xcam_info": "000000000000000000000000",
        "tray_uuid": tray.tray_uuid,
        "ctype": 0,
        "cols": [tray.color],
    }


def _unit_bit(ams_id: int) -> int:
    return 4 + ams_id - 128 if ams_id >= 128 else ams_id


def _tray_bit(ams_id: int, slot: int) -> int:
    return 16 + ams_id - 128 if ams_id >= 128 else ams_id * 4 + slot


def ams_report(units: list[AmsUnit], *, tray_now: int, tray_tar: int, tray_pre: int, version: int) -> dict[str, Any]:
    exist = sum(1 << _unit_bit(unit.id) for unit in units)
    trays = sum(1 << _tray_bit(unit.id, t.slot) for unit in units for t in unit.trays if not t.empty)
    bbl = sum(1 << _tray_bit(unit.id, t.slot) for unit in units for t in unit.trays
              if not t.empty and t.tray_uuid.strip("0"))
    return {
        "ams": [
            {
                "id": str(unit.id),
                "humidity": str(unit.humidity),
                "temp": f"{unit.temp:.1f}",
                "tray": [tray_report(tray) for tray in unit.trays],
            }
            for unit in units
        ],
        "ams_exist_bits": f"{exist:x}",
        "tray_exist_bits": f"{trays:x}",
        "tray_is_bbl_bits": f"{bbl:x}",
        "tray_tar": str(tray_tar),
        "tray_now": str(tray_now),
        "tray_pre": str(tray_pre),
        "tray_read_done_bits": f"{trays:x}",
        "tray_reading_bits": "0",
        "version": version,
        "insert_flag": True,
        "power_on_flag": False,
    }


def idle_print_fields() -> dict[str, Any]:
    """The job fields of a printer with no job (after boot)."""
    return {
        "gcode_state": "IDLE",
        "gcode_file": "",
        "gcode_file_prepare_percent": "0",
        "subtask_name": "",
        "project_id": "0",
        "profile_id": "0",
        "task_id": "0",
        "subtask_id": "0",
        "print_type": "idle",
        "mc_print_stage": "1",
        "mc_print_sub_stage": 0,
        "mc_percent": 0,
        "mc_remaining_time": 0,
        "layer_num": 0,
        "total_layer_num": 0,
        "print_error": 0,
        "stg": [],
        "stg_cur": 0,
    }


def initial_state(family: ModelFamily, units: list[AmsUnit], external: Tray) -> dict[str, Any]:
    print_state: dict[str, Any] = {
        "nozzle_temper": 25.0,
        "nozzle_target_temper": 0,
        "bed_temper": 25.0,
        "bed_target_temper": 0,
        "chamber_temper": 5,
        "wifi_signal": "-48dBm",
        "spd_mag": 100,
        "spd_lvl": 2,
        "ams_status": 0,
        "ams_rfid_status": 0,
        "hms": [],
        "lifecycle": "product",
        "sdcard": True,
        "nozzle_diameter": "0.4",
        "nozzle_type": "stainless_steel",
        **idle_print_fields(),
        "ams": ams_report(units, tray_now=NO_TRAY, tray_tar=NO_TRAY, tray_pre=NO_TRAY, version=1),
        "vt_tray": tray_report(external, tray_id=EXTERNAL_SPOOL_ID),
    }
    if family.reports_mapping:
        print_state["mapping"] = []
    if family.vir_slot:
        print_state["vir_slot"] = [tray_report(external, tray_id=EXTERNAL_SPOOL_ID)]
    return {"print": print_state}


def diff(old: Any, new: Any) -> Any:
    """What changed from ``old`` to ``new``: dicts recurse, anything else (lists included) is sent whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        changed = {}
        for key, value in new.items():
            if key not in old:
                changed[key] = copy.deepcopy(value)
            elif old[key] != value:
                changed[key] = diff(old[key], value)
        return changed
    return copy.deepcopy(new)


def delta_report(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The ``print`` part of a P1/A1 delta (without envelope); empty when nothing reportable changed."""
    changed = diff(old.get("print", {}), new.get("print", {}))
    for key in (*NEVER_IN_DELTAS, *ENVELOPE):
        changed.pop(key, None)
    return changed


def tray_in_units(units: list[AmsUnit], tray_id: int) -> bool:
    return any(global_tray_id(unit.id, t.slot) == tray_id for unit in units for t in unit.trays)


def tray_from_report(report: dict[str, Any], slot: int) -> Tray:
    """A Tray from a captured tray dict; one without a tray_type (``{"id": ..}``) is an empty slot."""
    if "tray_type" not in report:
        return Tray(slot, empty=True)
    weight = str(report.get("tray_weight", "0"))
    return Tray(slot, type=str(report.get("tray_type", "")), color=str(report.get("tray_color", "00000000")),
                tray_uuid=str(report.get("tray_uuid", "0" * 32)), tag_uid=str(report.get("tag_uid", "0" * 16)),
                remain=int(report.get("remain", -1)), weight_g=int(weight) if weight.isdigit() else 0,
                sub_brands=str(report.get("tray_sub_brands", "")), info_idx=str(report.get("tray_info_idx", "")))


def units_from_report(ams: dict[str, Any]) -> list[AmsUnit]:
    """AMS units as a captured ``print.ams`` describes them (kind guessed from the id: 128+ is an AMS HT)."""
    units = []
    for unit in ams.get("ams", []):
        ams_id = int(unit.get("id", 0))
        trays = [tray_from_report(tray, int(tray.get("id", index))) for index, tray in enumerate(unit.get("tray", []))]
        units.append(AmsUnit(ams_id, kind="ams_ht" if ams_id >= 128 else "ams", trays=trays,
                             humidity=int(str(unit.get("humidity", "0")) or 0),
                             temp=float(str(unit.get("temp", "0")) or 0)))
    return units
