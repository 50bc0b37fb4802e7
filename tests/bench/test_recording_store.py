"""The campaign's Spoolman store: Layerwise's uses apart from foreign ones, floors and deletions noted."""

from __future__ import annotations

import pytest

from bench.faults.harness import RecordingStore, new_spool, seed_spools


def test_foreign_uses_are_kept_apart_from_layerwise_uses() -> None:
    store = RecordingStore()
    trays = seed_spools(store)
    spool = trays[0]
    store.use_spool(spool, use_length=100.0)
    store.foreign_use(spool, 40.0)
    assert store.used_mm() == {spool: 100.0}
    assert store.foreign == {spool: 40.0}
    assert store.used_length()[spool] == pytest.approx(140.0)
    assert len(store.uses) == 1


def test_a_deleted_spool_keeps_its_last_used_length() -> None:
    store = RecordingStore()
    spool = seed_spools(store)[1]
    store.use_spool(spool, use_length=25.0)
    store.delete_spool(spool)
    successor = new_spool(store)
    assert store.used_length()[spool] == pytest.approx(25.0)
    assert store.used_length()[successor] == 0.0
    assert store.deleted == {spool: pytest.approx(25.0)}


def test_a_negative_use_spoolman_floors_is_noted() -> None:
    store = RecordingStore()
    spool = seed_spools(store)[2]
    store.use_spool(spool, use_length=-3.8)  # a retraction-heavy prelude on a fresh spool
    store.use_spool(spool, use_length=10.0)
    assert store.used_mm() == {spool: pytest.approx(6.2)}
    assert store.used_length()[spool] == pytest.approx(10.0)
    assert store.floored == {spool: pytest.approx(-3.8)}
