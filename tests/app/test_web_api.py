"""The JSON API and pages against a live virtual printer and the Spoolman stand-in."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from tests.app.conftest import ACCESS_CODE, PRINTER, Stack

BASE = "/api/v1/printers/Workshop%20P1S"


async def test_healthz(stack: Stack) -> None:
    response = await stack.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_printer_online_with_ams_and_seeded_slot(stack: Stack) -> None:
    await stack.wait_online()
    printers = (await stack.client.get("/api/v1/printers")).json()
    assert [p["name"] for p in printers] == [PRINTER]
    printer = printers[0]
    assert printer["online"] is True
    assert printer["job"]["state"] == "IDLE"
    slots = printer["units"][0]["slots"]
    assert [s["tray"] for s in slots] == [0, 1, 2, 3]
    assert slots[0]["spool_id"] == 3 and slots[0]["source"] == "env"
    assert slots[0]["spool"]["name"] == "PLA Basic Jade White"
    assert [s["tray"] for s in printer["external"]] == [254]


async def test_assign_move_and_unassign(stack: Stack) -> None:
    await stack.wait_online()
    response = await stack.client.put(f"{BASE}/slots/1", json={"spool_id": 4})
    assert response.status_code == 200, response.text
    assert response.json()["spool_id"] == 4 and response.json()["source"] == "manual"

    # Spool 4 is in tray 1 already: assigning it elsewhere asks first, then moves it.
    conflict = await stack.client.put(f"{BASE}/slots/2", json={"spool_id": 4})
    assert conflict.status_code == 409
    assert conflict.json() == {"message": "spool 4 is already in Workshop P1S tray 1", "printer": PRINTER, "tray": 1}
    moved = await stack.client.put(f"{BASE}/slots/2", json={"spool_id": 4, "move": True})
    assert moved.status_code == 200
    slots = {s["tray"]: s["spool_id"] for s in (await stack.client.get(f"{BASE}/slots")).json()}
    assert slots[1] is None and slots[2] == 4

    assert (await stack.client.delete(f"{BASE}/slots/2")).status_code == 204
    slots = {s["tray"]: s["spool_id"] for s in (await stack.client.get(f"{BASE}/slots")).json()}
    assert slots[2] is None


async def test_external_spool_is_a_slot_like_any_other(stack: Stack) -> None:
    await stack.wait_online()
    assert (await stack.client.put(f"{BASE}/slots/254", json={"spool_id": 6})).status_code == 200
    external = (await stack.client.get(BASE)).json()["external"][0]
    assert external["spool_id"] == 6 and external["spool"]["material"] == "PETG"


async def test_clear_errors(stack: Stack) -> None:
    unknown_spool = await stack.client.put(f"{BASE}/slots/1", json={"spool_id": 999})
    assert unknown_spool.status_code == 404
    assert unknown_spool.json()["message"] == "Spoolman has no spool 999"
    unknown_printer = await stack.client.put("/api/v1/printers/Nope/slots/1", json={"spool_id": 1})
    assert unknown_printer.status_code == 404
    bad_tray = await stack.client.put(f"{BASE}/slots/300", json={"spool_id": 1})
    assert bad_tray.status_code == 400
    assert "0 to 255" in bad_tray.json()["message"]


async def test_spoolman_down_is_reported_not_fatal(stack: Stack) -> None:
    await stack.wait_online()
    await stack.spoolman.stop()
    stack.runtime.spools.invalidate()
    printer = (await stack.client.get(BASE)).json()
    assert printer["spoolman_error"]
    assert printer["units"][0]["slots"][0]["spool_id"] == 3  # the assignment is still shown
    search = await stack.client.get("/api/v1/spools", params={"search": "PLA"})
    assert search.status_code == 503
    assert "unreachable" in search.json()["message"]
    await stack.spoolman.start()


async def test_spool_search(stack: Stack) -> None:
    page = (await stack.client.get("/api/v1/spools", params={"search": "petg"})).json()
    assert page["total"] == 2
    assert {s["material"] for s in page["items"]} == {"PETG"}


async def test_openapi_document(stack: Stack) -> None:
    document = (await stack.client.get("/api/v1/schema/openapi.json")).json()
    assert "/api/v1/printers" in document["paths"]
    assert "put" in document["paths"]["/api/v1/printers/{name}/slots/{tray}"]


async def test_slot_change_is_announced_live(stack: Stack) -> None:
    await stack.wait_online()
    async with stack.runtime.bus.subscribe() as queue:
        await stack.client.put(f"{BASE}/slots/1", json={"spool_id": 5})
        async with asyncio.timeout(5):
            while True:
                event = await queue.get()
                if event.kind == "slot":
                    break
    assert event.printer == PRINTER and event.data == {"tray": 1, "spool_id": 5, "source": "manual"}


async def test_access_code_never_shown(stack: Stack) -> None:
    await stack.wait_online()
    bodies = [
        (await stack.client.get(path)).text
        for path in ("/", "/api/v1/printers", f"{BASE}/slots", "/api/v1/schema/openapi.json")
    ]
    for body in bodies:
        assert ACCESS_CODE not in body
    assert ACCESS_CODE not in repr(stack.runtime.settings)
    assert ACCESS_CODE not in json.dumps(stack.runtime.printers[PRINTER].state)


async def test_jobs_and_backlog_start_empty(stack: Stack) -> None:
    assert (await stack.client.get("/api/v1/jobs")).json() == []
    backlog = (await stack.client.get("/api/v1/backlog")).json()
    assert backlog["backlog"]["count"] == 0


async def test_rfid_endpoints_answer(stack: Stack) -> None:
    await stack.wait_online()
    assert (await stack.client.get(f"{BASE}/rfid/conflicts")).json() == []
    offer = await stack.client.get(f"{BASE}/slots/0/rfid/offer")
    assert offer.status_code == 200 and offer.json() is None  # the virtual P1S's trays carry no tag
    missing = await stack.client.get("/api/v1/jobs/99/thumbnail.png")
    assert missing.status_code == 404


async def test_get_one_slot(stack: Stack) -> None:
    """``GET /printers/{name}/slots/{tray}`` (README's API list): the same slot the list shows."""
    await stack.wait_online()
    listed = {s["tray"]: s for s in (await stack.client.get(f"{BASE}/slots")).json()}
    one = await stack.client.get(f"{BASE}/slots/0")
    assert one.status_code == 200, one.text
    assert one.json() == listed[0] and one.json()["spool_id"] == 3
    assert (await stack.client.get(f"{BASE}/slots/254")).json() == listed[254]
    assert (await stack.client.put(f"{BASE}/slots/17", json={"spool_id": 4})).status_code == 200
    unreported = (await stack.client.get(f"{BASE}/slots/17")).json()  # assigned, not reported by the printer
    assert unreported["tray"] == 17 and unreported["spool_id"] == 4
    missing = await stack.client.get(f"{BASE}/slots/18")
    assert missing.status_code == 404 and "no tray 18" in missing.json()["detail"]
    assert (await stack.client.get(f"{BASE}/slots/300")).status_code == 400
    assert (await stack.client.get("/api/v1/printers/Nope/slots/0")).status_code == 404


async def test_every_route_the_readme_lists_is_in_the_openapi_document(stack: Stack) -> None:
    """The README's JSON API section is a promise: each ``METHOD /path`` it names exists, with that method."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## JSON API", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"`((?:GET|PUT|POST|DELETE)(?:\|(?:GET|PUT|POST|DELETE))*) (/[^`?\s]*)", section)
    assert len(listed) >= 12, listed

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    document = (await stack.client.get("/api/v1/schema/openapi.json")).json()["paths"]
    routes = {shape(path): {method.upper() for method in item} for path, item in document.items()}
    for methods, path in listed:
        have = routes.get(shape("/api/v1" + path), set())
        for method in methods.split("|"):
            assert method in have, f"README lists {method} {path}; the API has {sorted(have) or 'no such path'}"
