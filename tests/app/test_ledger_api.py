"""The ledger's JSON API (usage logs, job, needs attention, corrections) against the Spoolman stand-in,
with bills written by the ledger's own functions and delivered by the real outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.billing import ledger
from server.billing.settlement import DELIVERED, DOUBTFUL, REJECTED, WAITING_SPOOL
from server.db import repo
from server.db.ledger_tables import LedgerEntry, SpoolDelivery
from server.jobs import store as job_store
from tests.app.conftest import PRINTER, Stack
from tests.billing.ledger_helpers import Line
from tests.billing.ledger_rows import ledger_entries
from tests.waiting import until

BASE = "/api/v1/printers/Workshop%20P1S"


def new_job(stack: Stack, name: str = "cube.gcode.3mf") -> int:
    return job_store.create_job(stack.runtime.db, PRINTER, name, state="printing", file_name=name, plate=1).id


def bill(stack: Stack, job_id: int, mapping: dict[int, int], layers: range, filament: int = 0,
         mm: float = 10.0) -> list[int]:
    lines = [Line(layer, filament, mm, grams=mm * 0.003) for layer in layers]
    rows = ledger.record_bills(stack.runtime.db, job_id, lines, mapping)
    if stack.runtime.outbox is not None:
        stack.runtime.outbox.wake()
    return [row.id for row in rows]


def states(stack: Stack, ids: list[int]) -> set[str]:
    return {e.state for e in ledger_entries(stack.runtime.db) if e.id in ids}


def used(stack: Stack, spool_id: int) -> float:
    return float(stack.spoolman.store.get_spool(spool_id)["used_weight"])


def used_mm(stack: Stack, spool_id: int) -> float:
    return float(stack.spoolman.store.get_spool(spool_id)["used_length"])


async def test_spool_log_pages_newest_first_with_job_layer_filament_and_delivery(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {0: 0}, range(0, 5))  # tray 0 holds spool 3 (seeded)
    await until(lambda: states(stack, ids) == {DELIVERED})
    page = (await stack.client.get("/api/v1/spools/3/ledger", params={"limit": 2})).json()
    assert page["total"] == 5 and page["limit"] == 2 and len(page["items"]) == 2
    first = page["items"][0]
    assert first["layer"] == 4 and first["filament"] == 1 and first["job_name"] == "cube"
    assert first["job_id"] == job and first["plate"] == 1 and first["tray_label"] == "A1"
    assert first["state"] == "delivered" and first["delivered_at"] and first["kind"] == "bill"
    assert page["totals"]["mm_delivered"] == pytest.approx(50.0)
    assert page["spool"]["id"] == 3 and page["archived"] is False
    rest = (await stack.client.get("/api/v1/spools/3/ledger", params={"limit": 2, "offset": 4})).json()
    assert [i["layer"] for i in rest["items"]] == [0]
    only_job = (await stack.client.get("/api/v1/spools/3/ledger", params={"job": job + 1})).json()
    assert only_job["total"] == 0


async def test_spool_log_errors_and_archived_spool(stack: Stack) -> None:
    assert (await stack.client.get("/api/v1/spools/999/ledger")).status_code == 404
    assert (await stack.client.get("/api/v1/spools/3/ledger", params={"limit": 0})).status_code == 400
    assert (await stack.client.get("/api/v1/spools/3/ledger", params={"offset": -1})).status_code == 400
    assert (await stack.client.get("/api/v1/spools/x/ledger")).status_code in (400, 404)
    archived = (await stack.client.get("/api/v1/spools/8/ledger")).json()  # the demo's archived spool
    assert archived["archived"] is True and archived["total"] == 0


async def test_job_lists_its_usage_per_spool(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {0: 0, 1: 2}, range(0, 3)) + bill(stack, job, {0: 0, 1: 2}, range(0, 3), filament=1)
    await until(lambda: DELIVERED in states(stack, ids))
    detail = (await stack.client.get(f"/api/v1/jobs/{job}")).json()
    assert detail["name"] == "cube" and detail["printer"] == PRINTER
    parts = {(p["spool_id"], tuple(p["trays"])): p for p in detail["parts"]}
    assert parts[(3, (0,))]["count"] == 3 and parts[(3, (0,))]["filaments"] == [1]
    assert parts[(3, (0,))]["first_layer"] == 0 and parts[(3, (0,))]["last_layer"] == 2
    waiting = parts[(None, (2,))]
    assert waiting["states"] == {WAITING_SPOOL: 3} and waiting["mm_stuck"] == pytest.approx(30.0)
    assert (await stack.client.get("/api/v1/jobs/424242")).status_code == 404


async def test_a_bill_waiting_for_a_spool_is_listed_and_assigning_delivers_it(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {0: 2}, range(0, 3))  # tray 2 (A3) has no spool
    found = (await stack.client.get("/api/v1/attention")).json()
    assert found["count"] == 3
    [group] = found["groups"]
    assert group["reason"] == WAITING_SPOOL and group["tray_label"] == "A3" and group["count"] == 3
    assert group["message"] == f"Waiting for a spool in tray A3 of {PRINTER}."
    assert group["mm"] == pytest.approx(30.0) and "assign_spool" in group["actions"]
    before = used_mm(stack, 5)
    assert (await stack.client.put(f"{BASE}/slots/2", json={"spool_id": 5})).status_code == 200
    await until(lambda: states(stack, ids) == {DELIVERED})
    assert used_mm(stack, 5) - before == pytest.approx(30.0, abs=0.01)
    assert (await stack.client.get("/api/v1/attention")).json() == {"count": 0, "groups": []}


async def test_never_guess_a_tray_the_person_picks_it(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {}, range(0, 2), filament=1)  # the tray of filament 2 is not known
    [group] = (await stack.client.get("/api/v1/attention")).json()["groups"]
    assert group["reason"] == "waiting_tray" and group["filament"] == 2 and group["actions"] == ["pick_tray"]
    assert group["message"].startswith("Which tray fed filament 2 of cube?")
    bad = [
        ({"job_id": job, "filament_index": 1, "tray": 300}, 400),
        ({"job_id": job, "filament_index": 5, "tray": 0}, 404),
        ({"job_id": 424242, "filament_index": 1, "tray": 0}, 404),
        ({"job_id": job, "tray": 0}, 400),
        ({"job_id": "x", "filament_index": 1, "tray": 0}, 400),
    ]
    for body, status in bad:
        response = await stack.client.post("/api/v1/attention/tray", json=body)
        assert response.status_code == status, (body, response.text)
    assert (await stack.client.post("/api/v1/attention/tray", content=b"not json")).status_code == 400
    before = used_mm(stack, 3)
    done = await stack.client.post("/api/v1/attention/tray", json={"job_id": job, "filament_index": 1, "tray": 0})
    assert done.status_code == 200 and done.json()["changed"] == 2
    await until(lambda: states(stack, ids) == {DELIVERED})
    assert used_mm(stack, 3) - before == pytest.approx(20.0, abs=0.01)


async def test_bills_for_a_spool_spoolman_does_not_know_are_sent_to_another(stack: Stack) -> None:
    repo.assign_spool(stack.runtime.db, PRINTER, 1, 77, "manual")  # as if spool 77 was deleted in Spoolman
    job = new_job(stack)
    ids = bill(stack, job, {0: 1}, range(0, 4))
    await until(lambda: states(stack, ids) <= {REJECTED, WAITING_SPOOL} and states(stack, ids))
    [group] = (await stack.client.get("/api/v1/attention")).json()["groups"]
    assert "repoint" in group["actions"] and group["error"]
    selector = group["selector"]
    unknown = await stack.client.post("/api/v1/attention/repoint", json={**selector, "to_spool_id": 999})
    assert unknown.status_code == 404
    assert (await stack.client.post("/api/v1/attention/repoint", json=selector)).status_code == 400
    no_state = await stack.client.post("/api/v1/attention/repoint", json={**selector, "state": "nonsense",
                                                                          "to_spool_id": 4})
    assert no_state.status_code == 400
    confirm = await stack.client.post("/api/v1/attention/confirm", json=selector)
    assert confirm.status_code == 400  # confirming applies to doubtful requests only
    before = used_mm(stack, 4)
    done = await stack.client.post("/api/v1/attention/repoint", json={**selector, "to_spool_id": 4})
    assert done.status_code == 200 and done.json()["changed"] == 4
    await until(lambda: states(stack, ids) == {DELIVERED})
    assert used_mm(stack, 4) - before == pytest.approx(40.0, abs=0.01)
    again = await stack.client.post("/api/v1/attention/repoint", json={**selector, "to_spool_id": 4})
    assert again.status_code == 404  # nothing left in that group


def doubtful_bills(stack: Stack, spool_id: int, mm: float) -> int:
    """A request whose outcome settlement could not tell (as the outbox records it), for spool ``spool_id``."""
    job = new_job(stack, "vase.gcode.3mf")
    with stack.runtime.db.session() as session:
        delivery = SpoolDelivery(spool_id=spool_id, mm=mm, expected_g=0.1, before_used_weight=0.0, state=DOUBTFUL,
                                 sent_at=datetime.now(UTC))
        session.add(delivery)
        session.flush()
        session.add(LedgerEntry(job_id=job, printer=PRINTER, layer=1, filament_index=0, tray=3, spool_id=spool_id,
                                mm=mm, grams=0.1, state=DOUBTFUL, delivery_id=delivery.id))
        session.commit()
        assert delivery.id is not None
        return delivery.id


async def test_doubtful_request_confirmed_or_sent_again(stack: Stack) -> None:
    doubtful_bills(stack, 4, 12.0)
    [group] = (await stack.client.get("/api/v1/attention")).json()["groups"]
    assert group["reason"] == DOUBTFUL and group["actions"] == ["confirm", "retry"]
    assert "someone else changed spool #4" in group["message"]
    assert (await stack.client.post("/api/v1/attention/confirm", json=group["selector"])).json()["changed"] == 1
    assert (await stack.client.get("/api/v1/attention")).json()["count"] == 0

    doubtful_bills(stack, 4, 12.0)
    [group] = (await stack.client.get("/api/v1/attention")).json()["groups"]
    before = used_mm(stack, 4)
    assert (await stack.client.post("/api/v1/attention/retry", json=group["selector"])).status_code == 200
    await until(lambda: used_mm(stack, 4) - before > 11.99)
    assert used_mm(stack, 4) - before == pytest.approx(12.0, abs=0.01)


async def test_correction_moves_a_jobs_usage_and_never_floors_the_old_spool(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {0: 0}, range(0, 4))  # 40 mm on spool 3, which had nothing used before
    await until(lambda: states(stack, ids) == {DELIVERED})
    body = {"job_id": job, "from_spool_id": 3, "to_spool_id": 4}
    plan = (await stack.client.post("/api/v1/corrections", json=body)).json()["plan"]
    assert plan["mm"] == pytest.approx(40.0) and plan["floored"] is False
    assert plan["refund_mm"] == pytest.approx(40.0)

    # Someone lowered spool 3's used weight in Spoolman: a full refund would stop at 0.
    stack.spoolman.store.update_spool(3, {"used_weight": used(stack, 3) / 2})
    stack.runtime.spools.invalidate()
    plan = (await stack.client.post("/api/v1/corrections", json=body)).json()["plan"]
    assert plan["floored"] is True and plan["refund_mm"] == pytest.approx(20.0, abs=0.02)
    assert "would stop at 0" in plan["message"]
    refused = await stack.client.post("/api/v1/corrections", json={**body, "confirm": True})
    assert refused.status_code == 409 and "would stop at 0" in refused.json()["message"]

    before_new = used_mm(stack, 4)
    done = await stack.client.post("/api/v1/corrections",
                                   json={**body, "confirm": True, "refund_mm": plan["refund_mm"]})
    assert done.status_code == 201, done.text
    refund_id, charge_id = done.json()["refund_id"], done.json()["charge_id"]
    await until(lambda: states(stack, [refund_id, charge_id]) == {DELIVERED})
    assert used(stack, 3) == pytest.approx(0.0, abs=1e-3)  # refunded what it had, not below
    assert used_mm(stack, 4) - before_new == pytest.approx(40.0, abs=0.01)
    old_log = (await stack.client.get("/api/v1/spools/3/ledger")).json()["items"]
    new_log = (await stack.client.get("/api/v1/spools/4/ledger")).json()["items"]
    assert (old_log[0]["kind"], old_log[0]["pair_id"], old_log[0]["mm"]) == ("refund", charge_id,
                                                                             pytest.approx(-plan["refund_mm"]))
    assert (new_log[0]["kind"], new_log[0]["pair_id"], new_log[0]["layer"]) == ("charge", refund_id, None)
    assert (old_log[0]["pair_spool_id"], new_log[0]["pair_spool_id"]) == (4, 3)
    # What is left of the job on spool 3 is what the refund could not take back; moving it again is refused.
    again = await stack.client.post("/api/v1/corrections", json={**body, "confirm": True})
    assert again.status_code == 409


async def test_correction_bad_input(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {0: 0}, range(0, 1))
    await until(lambda: states(stack, ids) == {DELIVERED})
    cases = [
        ({"job_id": job, "from_spool_id": 3, "to_spool_id": 3}, 400),
        ({"job_id": 424242, "from_spool_id": 3, "to_spool_id": 4}, 404),
        ({"job_id": job, "from_spool_id": 3, "to_spool_id": 999}, 404),
        ({"job_id": job, "from_spool_id": 5, "to_spool_id": 4}, 409),
        ({"job_id": job, "from_spool_id": 3, "to_spool_id": 4, "refund_mm": -1}, 400),
        ({"job_id": job, "from_spool_id": 3, "to_spool_id": 4, "refund_mm": 1e9}, 400),
        ({"job_id": job, "from_spool_id": 3}, 400),
        ({"job_id": job, "from_spool_id": 3, "to_spool_id": "four"}, 400),
    ]
    for body, status in cases:
        for confirm in (False, True):
            response = await stack.client.post("/api/v1/corrections", json={**body, "confirm": confirm})
            assert response.status_code == status, (body, confirm, response.text)
    assert (await stack.client.post("/api/v1/corrections", content=b"[1,")).status_code == 400


async def test_the_ledger_routes_are_in_the_openapi_document(stack: Stack) -> None:
    paths = (await stack.client.get("/api/v1/schema/openapi.json")).json()["paths"]
    for path in ("/api/v1/spools/{spool_id}/ledger", "/api/v1/jobs/{job_id}", "/api/v1/attention",
                 "/api/v1/attention/tray", "/api/v1/attention/repoint", "/api/v1/attention/retry",
                 "/api/v1/attention/confirm", "/api/v1/corrections"):
        assert path in paths, path


async def test_numbers_too_large_for_the_ledger_are_bad_input_never_a_500(stack: Stack) -> None:
    big = 10**20
    posts = [
        ("/api/v1/attention/tray", {"job_id": big, "filament_index": 0, "tray": 0}),
        ("/api/v1/attention/retry", {"job_id": big, "state": "rejected", "spool_id": big}),
        ("/api/v1/attention/confirm", {"job_id": 1, "state": "doubtful", "delivery_id": big}),
        ("/api/v1/attention/repoint", {"job_id": 1, "state": "rejected", "to_spool_id": big}),
        ("/api/v1/corrections", {"job_id": big, "from_spool_id": 1, "to_spool_id": 2}),
        ("/api/v1/corrections", {"job_id": 1, "from_spool_id": -1, "to_spool_id": 2}),
    ]
    for path, body in posts:
        response = await stack.client.post(path, json=body)
        assert response.status_code == 400, (path, body, response.text)
    for path in (f"/api/v1/spools/{big}/ledger", f"/api/v1/jobs/{big}", f"/api/v1/spools/1/ledger?job={big}",
                 f"/jobs/{big}", f"/spools/{big}/ledger", f"/jobs/1/correct?from_spool={big}"):
        response = await stack.client.get(path)
        assert response.status_code in (400, 404), (path, response.status_code)
    picker = await stack.client.get(f"/attention/pick-spool?job_id={big}&state=rejected")
    assert picker.status_code == 200 and "not known" in picker.text
