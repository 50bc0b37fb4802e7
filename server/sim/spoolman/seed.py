"""Demo inventory for the stand-in: a few vendors, filaments and spools a small print farm might hold."""

from __future__ import annotations

import json

from server.sim.spoolman.store import SpoolmanStore

# The extra field Layerwise stores a Bambu RFID tray UUID in, and the two tags the virtual
# printer's demo AMS reports (so RFID matching finds these spools in the demo).
TRAY_UUID_FIELD = "bambu_tray_uuid"
DEMO_TRAY_UUIDS = {
    "pla_black": "A1B2C3D4E5F60718293A4B5C6D7E8F90",
    "petg_green": "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
}


def seed_demo(store: SpoolmanStore) -> None:
    store.add_or_update_field("spool", TRAY_UUID_FIELD, {"name": "Bambu tray UUID", "field_type": "text"})
    bambu = store.create_vendor({"name": "Bambu Lab", "empty_spool_weight": 250.0})["id"]
    polymaker = store.create_vendor({"name": "Polymaker", "empty_spool_weight": 140.0})["id"]
    esun = store.create_vendor({"name": "eSun", "empty_spool_weight": 224.0})["id"]

    def filament(vendor_id: int, name: str, material: str, color_hex: str, density: float) -> int:
        params = {
            "vendor_id": vendor_id,
            "name": name,
            "material": material,
            "color_hex": color_hex,
            "density": density,
            "diameter": 1.75,
            "weight": 1000.0,
        }
        return int(store.create_filament(params)["id"])

    pla_black = filament(bambu, "PLA Basic Black", "PLA", "000000", 1.26)
    pla_white = filament(bambu, "PLA Basic Jade White", "PLA", "FFFFFF", 1.26)
    pla_red = filament(bambu, "PLA Basic Red", "PLA", "C12E1F", 1.26)
    petg_green = filament(bambu, "PETG HF Green", "PETG", "00AE42", 1.25)
    polyterra = filament(polymaker, "PolyTerra PLA Charcoal Black", "PLA", "2B2B2B", 1.31)
    esun_petg = filament(esun, "PETG Solid Blue", "PETG", "1F4E9E", 1.27)

    def spool(filament_id: int, used: float, location: str, tray_uuid: str | None = None, **more: object) -> None:
        params: dict[str, object] = {
            "filament_id": filament_id,
            "used_weight": used,
            "location": location,
            **more,
        }
        if tray_uuid is not None:
            params["extra"] = {TRAY_UUID_FIELD: json.dumps(tray_uuid)}
        store.create_spool(params)

    spool(pla_black, 212.5, "AMS A", DEMO_TRAY_UUIDS["pla_black"], lot_nr="BL-2407")
    spool(petg_green, 80.0, "AMS A", DEMO_TRAY_UUIDS["petg_green"])
    spool(pla_white, 0.0, "Shelf 1")
    spool(pla_red, 640.0, "Shelf 1")
    spool(polyterra, 15.0, "Shelf 2", comment="opened for the calibration cube")
    spool(esun_petg, 0.0, "Shelf 2")
    spool(pla_black, 0.0, "Dry box")
    spool(pla_white, 990.0, "Bin", archived=True)
