"""Repository functions over a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from server.db import Database, PrinterRow, open_database, repo


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = open_database(tmp_path / "data", database_url)
    yield database
    database.close()


def test_printer_state_round_trip(db: Database) -> None:
    assert repo.load_printer_state(db, "X1C") == ({}, False, None)
    repo.upsert_printer(db, "X1C", "00M09A350100001", "X1C")
    seen = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)
    state = {"print": {"gcode_state": "RUNNING", "layer_num": 12, "ams": {"tray_now": "1"}}}
    repo.save_printer_state(db, "X1C", state, True, seen)
    assert repo.load_printer_state(db, "X1C") == (state, True, seen)
    # A time in another zone comes back as the same instant in UTC.
    repo.save_printer_state(db, "X1C", {}, False, seen.astimezone(timezone(timedelta(hours=2))))
    assert repo.load_printer_state(db, "X1C") == ({}, False, seen)


def test_upsert_printer_keeps_the_state(db: Database) -> None:
    repo.save_printer_state(db, "A1", {"print": {}}, True, None)  # state may come before the row
    repo.upsert_printer(db, "A1", "03919A3B0100002", None)
    repo.upsert_printer(db, "A1", "03919A3B0100002", "A1")
    assert repo.load_printer_state(db, "A1") == ({"print": {}}, True, None)
    with db.session() as session:
        row = session.get(PrinterRow, "A1")
    assert row is not None and (row.serial, row.model) == ("03919A3B0100002", "A1")


def test_assign_replace_list_find_unassign(db: Database) -> None:
    first = repo.assign_spool(db, "X1C", 0, 12, "manual")
    assert first.assigned_at.tzinfo is UTC
    repo.assign_spool(db, "X1C", 1, 13, "rfid")
    repo.assign_spool(db, "A1", 254, 12, "manual")
    replaced = repo.assign_spool(db, "X1C", 0, 14, "rfid")
    assert repo.get_assignment(db, "X1C", 0) == replaced
    assert [(a.printer, a.tray, a.spool_id, a.source) for a in repo.list_assignments(db)] == [
        ("A1", 254, 12, "manual"),
        ("X1C", 0, 14, "rfid"),
        ("X1C", 1, 13, "rfid"),
    ]
    assert [a.tray for a in repo.list_assignments(db, "X1C")] == [0, 1]
    # Many printers in one read; one with nothing assigned is there, empty; others are left out.
    assert repo.trays_of(db, ["X1C", "P1S"]) == {"X1C": {0: 14, 1: 13}, "P1S": {}}
    assert repo.trays_of(db, []) == {}
    # The same for the farm page's rows: whole assignments, only the asked printers', each one's in its list.
    farm = repo.assignments_of(db, ["X1C", "P1S"])
    assert farm == {"X1C": repo.list_assignments(db, "X1C"), "P1S": []}
    assert farm["X1C"][0].assigned_at.tzinfo is UTC
    assert repo.assignments_of(db, []) == {}
    assert repo.find_trays_with_spool(db, 12) == [("A1", 254)]
    assert repo.unassign(db, "X1C", 0) is True
    assert repo.unassign(db, "X1C", 0) is False
    assert repo.get_assignment(db, "X1C", 0) is None
    assert repo.find_trays_with_spool(db, 14) == []


@pytest.mark.parametrize(
    ("tray", "spool", "source", "message"),
    [(256, 1, "manual", "tray 256"), (-1, 1, "manual", "tray -1"), (0, 0, "manual", "spool id 0"),
     (0, 1, "guess", "source 'guess'")],
)  # fmt: skip
def test_assign_rejects_bad_values(db: Database, tray: int, spool: int, source: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        repo.assign_spool(db, "X1C", tray, spool, source)


def test_env_mappings_seed_once_and_never_over_the_app(db: Database, tmp_path: Path, database_url: str | None) -> None:
    repo.assign_spool(db, "P1S", 1, 50, "manual")  # made in the app before the variable was set
    assert repo.seed_env_mappings(db, "P1S", {0: 123, 1: 456, 254: 7}) is True
    assert [(a.tray, a.spool_id, a.source) for a in repo.list_assignments(db, "P1S")] == [
        (0, 123, "env"),
        (1, 50, "manual"),
        (254, 7, "env"),
    ]
    repo.unassign(db, "P1S", 0)  # the user empties a tray in the app...
    db.close()
    with open_database(tmp_path / "data", database_url) as again:  # ...and the service restarts
        assert repo.seed_env_mappings(again, "P1S", {0: 123, 1: 456, 254: 7}) is False
        assert repo.get_assignment(again, "P1S", 0) is None
        assert repo.get_meta(again, repo.env_seed_key("P1S")) is not None


def test_empty_mapping_seeds_nothing_and_leaves_seeding_for_later(db: Database) -> None:
    assert repo.seed_env_mappings(db, "P1S", {}) is False
    assert repo.get_meta(db, repo.env_seed_key("P1S")) is None
    assert repo.seed_env_mappings(db, "P1S", {2: 9}) is True


def test_meta(db: Database) -> None:
    assert repo.get_meta(db, "k") is None
    repo.set_meta(db, "k", "1")
    repo.set_meta(db, "k", "2")
    assert repo.get_meta(db, "k") == "2"


async def test_concurrent_writers_from_threads_and_a_second_engine(db: Database) -> None:
    other = Database(db.path) if db.url is None else Database(url=db.url)  # as a second process would
    try:
        await asyncio.gather(
            *(asyncio.to_thread(repo.assign_spool, db, "X1C", tray, 100 + tray, "manual") for tray in range(16)),
            *(asyncio.to_thread(repo.assign_spool, other, "A1", tray, 200 + tray, "rfid") for tray in range(16)),
        )
    finally:
        other.close()
    assert len(repo.list_assignments(db)) == 32
