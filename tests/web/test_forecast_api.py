"""``POST /api/v1/forecast``: will the spools last for a sliced file? Against the demo's stack (virtual X1C,
Spoolman stand-in), whose trays hold spools 1 (PLA Black, tray 0) and 3 (PLA White, tray 1), PLA at
1.26 g/cm³, 1.75 mm."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from server.analysis import analyze_file
from server.analysis.filament import grams, millimetres
from tests.web.credentials import csrf_pair
from tests.web.web_stack import PRINTER, WebStack

FILE = Path(__file__).resolve().parents[1] / "fixtures" / "print-files" / "p1s-2colour-bs2.05.gcode.3mf"
MAPPING = {"0": 1, "3": 0}  # white filament 0 in tray 1 (spool 3), black filament 3 in tray 0 (spool 1)


def post(api: httpx.Client, content: bytes = b"", **fields: str) -> httpx.Response:
    return api.post("/forecast", files={"file": ("plate.gcode.3mf", content or FILE.read_bytes())}, data=fields)


def test_per_tray_needed_remaining_and_enough(api: httpx.Client) -> None:
    response = post(api, printer=PRINTER, mapping=json.dumps(MAPPING))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["plate"], answer["layer_count"], answer["unmapped"]) == (1, 100, [])
    analysis = analyze_file(FILE)
    trays = {t["tray"]: t for t in answer["trays"]}
    assert trays[1]["spool_id"] == 3 and trays[0]["spool_id"] == 1
    assert trays[1]["filaments"] == [0] and trays[0]["filaments"] == [3]
    assert trays[1]["needed_g"] == round(grams(analysis.filaments[0].mm, 1.75, 1.26), 2)  # 23.83 g
    assert trays[0]["needed_g"] == round(grams(analysis.filaments[3].mm, 1.75, 1.26), 2)  # 8.82 g
    for tray in trays.values():  # the demo's spools hold hundreds of grams
        assert (tray["status"], tray["enough"], tray["runout_layer"]) == ("enough", True, None)
        assert tray["remaining_g"] > tray["needed_g"]


def test_a_spool_too_light_names_the_layer(api: httpx.Client, stack: WebStack) -> None:
    runtime = stack.runtime
    assert runtime is not None
    store = stack.store
    before = store.get_spool(1)["remaining_weight"]

    async def set_remaining(weight: float) -> None:
        store.update_spool(1, {"remaining_weight": weight})
        runtime.spools.invalidate(1)

    stack.call(lambda: set_remaining(5.0))
    try:
        answer = post(api, printer=PRINTER, mapping=json.dumps(MAPPING)).json()
    finally:
        stack.call(lambda: set_remaining(before))
    black = next(t for t in answer["trays"] if t["tray"] == 0)
    analysis = analyze_file(FILE)
    budget, used, layer = millimetres(5.0, 1.75, 1.26), 0.0, 0
    while used <= budget:  # filament 3's per-layer mm, prelude first
        used += analysis.layers[layer].get(3, 0.0)
        layer += 1
    assert (black["status"], black["enough"], black["runout_layer"]) == ("runs_out", False, layer - 1)
    assert black["remaining_g"] <= 5.0  # less whatever the ledger still owes spool 1


def test_as_loaded_now_and_without_a_printer(api: httpx.Client) -> None:
    loaded = post(api, printer=PRINTER).json()  # no mapping: the trays' material and colour
    placed = {f for t in loaded["trays"] for f in t["filaments"]} | {u["filament_index"] for u in loaded["unmapped"]}
    assert placed == {0, 3}
    bare = post(api, mapping="[0, -1, -1, 2]").json()  # no printer: no spools, needs only
    assert [(t["tray"], t["spool_id"], t["status"], t["enough"]) for t in bare["trays"]] == \
        [(0, None, "unknown", None), (2, None, "unknown", None)]
    assert bare["trays"][0]["needed_g"] == pytest.approx(23.46, abs=0.01)  # the file's own density, 1.24


@pytest.mark.parametrize(("content", "fields", "words"), [
    (b"PK\x03\x04 not really a zip", {}, "cannot read the file"),
    (b"", {"mapping": "{\"0\": \"tray one\"}"}, "mapping"),
    (b"", {"mapping": "not json"}, "mapping"),
    (b"", {"printer": "Nobody"}, "no printer named"),
    (b"", {"plate": "7"}, "cannot read the file"),
    (b"", {"plate": "two"}, "plate"),
])
def test_bad_requests_get_a_clean_400(api: httpx.Client, content: bytes, fields: dict[str, str], words: str) -> None:
    response = post(api, content, **fields)
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]


def test_no_file_is_a_400(api: httpx.Client) -> None:
    assert api.post("/forecast", data={"printer": PRINTER}).status_code == 400


def test_the_phone_page_answers_the_same(stack: WebStack) -> None:
    with httpx.Client(base_url=stack.url, timeout=20, **csrf_pair()) as client:
        page = client.get("/forecast")
        assert page.status_code == 200 and 'name="file"' in page.text and "Will it last?" in page.text
        answer = client.post("/forecast/check", files={"file": ("cube.gcode.3mf", FILE.read_bytes())},
                             data={"printer": PRINTER, "mapping": json.dumps(MAPPING), "plate": ""})
        assert answer.status_code == 200
        assert 'data-forecast-tray="1" data-forecast-status="enough"' in answer.text
        assert "Plate 1, 100 layers" in answer.text
        broken = client.post("/forecast/check", files={"file": ("x.gcode.3mf", b"nonsense")}, data={})
        assert broken.status_code == 200 and "cannot read the file" in broken.text


def test_the_share_target_takes_a_file_without_a_token_but_not_from_another_site(stack: WebStack) -> None:
    files = {"file": ("cube.gcode.3mf", FILE.read_bytes())}
    with httpx.Client(base_url=stack.url, timeout=20) as phone:  # no CSRF cookie or header: the share sheet's POST
        shared = phone.post("/forecast/share", files=files, headers={"Sec-Fetch-Site": "none"})
        assert shared.status_code == 200, shared.text
        assert "Plate 1, 100 layers" in shared.text and 'name="file"' in shared.text
        forged = phone.post("/forecast/share", files=files, headers={"Sec-Fetch-Site": "cross-site"})
        assert forged.status_code == 403
        assert phone.post("/forecast/share", files=files).status_code == 403  # no fetch metadata: not a browser
    manifest = httpx.get(stack.url + "/manifest.webmanifest").json()
    assert manifest["share_target"]["action"] == "/forecast/share"
    assert manifest["share_target"]["params"]["files"][0]["name"] == "file"
