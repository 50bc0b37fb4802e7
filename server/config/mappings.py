"""AMS mappings: ``TRAY:SPOOL`` pairs that seed the slot assignments on a first start."""

from __future__ import annotations

from typing import Any

from server.config.problems import Problems
from server.config.values import shown

MAX_TRAY = 255  # global tray index: ams_id*4+slot, 128..135 for AMS HT, 254/255 external

MAPPING_EXPECTED = (
    "TRAY:SPOOL pairs separated by commas, TRAY a global tray index 0-255"
    " and SPOOL a positive Spoolman spool id"
)


def parse_mappings(text: str) -> tuple[dict[int, int], list[str]]:
    """``"0:12, 1:13"`` -> ``({0: 12, 1: 13}, [])``; faults name the element (1-based)."""
    mapping: dict[int, int] = {}
    faults: list[str] = []
    for position, element in enumerate(text.split(","), start=1):
        element = element.strip()
        if not element and position == len(text.split(",")) and position > 1:
            continue  # a trailing comma is harmless
        tray_text, colon, spool_text = element.partition(":")
        fault = _mapping_fault(tray_text.strip(), colon, spool_text.strip())
        if fault:
            faults.append(f"element {position} {element!r} {fault}")
            continue
        tray, spool = int(tray_text), int(spool_text)
        if tray in mapping:
            faults.append(f"element {position} {element!r} repeats tray {tray}")
            continue
        mapping[tray] = spool
    return mapping, faults


def _mapping_fault(tray: str, colon: str, spool: str) -> str | None:
    if not colon:
        return "is not TRAY:SPOOL"
    if not tray.isdigit() or int(tray) > MAX_TRAY:
        return "has a tray that is not 0-255"
    if not spool.isdigit() or int(spool) < 1:
        return "has a spool id that is not a positive integer"
    return None


def toml_mappings(value: Any, key: str, problems: Problems) -> dict[int, int]:
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        text = ",".join(f"{tray}:{spool}" for tray, spool in value.items())
    else:
        expected = 'a table such as { "0" = 12, "1" = 13 } or a string "0:12,1:13"'
        problems.add(key, f"is {shown(value)}", expected)
        return {}
    mapping, faults = parse_mappings(text)
    for fault in faults:
        problems.add(key, fault, MAPPING_EXPECTED)
    return mapping
