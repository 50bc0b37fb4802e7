"""Leases for several instances on PostgreSQL: the split rule (pure), and the advisory locks with their
fence on a real server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from server.billing.ledger import write_session
from server.db import Database, open_database
from server.db.leases import LeaseLost, LeaseStore, check_held, fair_share, lock_key, printer_resource, wanted
from tests.pgcluster import new_schema_url

GUARD = 30.0  # only against a hang


@pytest.mark.parametrize(("total", "alive", "share"), [(10, 1, 10), (10, 2, 5), (10, 3, 4), (1, 2, 1), (0, 2, 0),
                                                       (10, 0, 10)])
def test_fair_share_covers_every_printer(total: int, alive: int, share: int) -> None:
    assert fair_share(total, alive) == share
    assert share * max(alive, 1) >= total


def test_wanted_takes_up_to_the_share_and_never_more_than_is_free() -> None:
    assert wanted(["p1", "p2", "p3"], owned=0, total=10, alive=2) == 3
    assert wanted(["p1", "p2", "p3"], owned=4, total=10, alive=2) == 1
    assert wanted(["p1"], owned=7, total=10, alive=2) == 0


def test_lock_keys_are_stable_signed_64_bit_and_distinct() -> None:
    keys = {lock_key(printer_resource(f"p{i}")) for i in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert lock_key("outbox") == lock_key("outbox")


@pytest.fixture
def db(postgres_server: str, tmp_path: Path) -> Database:
    return open_database(tmp_path, new_schema_url(postgres_server))


def test_one_holder_at_a_time_and_a_dead_holder_frees_at_once(db: Database) -> None:
    a, b = LeaseStore(db, "a:1"), LeaseStore(db, "b:1")
    try:
        assert a.try_take("printer:p1")
        assert not b.try_take("printer:p1")
        a.heartbeat(["printer:p1"])
        b.heartbeat([])
        assert a.alive() == 2
        assert a.holders() == {"instance:a:1": "a:1", "instance:b:1": "b:1", "printer:p1": "a:1"}
        a.drop()  # the connection ends, as when the process is killed
        # The server frees the lock as soon as its backend notices the closed socket (not synchronously).
        deadline = time.monotonic() + GUARD
        while not b.try_take("printer:p1"):
            assert time.monotonic() < deadline, "the lock outlived its connection"
            time.sleep(0.01)
    finally:
        a.drop()
        b.drop()


def test_the_fence_refuses_writes_once_the_lease_is_gone(db: Database) -> None:
    store = LeaseStore(db, "a:1")
    try:
        assert store.try_take("printer:p1")
        with write_session(db) as session:
            check_held(session, store.pid, "printer:p1")
            with pytest.raises(LeaseLost, match="printer:p2"):
                check_held(session, store.pid, "printer:p2")
        store.release("printer:p1")
        with write_session(db) as session, pytest.raises(LeaseLost):
            check_held(session, store.pid, "printer:p1")
    finally:
        store.drop()
        db.close()
