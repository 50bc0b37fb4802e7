"""The Spoolman client against the stand-in over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.sim.spoolman import (
    DEMO_TRAY_UUIDS,
    RECORDER,
    TRAY_UUID_FIELD,
    SpoolmanStandin,
    SpoolmanStore,
    weight_from_length,
)
from server.spoolman import SpoolmanClient, SpoolmanNotFound, SpoolmanRejected, SpoolmanUnreachable
from server.spoolman.client import MAX_CONNECTIONS


async def test_info_and_health(spoolman: SpoolmanClient) -> None:
    assert (await spoolman.info())["version"] == "0.26.1"
    assert await spoolman.health() is True


async def test_base_url_with_or_without_api_prefix(standin: SpoolmanStandin) -> None:
    async with SpoolmanClient(standin.url + "/api/v1/") as client:
        assert (await client.get_spool(1)).id == 1


async def test_list_spools_pages_with_total(spoolman: SpoolmanClient) -> None:
    first = await spoolman.list_spools(limit=3)
    second = await spoolman.list_spools(limit=3, offset=3)
    rest = await spoolman.list_spools(limit=3, offset=6)
    assert first.total == second.total == rest.total == 7
    ids = [s.id for s in first.items + second.items + rest.items]
    assert ids == sorted(set(ids)) and len(ids) == 7
    everything = await spoolman.list_spools(allow_archived=True, limit=100)
    assert everything.total == 8 and any(s.archived for s in everything.items)


async def test_list_spools_by_filament_and_sorted(spoolman: SpoolmanClient) -> None:
    black = await spoolman.list_spools(filament_id=1)
    assert {s.filament.id for s in black.items} == {1} and black.total == 2
    by_use = await spoolman.list_spools(sort="used_weight:desc")
    weights = [s.used_weight for s in by_use.items]
    assert weights == sorted(weights, reverse=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", {3}),  # a number finds the spool by id (and any field containing it)
        ("petg", {2, 6}),  # material
        ("polymaker", {5}),  # vendor
        ("bambu black", {1, 7}),  # every term must match some field
        ("#00AE42", {2}),  # colour
        ("jade", {3}),  # the archived Jade White spool stays hidden
        ("nothing-like-this", set()),
    ],
)
async def test_free_text_search(spoolman: SpoolmanClient, text: str, expected: set[int]) -> None:
    page = await spoolman.list_spools(search=text)
    assert {s.id for s in page.items} == expected and page.total == len(expected)


async def test_search_pages_over_matches(spoolman: SpoolmanClient) -> None:
    page = await spoolman.list_spools(search="bambu", limit=2, offset=1)
    assert page.total == 5 and [s.id for s in page.items] == [2, 3]
    archived_too = await spoolman.list_spools(search="jade", allow_archived=True)
    assert {s.id for s in archived_too.items} == {3, 8}


async def test_get_spool_and_not_found(spoolman: SpoolmanClient) -> None:
    spool = await spoolman.get_spool(1)
    assert spool.filament.vendor is not None and spool.filament.vendor.name == "Bambu Lab"
    assert spool.extra_value(TRAY_UUID_FIELD) == DEMO_TRAY_UUIDS["pla_black"]
    with pytest.raises(SpoolmanNotFound) as caught:
        await spoolman.get_spool(404)
    assert (caught.value.resource, caught.value.id) == ("spool", 404)
    assert "No spool with ID 404" in str(caught.value)


async def test_use_by_length_and_by_weight(spoolman: SpoolmanClient) -> None:
    before = await spoolman.get_spool(3)
    after_length = await spoolman.use_spool(3, length_mm=1000.0)
    grams = weight_from_length(1000.0, diameter_mm=1.75, density=before.filament.density)
    assert after_length.used_weight == pytest.approx(before.used_weight + grams)
    assert after_length.used_length == pytest.approx(before.used_length + 1000.0)
    after_weight = await spoolman.use_spool(3, weight_g=12.5)
    assert after_weight.used_weight == pytest.approx(after_length.used_weight + 12.5)
    assert after_weight.remaining_weight == pytest.approx(after_weight.initial_weight - after_weight.used_weight)
    assert after_weight.first_used is not None


async def test_use_rejections(spoolman: SpoolmanClient) -> None:
    with pytest.raises(ValueError):
        await spoolman.use_spool(1)
    with pytest.raises(ValueError):
        await spoolman.use_spool(1, length_mm=1.0, weight_g=1.0)
    with pytest.raises(SpoolmanNotFound):
        await spoolman.use_spool(999, weight_g=1.0)


async def test_extra_fields_are_registered_patched_and_found(spoolman: SpoolmanClient) -> None:
    with pytest.raises(SpoolmanRejected, match="Unknown extra field nfc_tag") as caught:
        await spoolman.patch_spool_extra(4, {"nfc_tag": "04A2"})
    assert caught.value.status_code == 400
    await spoolman.ensure_spool_field("nfc_tag", "NFC tag")
    await spoolman.ensure_spool_field("nfc_tag", "NFC tag")  # already there: nothing to do
    assert [f.key for f in await spoolman.list_spool_fields()].count("nfc_tag") == 1
    spool = await spoolman.patch_spool_extra(4, {"nfc_tag": "04A2"})
    assert spool.extra["nfc_tag"] == '"04A2"' and spool.extra_value("nfc_tag") == "04A2"
    assert TRAY_UUID_FIELD not in spool.extra
    tagged = await spoolman.patch_spool_extra(1, {"nfc_tag": "FFEE"})
    assert tagged.extra_value(TRAY_UUID_FIELD) == DEMO_TRAY_UUIDS["pla_black"]  # merged, not replaced
    assert [s.id for s in await spoolman.find_spools_by_extra("nfc_tag", "04a2")] == [4]
    cleared = await spoolman.patch_spool_extra(4, {"nfc_tag": None})
    assert "nfc_tag" not in cleared.extra


async def test_find_spools_by_tray_uuid(spoolman: SpoolmanClient) -> None:
    for name, uuid in DEMO_TRAY_UUIDS.items():
        found = await spoolman.find_spools_by_extra(TRAY_UUID_FIELD, uuid)
        assert len(found) == 1, name
    assert await spoolman.find_spools_by_extra(TRAY_UUID_FIELD, "00000000000000000000000000000000") == []


async def test_find_by_extra_reads_every_page(spoolman: SpoolmanClient, standin: SpoolmanStandin) -> None:
    # More spools than one scan page (100) so the lookup has to follow x-total-count.
    for _ in range(120):
        standin.store.create_spool({"filament_id": 2})
    last = standin.store.create_spool({"filament_id": 2, "extra": {TRAY_UUID_FIELD: '"LATE"'}})
    assert [s.id for s in await spoolman.find_spools_by_extra(TRAY_UUID_FIELD, "late")] == [last["id"]]


async def test_creates(spoolman: SpoolmanClient) -> None:
    vendor = await spoolman.create_vendor("Sunlu", empty_spool_weight=130.0)
    filament = await spoolman.create_filament(
        density=1.24, diameter=1.75, name="PLA+ Grey", vendor_id=vendor.id, material="PLA", weight=1000.0
    )
    assert filament.vendor is not None and filament.vendor.id == vendor.id
    spool = await spoolman.create_spool(filament.id, location="Shelf 3", extra={TRAY_UUID_FIELD: "ABCD"})
    assert spool.filament.id == filament.id and spool.remaining_weight == 1000.0 and spool.spool_weight == 130.0
    assert spool.extra_value(TRAY_UUID_FIELD) == "ABCD"
    assert (await spoolman.get_filament(filament.id)).name == "PLA+ Grey"
    assert (await spoolman.get_vendor(vendor.id)).name == "Sunlu"
    vendors = await spoolman.list_vendors(name="sunlu")
    assert [v.id for v in vendors.items] == [vendor.id] and vendors.total == 1
    filaments = await spoolman.list_filaments(vendor_id=vendor.id)
    assert [f.id for f in filaments.items] == [filament.id]
    with pytest.raises(SpoolmanNotFound):
        await spoolman.create_spool(9999)
    with RECORDER.deliberately_invalid(), pytest.raises(SpoolmanRejected) as caught:
        await spoolman.create_filament(density=-1.0, diameter=1.75)
    assert caught.value.status_code == 422 and "density" in str(caught.value)


async def test_models_tolerate_unknown_fields(spoolman: SpoolmanClient) -> None:
    from server.spoolman import Spool

    raw = (await spoolman.get_spool(2)).model_dump()
    raw["brand_new_field"] = {"x": 1}
    raw["filament"]["another"] = 5
    spool = Spool.model_validate(raw)
    assert spool.model_extra == {"brand_new_field": {"x": 1}}


async def test_concurrent_uses_over_http_all_count(spoolman: SpoolmanClient) -> None:
    before = (await spoolman.get_spool(6)).used_weight
    await asyncio.gather(*(spoolman.use_spool(6, weight_g=1.5) for _ in range(20)))
    assert (await spoolman.get_spool(6)).used_weight == pytest.approx(before + 30.0)


async def test_credentials_in_the_url_stay_out_of_messages(standin: SpoolmanStandin) -> None:
    url = standin.url.replace("http://", "http://layerwise:hunter2@")
    async with SpoolmanClient(url) as client:
        assert "hunter2" not in repr(client) and "hunter2" not in client.base_url
        with pytest.raises(SpoolmanNotFound) as caught:
            await client.get_spool(1234)
        assert "hunter2" not in str(caught.value)
    await standin.stop()
    async with SpoolmanClient(url, retries=0) as client:
        with pytest.raises(SpoolmanUnreachable) as unreachable:
            await client.get_spool(1)
    assert "hunter2" not in str(unreachable.value) and "layerwise@" not in str(unreachable.value)


async def test_many_requests_at_once_share_a_few_connections(demo_store: SpoolmanStore) -> None:
    """A farm's outbox and pages ask side by side: they queue for MAX_CONNECTIONS connections, kept open."""
    peers: set[tuple[str, int]] = set()
    standin = SpoolmanStandin(demo_store)
    serve = standin.app

    async def counting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            peers.add(tuple(scope["client"]))
        await serve(scope, receive, send)

    standin.app = counting
    async with standin, SpoolmanClient(standin.url) as client:
        spools = await asyncio.gather(*(client.get_spool(1 + i % 7) for i in range(40)))
        assert [s.id for s in spools] == [1 + i % 7 for i in range(40)]
        await asyncio.gather(*(client.get_spool(1) for _ in range(20)))
    assert 1 <= len(peers) <= MAX_CONNECTIONS
