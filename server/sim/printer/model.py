"""The virtual printer's AMS units, trays and model family: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

EXTERNAL_SPOOL_ID = 254  # vt_tray id on single-nozzle printers
NO_TRAY = 255


@dataclass
class Tray:
    slot: int
    type: str = "PLA"
    color: str = "FFFFFFFF"
    tray_uuid: str = "0" * 32
    tag_uid: str = "0" * 16
    remain: int = -1
    weight_g: int = 1000
    sub_brands: str = ""
    info_idx: str = "GFA00"
    empty: bool = False  # slot with no spool: reported as {"id": "<slot>"} only


@dataclass
class AmsUnit:
    id: int  # 0-3 AMS / AMS Lite / AMS 2 Pro, 128-135 AMS HT (one slot)
    kind: str = "ams"  # "ams" | "ams_lite" | "ams_2_pro" | "ams_ht"
    trays: list[Tray] = field(default_factory=list)
    humidity: int = 5
    temp: float = 0.0

    def __post_init__(self) -> None:
        if not self.trays:
            self.trays = [Tray(slot) for slot in range(1 if self.kind == "ams_ht" else 4)]


@dataclass(frozen=True)
class ModelFamily:
    """What differs between printer models in what they report."""

    code: str  # model name as given, e.g. "P1S"
    project_name: str  # get_version's project_name
    delta_reports: bool  # P1/A1 send msg:1 deltas; X1/H2/P2 send the full state each time
    reports_mapping: bool  # X1/H2/P2 carry print.mapping; P1/A1 do not
    gcode_file_in_data: bool  # X1/H2/P2 report gcode_file as /data/Metadata/plate_<n>.gcode
    vir_slot: bool  # H2/P2 report the external spool(s) in vir_slot as well


_FAMILIES = {
    "P1P": ("C11", True, False, False, False),
    "P1S": ("C12", True, False, False, False),
    "A1": ("N2S", True, False, False, False),
    "A1MINI": ("N1", True, False, False, False),
    "X1C": ("BL-P001", False, True, True, False),
    "X1E": ("C13", False, True, True, False),
    "P2S": ("N7", False, True, True, True),
    "H2S": ("O1S", False, True, True, True),
    "H2D": ("O1D", False, True, True, True),
}


def model_family(model: str) -> ModelFamily:
    key = model.upper().replace(" ", "").replace("-", "")
    if key == "X1":
        key = "X1C"
    if key not in _FAMILIES:
        raise ValueError(f"unknown printer model {model!r}; known: {', '.join(sorted(_FAMILIES))}")
    project, delta, mapping, in_data, vir_slot = _FAMILIES[key]
    return ModelFamily(model, project, delta, mapping, in_data, vir_slot)


def global_tray_id(ams_id: int, slot: int) -> int:
    """The tray number used in tray_now / ams_mapping: ams_id*4+slot, or the AMS HT's own id."""
    return ams_id if ams_id >= 128 else ams_id * 4 + slot


def mapping_code(tray_id: int) -> int:
    """print.mapping's encoding (ams_id << 8 | slot), e.g. 258 = AMS 1 slot 2, 0xFF00 = external."""
    if tray_id < 0:
        return 0xFFFF
    if tray_id >= 128:  # AMS HT units and the external spools: the id is the unit, slot 0
        return tray_id << 8
    return (tray_id // 4) << 8 | tray_id % 4
