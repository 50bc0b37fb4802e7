"""Every real printer capture renders on the dashboard and in the API: units, slots, tags, active tray.

The state is fed to a running Layerwise the way the printer feeds it (a full report, then the
``get_version`` answer); one capture also goes the whole way through the virtual printer
(``layerwise simulate --state``) over MQTT.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from server.config import PrinterConfig, ServerConfig, Settings
from server.runtime import Runtime
from server.web.app import create_app
from server.web.embedded import EmbeddedServer
from tests.app.conftest import PRINTER, make_stack

CAPTURES = Path(__file__).parents[1] / "fixtures" / "mqtt-captures"
NAMES = sorted(p.name.removeprefix("push_status_full_").removesuffix(".json")
               for p in CAPTURES.glob("push_status_full_*.json"))


def load(kind: str, name: str) -> dict:
    return json.loads((CAPTURES / f"{kind}_{name}.json").read_text())


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    data = tmp_path_factory.mktemp("captures")
    settings = Settings(server=ServerConfig(data_dir=data), printers=(
        PrinterConfig(name=PRINTER, host="127.0.0.1", serial="00M00A000000000", access_code="12345678",
                      mqtt_port=1, ftps_port=1),))
    return Runtime.build(settings)


# What each capture shows, written out (units with their kind, every slot's global tray index, the active
# slot) rather than taken from printer_view, the function under test. Checked against the raw reports:
# AMS n's trays are 4n..4n+3 (the A2L's AMS lite reports id 16 and is numbered as the printer numbers it),
# an AMS HT is one tray numbered by its id (128+), the external spools are 254/255 (vt_tray, vir_slot).
SHOWN: dict[str, tuple[list[tuple[int, str]], list[int], list[int]]] = {
    "A1_IDLE_amslite_vt_tray254": ([(0, "ams_lite")], [0, 1, 2, 3, 254], []),
    "A2L_IDLE_amslite_id16": ([(16, "ams_lite")], [24, 25, 26, 27, 255], []),
    "H2D_RUNNING_cloud_extspool_active_AMSHT128_129": (
        [(0, "ams_2_pro"), (1, "ams"), (2, "ams"), (3, "ams_2_pro"), (128, "ams_ht"), (129, "ams_ht")],
        [*range(16), 128, 129, 254, 255], [255]),
    "H2D_RUNNING_local_rfid_vir_slot": ([(0, "ams_2_pro"), (1, "ams_2_pro")], [*range(8), 254, 255], [7]),
    "H2D_diag": ([(0, "ams"), (128, "ams_ht")], [0, 1, 2, 3, 128, 254, 255], [128]),
    "H2S_RUNNING_cloud": ([(0, "ams_2_pro")], [0, 1, 2, 3, 255], [0]),
    "MISC_RUNNING_AMSHT_only_tray_now128": ([(128, "ams_ht")], [128, 254], [128]),
    "P1P_msg0_FAILED_amsstatus_vt_tray": ([(0, "ams")], [0, 1, 2, 3, 254], [0]),
    "P1P_noAMS_FINISH_tray_now254": ([], [254], [254]),
    "P2S_RUNNING_local_rfid": ([(0, "ams_2_pro")], [0, 1, 2, 3, 255], [3]),
    "X1C_2xAMS_1xAMS2Pro_1xAMSHT_tray_state": ([(0, "ams"), (1, "ams"), (2, "ams_2_pro"), (128, "ams_ht")],
                                               [*range(12), 128, 255], []),
    "X1C_3xAMS_1xAMSHT_rfid_FINISH": ([(0, "ams"), (1, "ams"), (2, "ams_2_pro"), (128, "ams_ht")],
                                      [*range(12), 128, 255], []),
}


def raw_tags(report: dict) -> set[str]:
    """Every RFID tag the raw report carries (AMS trays and external spools), read straight from the JSON."""
    trays = [t for unit in report.get("ams", {}).get("ams", []) for t in unit.get("tray", [])]
    trays += [report["vt_tray"]] if isinstance(report.get("vt_tray"), dict) else []
    trays += [t for t in report.get("vir_slot") or [] if isinstance(t, dict)]
    return {t["tray_uuid"] for t in trays if t.get("tray_uuid", "").strip("0")}


@pytest.mark.parametrize("name", NAMES)
async def test_capture_renders(runtime: Runtime, name: str) -> None:
    task = runtime.printers[PRINTER]
    task.state, task.version, task.project_file = {}, None, None
    await task._on_message(load("push_status_full", name))
    await task._on_message(load("get_version", name))
    async with EmbeddedServer(create_app(runtime, manage_lifespan=False)) as web, \
            httpx.AsyncClient(base_url=web.url) as client:
        page = await client.get("/")
        api = (await client.get("/api/v1/printers")).json()[0]
    assert page.status_code == 200, page.text[:2000]
    units, trays, active = SHOWN[name]
    assert [(u["id"], u["kind"]) for u in api["units"]] == units
    slots = [s for u in api["units"] for s in u["slots"]] + api["external"]
    assert [s["tray"] for s in slots] == trays
    assert [s["tray"] for s in slots if s["active"]] == active
    assert {s["tray_uuid"] for s in slots if (s["tray_uuid"] or "").strip("0")} == raw_tags(
        load("push_status_full", name)["print"])
    for slot in slots:  # every tile is on the page with its automation hooks
        assert f'data-tray="{slot["tray"]}"' in page.text


async def test_capture_served_by_the_virtual_printer(tmp_path: Path) -> None:
    name = "X1C_3xAMS_1xAMSHT_rfid_FINISH"
    async with make_stack(tmp_path, model="X1C") as stack:
        stack.printer.load_state(load("push_status_full", name))
        await stack.printer.push_full_state()
        units = [unit for unit, _ in SHOWN[name][0]]
        async with asyncio.timeout(15):
            while True:
                api = (await stack.client.get("/api/v1/printers")).json()[0]
                if [u["id"] for u in api["units"]] == units:
                    break
                await asyncio.sleep(0.05)
        tags = {s["tray_uuid"] for u in api["units"] for s in u["slots"] if (s["tray_uuid"] or "").strip("0")}
        assert tags == raw_tags(load("push_status_full", name)["print"])
        assert (await stack.client.get("/")).status_code == 200


def test_every_capture_is_covered() -> None:
    assert sorted(SHOWN) == NAMES
    # X1C (2), H2D (3), H2S, P2S, P1P (2), A1, A2L and an AMS-HT-only printer.
    assert len(NAMES) == 12
