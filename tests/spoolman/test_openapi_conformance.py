"""The stand-in's answers, success and error alike, against Spoolman's OpenAPI schemas.

`conftest.py` also checks every response recorded during the whole session at its end; this file
drives each endpoint (and its error paths) directly so the check never depends on what other
tests happened to call.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.sim.spoolman import RECORDER, Exchange, SpoolmanStandin, SpoolmanStore
from server.sim.spoolman.conformance import OpenApiCheck
from server.spoolman import SpoolmanClient, SpoolmanRejected


async def _drive_every_endpoint(api: httpx.AsyncClient) -> None:
    calls: list[tuple[str, str, dict[str, object]]] = [
        ("GET", "/info", {}),
        ("GET", "/health", {}),
        ("GET", "/vendor", {"params": {"name": "bambu", "limit": 1}}),
        ("POST", "/vendor", {"json": {"name": "Prusament", "empty_spool_weight": 201}}),
        ("POST", "/vendor", {"json": {"comment": "no name"}}),
        ("GET", "/vendor/1", {}),
        ("GET", "/vendor/999", {}),
        ("GET", "/filament", {"params": {"material": "pla", "sort": "name:desc"}}),
        ("GET", "/filament", {"params": {"vendor.id": "-1"}}),
        ("POST", "/filament", {"json": {"name": "Galaxy Black", "vendor_id": 1, "density": 1.24, "diameter": 1.75}}),
        ("POST", "/filament", {"json": {"density": 0, "diameter": 1.75}}),
        ("POST", "/filament", {"json": {"density": 1.2, "diameter": 1.75, "vendor_id": 999}}),
        ("GET", "/filament/2", {}),
        ("GET", "/filament/abc", {}),
        ("GET", "/spool", {}),
        ("GET", "/spool", {"params": {"allow_archived": "true", "limit": 2, "offset": 3}}),
        ("GET", "/spool", {"params": {"filament.id": "1,2", "location": '"AMS A"'}}),
        ("GET", "/spool", {"params": {"filament.id": "x"}}),
        ("POST", "/spool", {"json": {"filament_id": 1, "remaining_weight": 500, "extra": {}}}),
        ("POST", "/spool", {"json": {"filament_id": 1, "extra": {"unknown_key": '"x"'}}}),
        ("POST", "/spool", {"json": {"filament_id": 999}}),
        ("POST", "/spool", {"content": b"{not json"}),
        ("GET", "/spool/1", {}),
        ("GET", "/spool/999", {}),
        ("PATCH", "/spool/1", {"json": {"location": "AMS B", "extra": {"bambu_tray_uuid": '"0011"'}}}),
        ("PATCH", "/spool/1", {"json": {"extra": {"not_registered": '"x"'}}}),
        ("PATCH", "/spool/1", {"json": {"used_weight": -3}}),
        ("PUT", "/spool/1/use", {"json": {"use_length": 250.0}}),
        ("PUT", "/spool/1/use", {"json": {"use_weight": -5000}}),
        ("PUT", "/spool/1/use", {"json": {}}),
        ("PUT", "/spool/1/use", {"json": {"use_weight": 1, "use_length": 1}}),
        ("PUT", "/spool/999/use", {"json": {"use_weight": 1}}),
        ("GET", "/field/spool", {}),
        ("GET", "/field/kettle", {}),
        ("POST", "/field/spool/nfc_tag", {"json": {"name": "NFC tag", "field_type": "text"}}),
        ("POST", "/field/spool/nfc_tag", {"json": {"name": "NFC tag", "field_type": "integer"}}),
        ("POST", "/field/spool/Bad-Key", {"json": {"name": "x", "field_type": "text"}}),
        ("POST", "/field/spool/colour", {"json": {"name": "Colour", "field_type": "choice", "choices": ["a", "b"]}}),
        ("DELETE", "/field/spool/nfc_tag", {}),
        ("DELETE", "/field/spool/nfc_tag", {}),
        ("DELETE", "/spool/6", {}),
        ("DELETE", "/spool/6", {}),
        ("GET", "/no-such-endpoint", {}),
    ]
    for method, path, options in calls:
        await api.request(method, path, **options)  # type: ignore[arg-type]


async def test_every_endpoint_answers_in_spoolman_shapes(standin: SpoolmanStandin, openapi_check: OpenApiCheck) -> None:
    before = len(RECORDER.exchanges())
    async with httpx.AsyncClient(base_url=standin.url + "/api/v1") as api:
        await _drive_every_endpoint(api)
    exchanges = RECORDER.exchanges()[before:]
    statuses = {exchange.status for exchange in exchanges}
    assert len(exchanges) == 43 and statuses == {200, 400, 404, 422}
    assert openapi_check.problems(exchanges) == []


async def test_error_bodies(standin: SpoolmanStandin) -> None:
    async with httpx.AsyncClient(base_url=standin.url + "/api/v1") as api:
        not_found = await api.get("/spool/999")
        rejected = await api.patch("/spool/1", json={"extra": {"nope": '"x"'}})
        invalid = await api.put("/spool/1/use", json={"use_weight": "lots"})
        listing = await api.get("/spool", params={"limit": 2})
    assert not_found.json() == {"message": "No spool with ID 999 found."}
    assert rejected.status_code == 400 and rejected.json() == {"message": "Unknown extra field nope."}
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "use_weight"]
    assert listing.headers["x-total-count"] == "7" and len(listing.json()) == 2


async def test_a_scripted_refusal_answers_in_spoolmans_shape_and_applies_nothing(
    standin: SpoolmanStandin, openapi_check: OpenApiCheck
) -> None:
    """``SpoolmanStandin.refuse``: the next matching request gets the 4xx (400 as ``{"message"}``, 422 as
    FastAPI's ``{"detail"}``), nothing is applied, and the one after it is served as usual."""
    before_used = standin.store.get_spool(1)["used_weight"]
    standin.refuse("PUT", "/spool/1/use", 422, "Input should be a valid number", times=2)
    standin.refuse("GET", "/spool/1", 400, "Bad request")
    start = len(RECORDER.exchanges())
    async with SpoolmanClient(standin.url, timeout=5.0, retries=0) as client:
        with pytest.raises(SpoolmanRejected, match="Bad request") as read:
            await client.get_spool(1)
        assert (await client.get_spool(2)).id == 2  # another path: served
        for _ in range(2):
            with pytest.raises(SpoolmanRejected, match="valid number") as use:
                await client.use_spool(1, length_mm=10.0)
        assert standin.store.get_spool(1)["used_weight"] == before_used  # applied nothing
        await client.use_spool(1, length_mm=10.0)  # used up: served as usual
    assert (read.value.status_code, use.value.status_code) == (400, 422)
    assert standin.store.get_spool(1)["used_weight"] > before_used
    assert standin.refusals.pending() == []
    exchanges = RECORDER.exchanges()[start:]
    assert [e.status for e in exchanges] == [400, 200, 422, 422, 200]
    assert openapi_check.problems(exchanges) == []
    with pytest.raises(ValueError, match="not 500"):
        standin.refuse("GET", "/spool/1", 500, "a 5xx is an outage, not a refusal")


def test_the_check_catches_what_spoolman_would_never_send(openapi_check: OpenApiCheck) -> None:
    spool_without_filament = {"id": 1, "registered": "x", "used_weight": 1, "used_length": 1, "archived": False}
    bad = [
        Exchange("GET", "/api/v1/spool/1", 200, {**spool_without_filament, "extra": {}}, {}),
        Exchange("GET", "/api/v1/spool/1", 404, {"detail": "gone"}, {}),
        Exchange("GET", "/api/v1/spool", 200, [], {}),  # no x-total-count
        Exchange("PUT", "/api/v1/spool/1/use", 201, {}, {}),
        Exchange("GET", "/api/v1/health", 200, {"state": "ok"}, {}),
        Exchange("POST", "/api/v1/info", 200, {}, {}),
    ]
    problems = [openapi_check.check(exchange) for exchange in bad]
    assert all(problems), problems


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    initial=st.one_of(st.none(), st.floats(min_value=0, max_value=5000)),
    used=st.floats(min_value=0, max_value=5000),
    uses=st.lists(st.floats(min_value=-3000, max_value=3000), max_size=8),
)
def test_spools_conform_whatever_is_billed(
    openapi_check: OpenApiCheck, initial: float | None, used: float, uses: list[float]
) -> None:
    store = SpoolmanStore()
    filament = store.create_filament({"density": 1.27, "diameter": 1.75})["id"]
    spool = store.create_spool({"filament_id": filament, "initial_weight": initial, "used_weight": used})["id"]
    for use in uses:
        store.use_spool(spool, use_weight=use)
    item = store.get_spool(spool)
    assert openapi_check.check(Exchange("GET", f"/api/v1/spool/{spool}", 200, item, {})) == []


async def test_a_use_whose_body_never_arrives_applies_and_records_nothing(standin: SpoolmanStandin) -> None:
    """A client that goes away while sending (a timeout, a lossy link) leaves no request behind: Spoolman
    would not have seen one, so the stand-in neither applies it nor records an answer to check."""
    import asyncio
    from urllib.parse import urlsplit

    before_used = standin.store.get_spool(1)["used_weight"]
    start = len(RECORDER.exchanges())
    url = urlsplit(standin.url)
    _reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(b"PUT /api/v1/spool/1/use HTTP/1.1\r\nhost: spoolman\r\ncontent-type: application/json\r\n"
                 b"content-length: 100\r\n\r\n{\"use_len")
    await writer.drain()
    writer.close()  # the rest of the body never comes
    await writer.wait_closed()
    async with SpoolmanClient(standin.url, timeout=5.0, retries=0) as client:
        await client.get_spool(1)  # served after it: the stand-in carried on
    assert standin.store.get_spool(1)["used_weight"] == before_used
    assert [(e.method, e.status) for e in RECORDER.exchanges()[start:]] == [("GET", 200)]
