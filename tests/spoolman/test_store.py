"""The stand-in's data rules, without HTTP: Spoolman 0.26's use, derived weights/lengths, extra fields, lists."""

from __future__ import annotations

import json
import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.sim.spoolman import (
    DEMO_TRAY_UUIDS,
    SpoolmanStore,
    StoreNotFound,
    StoreRejected,
    length_from_weight,
    seed_demo,
    weight_from_length,
)
from server.sim.spoolman.query import QueryError, text_matches


def _store_with_spool(used: float = 0.0, *, weight: float | None = 1000.0) -> tuple[SpoolmanStore, int]:
    store = SpoolmanStore()
    vendor = store.create_vendor({"name": "Bambu Lab"})["id"]
    filament = store.create_filament(
        {"vendor_id": vendor, "name": "PLA Basic Black", "material": "PLA", "density": 1.24, "diameter": 1.75}
        | ({"weight": weight} if weight is not None else {})
    )["id"]
    return store, store.create_spool({"filament_id": filament, "used_weight": used})["id"]


def test_length_and_weight_conversions_follow_density_and_diameter() -> None:
    # 1 m of 1.75 mm filament is pi * 0.875^2 * 1000 mm³ = 2.405 cm³; at 1.24 g/cm³ that is 2.98 g.
    grams = weight_from_length(1000.0, diameter_mm=1.75, density=1.24)
    assert grams == pytest.approx(1.24 * math.pi * 0.875**2, rel=1e-12)
    assert length_from_weight(grams, diameter_mm=1.75, density=1.24) == pytest.approx(1000.0)


def test_use_by_weight_adds_to_used_weight_and_derives_the_rest() -> None:
    store, spool = _store_with_spool(100.0)
    item = store.use_spool(spool, use_weight=25.5)
    assert item["used_weight"] == pytest.approx(125.5)
    assert item["initial_weight"] == 1000.0  # defaulted from the filament's weight
    assert item["remaining_weight"] == pytest.approx(874.5)
    assert item["used_length"] == pytest.approx(length_from_weight(125.5, diameter_mm=1.75, density=1.24))
    assert item["remaining_length"] == pytest.approx(length_from_weight(874.5, diameter_mm=1.75, density=1.24))


def test_use_by_length_converts_through_the_filament() -> None:
    store, spool = _store_with_spool()
    item = store.use_spool(spool, use_length=2500.0)
    assert item["used_weight"] == pytest.approx(weight_from_length(2500.0, diameter_mm=1.75, density=1.24))
    assert item["used_length"] == pytest.approx(2500.0)


def test_negative_use_gives_back_but_never_below_zero() -> None:
    store, spool = _store_with_spool(10.0)
    assert store.use_spool(spool, use_weight=-4.0)["used_weight"] == pytest.approx(6.0)
    assert store.use_spool(spool, use_weight=-50.0)["used_weight"] == 0.0


def test_remaining_weight_is_floored_at_zero_and_unknown_without_a_weight() -> None:
    store, spool = _store_with_spool(990.0)
    assert store.use_spool(spool, use_weight=50.0)["remaining_weight"] == 0.0
    store, spool = _store_with_spool(weight=None)
    item = store.get_spool(spool)
    assert item["remaining_weight"] is None and item["remaining_length"] is None


def test_use_sets_first_used_once_and_last_used_each_time() -> None:
    store, spool = _store_with_spool()
    assert store.get_spool(spool)["first_used"] is None
    first = store.use_spool(spool, use_weight=1.0)
    assert first["first_used"] is not None and first["last_used"] is not None
    assert store.use_spool(spool, use_weight=1.0)["first_used"] == first["first_used"]


def test_use_needs_exactly_one_of_length_and_weight() -> None:
    store, spool = _store_with_spool()
    with pytest.raises(StoreRejected):
        store.use_spool(spool)
    with pytest.raises(StoreRejected):
        store.use_spool(spool, use_weight=1.0, use_length=1.0)
    with pytest.raises(StoreNotFound, match="No spool with ID 99 found"):
        store.use_spool(99, use_weight=1.0)


@given(st.lists(st.floats(min_value=-50, max_value=50, allow_nan=False), max_size=30))
def test_used_weight_is_the_floored_running_sum(uses: list[float]) -> None:
    store, spool = _store_with_spool()
    expected = 0.0
    for use in uses:
        expected = max(expected + use, 0.0)
        item = store.use_spool(spool, use_weight=use)
        assert item["used_weight"] >= 0 and item["used_length"] >= 0
    assert store.get_spool(spool)["used_weight"] == pytest.approx(expected, abs=1e-9)


