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
from server.printer.trays import printer_view
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


@pytest.mark.parametrize("name", NAMES)
async def test_capture_renders(runtime: Runtime, name: str) -> None:
    task = runtime.printers[PRINTER]
    task.state, task.version, task.project_file = {}, None, None
    await task._on_message(load("push_status_full", name))
    await task._on_message(load("get_version", name))
    expected = printer_view(task.state, task.version)
    async with EmbeddedServer(create_app(runtime, manage_lifespan=False)) as web, \
            httpx.AsyncClient(base_url=web.url) as client:
        page = await client.get("/")
        api = (await client.get("/api/v1/printers")).json()[0]
    assert page.status_code == 200, page.text[:2000]
    assert [u["id"] for u in api["units"]] == [u.id for u in expected.units]
    assert [u["kind"] for u in api["units"]] == [u.kind for u in expected.units]
    slots = [s for u in api["units"] for s in u["slots"]] + api["external"]
    assert [s["tray"] for s in slots] == [t.global_index for t in expected.trays]
    assert [s["tray_uuid"] for s in slots] == [t.tray_uuid for t in expected.trays]
    assert [s["tray"] for s in slots if s["active"]] == ([expected.active_tray] if expected.active_tray is not None
                                                         and expected.tray(expected.active_tray) else [])
    for slot in slots:  # every tile is on the page with its automation hooks
        assert f'data-tray="{slot["tray"]}"' in page.text


async def test_capture_served_by_the_virtual_printer(tmp_path: Path) -> None:
    name = "X1C_3xAMS_1xAMSHT_rfid_FINISH"
    async with make_stack(tmp_path, model="X1C") as stack:
        stack.printer.load_state(load("push_status_full", name))
        await stack.printer.push_full_state()
        expected = printer_view(load("push_status_full", name)["print"])
        async with asyncio.timeout(15):
            while True:
                api = (await stack.client.get("/api/v1/printers")).json()[0]
                if [u["id"] for u in api["units"]] == [u.id for u in expected.units]:
                    break
                await asyncio.sleep(0.05)
        tags = [s["tray_uuid"] for u in api["units"] for s in u["slots"]]
        assert tags == [t.tray_uuid for u in expected.units for t in u.trays]
        assert (await stack.client.get("/")).status_code == 200


def test_every_capture_is_covered() -> None:
    # X1C (2), H2D (3), H2S, P2S, P1P (2), A1, A2L and an AMS-HT-only printer.
    assert len(NAMES) == 12
