"""The ``get_version`` answer: a module list shaped like the captures."""

from __future__ import annotations

from typing import Any

from server.sim.printer.model import AmsUnit, ModelFamily

FIRMWARE = "01.07.00.00"
_AMS_MODULES = {"ams": ("ams", "AMS08"), "ams_lite": ("ams_f1", "AMS_F102"),
                "ams_2_pro": ("n3f", "N3F05"), "ams_ht": ("n3s", "N3S05")}


def version_modules(family: ModelFamily, serial: str, units: list[AmsUnit]) -> list[dict[str, Any]]:
    modules: list[dict[str, Any]] = [
        {"name": "ota", "project_name": family.project_name, "sw_ver": FIRMWARE, "hw_ver": "OTA",
         "sn": serial, "flag": 3},
        {"name": "mc", "project_name": family.project_name, "sw_ver": "00.01.29.83", "loader_ver": "00.00.00.32",
         "hw_ver": "MC07", "sn": f"{serial}-MC", "flag": 0},
        {"name": "th", "project_name": family.project_name, "sw_ver": "00.00.07.69", "loader_ver": "00.00.00.26",
         "hw_ver": "TH09", "sn": f"{serial}-TH", "flag": 0},
    ]
    for unit in units:
        prefix, hw = _AMS_MODULES.get(unit.kind, _AMS_MODULES["ams"])
        modules.append({"name": f"{prefix}/{unit.id}", "project_name": "", "sw_ver": "00.00.06.49",
                        "loader_ver": "00.00.00.00", "ota_ver": "00.00.00.00", "hw_ver": hw,
                        "sn": f"{serial}-AMS{unit.id}", "flag": 0})
    return modules


def version_report(family: ModelFamily, serial: str, units: list[AmsUnit], sequence_id: str) -> dict[str, Any]:
    return {"info": {"command": "get_version", "sequence_id": sequence_id,
                     "module": version_modules(family, serial, units), "result": "success", "reason": ""}}