def test_concurrent_uses_are_atomic() -> None:
    store, spool = _store_with_spool()

    def bill() -> None:
        for _ in range(200):
            store.use_spool(spool, use_weight=0.5)

    threads = [threading.Thread(target=bill) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get_spool(spool)["used_weight"] == pytest.approx(400.0)


def test_extra_fields_must_be_registered_and_hold_json_of_their_type() -> None:
    store, spool = _store_with_spool()
    with pytest.raises(StoreRejected, match="Unknown extra field tag"):
        store.update_spool(spool, {"extra": {"tag": json.dumps("x")}})
    store.add_or_update_field("spool", "tag", {"name": "Tag", "field_type": "text"})
    store.add_or_update_field("spool", "grams", {"name": "Grams", "field_type": "integer"})
    with pytest.raises(StoreRejected):
        store.update_spool(spool, {"extra": {"tag": "not json"}})
    with pytest.raises(StoreRejected):
        store.update_spool(spool, {"extra": {"grams": json.dumps("12")}})
    assert store.update_spool(spool, {"extra": {"tag": '"abc"'}})["extra"] == {"tag": '"abc"'}


def test_patching_extra_merges_per_key_and_null_clears() -> None:
    store, spool = _store_with_spool()
    for key in ("tag", "note"):
        store.add_or_update_field("spool", key, {"name": key, "field_type": "text"})
    store.update_spool(spool, {"extra": {"tag": '"a"', "note": '"n"'}})
    assert store.update_spool(spool, {"extra": {"tag": '"b"'}})["extra"] == {"tag": '"b"', "note": '"n"'}
    assert store.update_spool(spool, {"extra": {"note": None}})["extra"] == {"tag": '"b"'}
    assert store.update_spool(spool, {"location": "AMS B"})["extra"] == {"tag": '"b"'}


def test_field_type_cannot_change_and_deleting_a_field_clears_it_everywhere() -> None:
    store, spool = _store_with_spool()
    store.add_or_update_field("spool", "tag", {"name": "Tag", "field_type": "text"})
    store.add_or_update_field("spool", "tag", {"name": "RFID tag", "field_type": "text"})
    assert [f["name"] for f in store.list_fields("spool")] == ["RFID tag"]
    with pytest.raises(StoreRejected):
        store.add_or_update_field("spool", "tag", {"name": "Tag", "field_type": "integer"})
    store.update_spool(spool, {"extra": {"tag": '"a"'}})
    assert store.delete_field("spool", "tag") == []
    assert store.get_spool(spool)["extra"] == {}


def test_spool_weights_at_creation() -> None:
    store, _ = _store_with_spool()
    filament = store.list_filaments({})[0][0]["id"]
    assert store.create_spool({"filament_id": filament, "remaining_weight": 300.0})["used_weight"] == 700.0
    with pytest.raises(StoreRejected):
        store.create_spool({"filament_id": filament, "remaining_weight": 1.0, "used_weight": 1.0})
    with pytest.raises(StoreNotFound):
        store.create_spool({"filament_id": 42})


def test_lists_hide_archived_filter_sort_and_count_before_paging() -> None:
    store = SpoolmanStore()
    seed_demo(store)
    visible, total = store.list_spools({})
    assert total == len(visible) == 7 and not any(s["archived"] for s in visible)
    assert store.list_spools({"allow_archived": "true"})[1] == 8
    page, total = store.list_spools({"limit": "3", "offset": "2"})
    assert total == 7 and [s["id"] for s in page] == [3, 4, 5]
    petg, _ = store.list_spools({"filament.material": "petg"})
    assert {s["filament"]["material"] for s in petg} == {"PETG"}
    bambu, _ = store.list_spools({"filament.vendor.name": '"Bambu Lab"', "location": "AMS"})
    assert [s["id"] for s in bambu] == [1, 2]
    by_weight, _ = store.list_spools({"sort": "used_weight:desc,id:asc"})
    assert [s["used_weight"] for s in by_weight] == sorted((s["used_weight"] for s in visible), reverse=True)
    with pytest.raises(QueryError):
        store.list_spools({"filament.id": "one"})


def test_text_filter_terms() -> None:
    assert text_matches("PLA Basic", "basic")
    assert text_matches("PLA Basic", "petg,basic")
    assert not text_matches("PLA Basic", '"PLA"')
    assert text_matches("PLA", '"PLA"')
    assert text_matches(None, "") and not text_matches("x", "")


def test_demo_seed_carries_the_virtual_printer_tray_uuids() -> None:
    store = SpoolmanStore()
    seed_demo(store)
    tagged = {
        json.loads(s["extra"]["bambu_tray_uuid"]): s["filament"]["name"]
        for s in store.list_spools({})[0]
        if "bambu_tray_uuid" in s["extra"]
    }
    assert set(tagged) == set(DEMO_TRAY_UUIDS.values())
    assert [f["key"] for f in store.list_fields("spool")] == ["bambu_tray_uuid"]
