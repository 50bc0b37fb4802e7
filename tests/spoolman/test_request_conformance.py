"""The client's requests against Spoolman's OpenAPI document: the checker itself, and every client call.

`tests/conftest.py` checks every request the client sent during the whole session at its end; this file
shows the checker catches what it must (an unknown or misspelt key, an unknown query parameter, a wrong
type, a wrong method or path) and drives each client call so the check never depends on other tests.
"""

from __future__ import annotations

import httpx
import pytest

from server.sim.spoolman import RECORDER, Exchange, SpoolmanStandin
from server.sim.spoolman.recorder import NO_BODY
from server.sim.spoolman.request_conformance import RequestCheck
from server.spoolman import SpoolmanClient
from tests.spoolman.conftest import load_openapi


@pytest.fixture(scope="module")
def check() -> RequestCheck:
    return RequestCheck(load_openapi())


def sent(method: str, path: str, body: object = NO_BODY, query: tuple[tuple[str, str], ...] = ()) -> Exchange:
    return Exchange(method, "/api/v1" + path, 200, {}, {}, query=query, request_body=body, agent="layerwise")


def test_a_good_use_passes(check: RequestCheck) -> None:
    assert check.check(sent("PUT", "/spool/3/use", {"use_length": 12.5})) == []
    assert check.check(sent("GET", "/spool", query=(("limit", "100"), ("offset", "0"),
                                                    ("allow_archived", "false"), ("filament.id", "3")))) == []


@pytest.mark.parametrize(("exchange", "says"), [
    (sent("PUT", "/spool/3/use", {"use_lenght": 12.5}), "'use_lenght' was unexpected"),  # misspelt
    (sent("PUT", "/spool/3/use", {"use_length": 12.5, "note": "x"}), "'note' was unexpected"),  # unknown
    (sent("POST", "/spool", {"filament_id": 1, "remaining_wieght": 5}), "'remaining_wieght' was unexpected"),
    (sent("PATCH", "/spool/3", {"extra": {"tag": '"a"'}, "colour": "red"}), "'colour' was unexpected"),
    (sent("PUT", "/spool/3/use", {"use_length": "12.5"}), "is not valid under any of the given schemas"),
    (sent("PUT", "/spool/3/use"), "needs a body"),
    (sent("PUT", "/spool/3/use", "<not JSON>"), "not JSON"),
    (sent("GET", "/spool", query=(("serch", "pla"),)), "unknown query parameter 'serch'"),
    (sent("GET", "/spool", query=(("limit", "ten"),)), "limit='ten' does not match"),
    (sent("GET", "/spool/abc"), "spool_id='abc' does not match"),
    (sent("POST", "/spool/3/use", {"use_length": 1.0}), "POST is not an operation"),
    (sent("GET", "/spools"), "no such path"),
    (sent("GET", "/spool/3", {"x": 1}), "a body where the operation takes none"),
])
def test_the_checker_catches(check: RequestCheck, exchange: Exchange, says: str) -> None:
    problems = check.check(exchange)
    assert any(says in problem for problem in problems), problems


def test_only_the_clients_requests_are_checked(check: RequestCheck) -> None:
    bad = sent("PUT", "/spool/3/use", {"use_lenght": 1.0})
    other = Exchange(bad.method, bad.path, 422, {}, {}, request_body=bad.request_body, agent="python-httpx/0.28")
    on_purpose = Exchange(bad.method, bad.path, 422, {}, {}, request_body=bad.request_body, agent="layerwise",
                          deliberate=True)
    assert check.problems([other, on_purpose]) == [] and len(check.problems([bad])) == 1


async def test_the_standin_refuses_an_unknown_key_as_spoolman_shapes_a_422(standin: SpoolmanStandin) -> None:
    async with httpx.AsyncClient(base_url=standin.url + "/api/v1") as api:
        answer = await api.put("/spool/1/use", json={"use_lenght": 10.0})
        assert answer.status_code == 422
        assert answer.json()["detail"] == [{"loc": ["body", "use_lenght"], "msg": "Extra inputs are not permitted",
                                            "type": "extra_forbidden"}]
        before = (await api.get("/spool/1")).json()["used_weight"]
        assert (await api.patch("/spool/1", json={"locaton": "Shelf"})).status_code == 422
        assert (await api.get("/spool/1")).json()["used_weight"] == before


async def test_every_client_call_sends_what_spoolman_documents(spoolman: SpoolmanClient, check: RequestCheck) -> None:
    before = len(RECORDER.exchanges())
    await spoolman.info()
    await spoolman.health()
    vendor = await spoolman.create_vendor(name="Contract Co")
    await spoolman.get_vendor(vendor.id)
    await spoolman.list_vendors()
    filament = await spoolman.create_filament(name="PETG Contract", vendor_id=vendor.id, material="PETG",
                                              density=1.27, diameter=1.75, weight=1000.0)
    await spoolman.get_filament(filament.id)
    await spoolman.list_filaments(material="PETG")
    spool = await spoolman.create_spool(filament_id=filament.id, location="Shelf")
    await spoolman.get_spool(spool.id)
    await spoolman.list_spools()
    await spoolman.list_spools(search="petg", filament_id=filament.id)
    await spoolman.use_spool(spool.id, length_mm=100.0)
    await spoolman.use_spool(spool.id, weight_g=2.0)
    await spoolman.ensure_spool_field("contract_tag", "Contract tag")
    await spoolman.list_spool_fields()
    await spoolman.patch_spool_extra(spool.id, {"contract_tag": "abc"})
    await spoolman.find_spools_by_extra("contract_tag", "abc")
    await spoolman.use_spool(spool.id, weight_g=-1.0)  # a refund (corrections)
    mine = [e for e in RECORDER.exchanges()[before:] if RequestCheck.from_client(e)]
    assert {(e.method, e.path.split("/")[3]) for e in mine} >= {("PUT", "spool"), ("POST", "filament"),
                                                              ("POST", "vendor"), ("POST", "field")}
    assert check.problems(mine) == []
