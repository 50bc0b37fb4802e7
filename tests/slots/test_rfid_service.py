"""The RFID service against the Spoolman stand-in over HTTP, a real SQLite file and the virtual printer's
tray reports (built from its state here; over MQTT in the end-to-end test)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from server.config import PrinterConfig, RfidConfig
from server.db import Database, open_database, repo
from server.events import Event, EventBus
from server.printer.link import PrinterLink
from server.printer.state import merge_report
from server.printer.tls import PinStore
from server.printer.trays import PrinterView, printer_view
from server.sim.printer import AmsUnit, Tray, VirtualPrinter
from server.sim.spoolman import DEMO_TRAY_UUIDS, TRAY_UUID_FIELD, SpoolmanStandin, SpoolmanStore, seed_demo
from server.slots.errors import RfidError
from server.slots.rfid_service import RfidConflict, RfidService, TagOffer
from server.slots.service import SlotService
from server.spoolman import Spool, SpoolmanClient
from server.spoolman.directory import SpoolDirectory

PRINTER = "X1C"
TAG_A = DEMO_TRAY_UUIDS["pla_black"]  # on spool 1 in the demo inventory
TAG_B = DEMO_TRAY_UUIDS["petg_green"]  # on spool 2
TAG_NEW = "C0FFEE00C0FFEE00C0FFEE00C0FFEE00"  # on no spool
CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mqtt-captures"
ZERO_UUID = "0" * 32


class CountingClient(SpoolmanClient):
    """Counts spool scans, to show that unchanged reports cost Spoolman nothing."""

    scans = 0

    async def list_spools(self, **kwargs: Any) -> Any:
        self.scans += 1
        return await super().list_spools(**kwargs)


@dataclass
class Rig:
    store: SpoolmanStore
    standin: SpoolmanStandin
    client: CountingClient
    db: Database
    bus: EventBus
    slots: SlotService
    service: RfidService
    vp: VirtualPrinter
    events: asyncio.Queue[Event]

    def view(self) -> PrinterView:
        return printer_view(self.vp.state["print"])

    async def feed(self, view: PrinterView | None = None) -> None:
        await self.service.on_view(PRINTER, view or self.view())
        await self.service.drain()

    async def held(self) -> dict[int, tuple[int, str]]:
        return {a.tray: (a.spool_id, a.source) for a in await self.slots.assignments(PRINTER)}

    def spools_with(self, tag: str) -> list[dict[str, Any]]:
        items, _ = self.store.list_spools({})
        return [s for s in items if s["extra"].get(TRAY_UUID_FIELD) == json.dumps(tag)]

    def slot_events(self) -> list[dict[str, Any]]:
        out = []
        while not self.events.empty():
            event = self.events.get_nowait()
            out.append({"kind": event.kind, **event.data})
        return out


def demo_printer() -> VirtualPrinter:
    trays = [Tray(0, type="PLA", color="000000FF"), Tray(1, type="PETG", color="00AE42FF"),
             Tray(2, type="PLA", color="FFFFFFFF"), Tray(3, empty=True)]
    return VirtualPrinter(serial="00M09A000000001", model="X1C", ams=[AmsUnit(0, trays=trays)])


@contextlib.asynccontextmanager
async def rig_for(tmp_path: Path, store: SpoolmanStore, grace: float = 0.0, database_url: str | None = None,
                  **rfid: Any) -> AsyncIterator[Rig]:
    db = open_database(tmp_path / "data", database_url)
    bus = EventBus()
    async with SpoolmanStandin(store) as standin, CountingClient(standin.url, retries=0, timeout=5) as client, \
            bus.subscribe() as events:
        slots = SlotService(db, SpoolDirectory(client, ttl=0), bus, [PRINTER])
        service = RfidService(RfidConfig(**rfid), client, slots, bus, db, retry_seconds=0, empty_grace=grace)
        try:
            yield Rig(store, standin, client, db, bus, slots, service, demo_printer(), events)
        finally:
            await service.aclose()
            db.close()


@pytest.fixture
async def rig(tmp_path: Path, database_url: str | None) -> AsyncIterator[Rig]:
    store = SpoolmanStore()
    seed_demo(store)
    async with rig_for(tmp_path, store, database_url=database_url) as rig:  # both backends
        yield rig


# ----- a tag appearing, changing and disappearing --------------------------------------------------

async def test_tag_appearing_changing_and_disappearing(rig: Rig) -> None:
    await rig.feed()
    assert await rig.held() == {}

    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    assert await rig.held() == {0: (1, "rfid")}
    assert {"kind": "slot", "tray": 0, "spool_id": 1, "source": "rfid"} in rig.slot_events()

    rig.vp.set_tray(0, 0, tray_uuid=TAG_B, type="PETG", color="00AE42FF")  # another spool loaded
    await rig.feed()
    assert await rig.held() == {0: (2, "rfid")}

    rig.vp.set_tray(0, 0, tray_uuid=ZERO_UUID)  # a spool without a tag
    await rig.feed()
    assert await rig.held() == {}

    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    rig.vp.set_tray(0, 0, empty=True)  # spool taken out
    await rig.feed()
    assert await rig.held() == {}
    assert rig.slot_events()[-1] == {"kind": "slot", "tray": 0, "spool_id": None, "source": None}


async def test_tag_uid_is_the_fallback_key(rig: Rig) -> None:
    spool = rig.store.create_spool({"filament_id": 1, "extra": {TRAY_UUID_FIELD: json.dumps("1C247B9600000100")}})
    rig.vp.set_tray(0, 0, tag_uid="1c247b9600000100")
    await rig.feed()
    assert await rig.held() == {0: (spool["id"], "rfid")}


async def test_unchanged_reports_cost_spoolman_nothing(rig: Rig) -> None:
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    scans = rig.client.scans
    for _ in range(20):
        await rig.feed()
    assert rig.client.scans == scans
    rig.service.reset(PRINTER)  # a reconnect looks again, from the cache
    await rig.feed()
    assert await rig.held() == {0: (1, "rfid")}


async def test_a_tag_moves_its_spool_from_another_tray(rig: Rig) -> None:
    await rig.slots.assign(PRINTER, 2, 1, source="rfid")
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    assert await rig.held() == {0: (1, "rfid")}


async def test_real_capture_assigns_every_tagged_spool(rig: Rig) -> None:
    payload = json.loads((CAPTURES / "push_status_full_X1C_3xAMS_1xAMSHT_rfid_FINISH.json").read_text("utf-8"))
    view = printer_view(payload["print"])
    tags = {t.global_index: t.tray_uuid for t in view.trays if t.tray_uuid}
    spool_by_tray = {tray: rig.store.create_spool(
        {"filament_id": 1, "extra": {TRAY_UUID_FIELD: json.dumps(tag)}})["id"] for tray, tag in tags.items()}
    await rig.feed(view)
    assert await rig.held() == {tray: (spool, "rfid") for tray, spool in spool_by_tray.items()}
    assert rig.client.scans == 1  # one scan for all twelve tags


async def test_a_tray_looking_empty_for_a_moment_keeps_its_assignment(tmp_path: Path) -> None:
    store = SpoolmanStore()
    seed_demo(store)
    async with rig_for(tmp_path, store, grace=60) as rig:
        await rig.feed()
        await rig.slots.assign(PRINTER, 0, 3)
        loaded = rig.view()
        rig.vp.set_tray(0, 0, empty=True)  # what a bare {"id": "0"} in a delta report reads as
        await rig.service.on_view(PRINTER, rig.view())
        async with asyncio.timeout(10):
            while 0 not in rig.service._printers[PRINTER].empty_since:
                await asyncio.sleep(0.01)
        await rig.service.on_view(PRINTER, loaded)  # the full data follows
        await rig.service.drain()
        assert await rig.held() == {0: (3, "manual")}


async def test_a_tray_empty_past_the_grace_loses_its_assignment(tmp_path: Path) -> None:
    store = SpoolmanStore()
    seed_demo(store)
    async with rig_for(tmp_path, store, grace=0.2) as rig:
        await rig.feed()
        await rig.slots.assign(PRINTER, 0, 3)
        rig.vp.set_tray(0, 0, empty=True)
        await rig.feed()  # no further report needed: the worker looks again after the grace
        assert await rig.held() == {}


# ----- conflicts --------------------------------------------------------------------------------------

async def test_manual_assignment_conflicting_with_a_tag_waits_for_the_user(rig: Rig) -> None:
    await rig.feed()
    await rig.slots.assign(PRINTER, 0, 3)  # by hand
    rig.slot_events()
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    assert await rig.held() == {0: (3, "manual")}
    assert await rig.service.conflicts(PRINTER) == [RfidConflict(PRINTER, 0, TAG_A, 3, 1)]
    assert rig.slot_events() == [{"kind": "rfid", "tray": 0, "conflict": {
        "printer": PRINTER, "tray": 0, "tag": TAG_A, "manual_spool_id": 3, "tag_spool_id": 1}}]

    await rig.service.resolve_conflict(PRINTER, 0, "tag")
    assert await rig.held() == {0: (1, "rfid")}
    assert await rig.service.conflicts(PRINTER) == []
    with pytest.raises(RfidError):
        await rig.service.resolve_conflict(PRINTER, 0, "tag")


async def test_keeping_the_manual_assignment_is_remembered_across_a_restart(rig: Rig, tmp_path: Path) -> None:
    await rig.slots.assign(PRINTER, 0, 3)
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    await rig.service.resolve_conflict(PRINTER, 0, "manual")
    assert await rig.service.conflicts(PRINTER) == []

    restarted = RfidService(RfidConfig(), rig.client, rig.slots, rig.bus, rig.db, retry_seconds=0, empty_grace=0)
    await restarted.on_view(PRINTER, rig.view())
    await restarted.drain()
    assert await restarted.conflicts(PRINTER) == []
    assert await rig.held() == {0: (3, "manual")}


async def test_conflict_goes_away_when_the_user_reassigns_by_hand(rig: Rig) -> None:
    await rig.slots.assign(PRINTER, 0, 3)
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    await rig.slots.assign(PRINTER, 0, 1)
    assert await rig.service.conflicts(PRINTER) == []


# ----- tag learning ----------------------------------------------------------------------------------

async def test_tag_learning_makes_the_next_load_match_by_itself(rig: Rig) -> None:
    rig.vp.set_tray(0, 0, tray_uuid=TAG_NEW)
    await rig.feed()
    assert await rig.held() == {}
    assert await rig.service.tag_offer(PRINTER, 0) is None  # nothing assigned yet

    await rig.slots.assign(PRINTER, 0, 7)
    offer = await rig.service.tag_offer(PRINTER, 0)
    assert offer == TagOffer(PRINTER, 0, TAG_NEW, 7)
    await rig.service.remember_tag(PRINTER, 0, offer.spool_id)
    assert [s["id"] for s in rig.spools_with(TAG_NEW)] == [7]
    assert await rig.service.tag_offer(PRINTER, 0) is None  # remembered: nothing to offer

    rig.vp.set_tray(0, 0, empty=True)
    await rig.feed()
    assert await rig.held() == {}
    rig.vp.set_tray(0, 0, empty=False)
    await rig.feed()
    assert await rig.held() == {0: (7, "rfid")}


async def test_no_offer_for_a_tag_another_spool_carries_or_a_tray_without_tag(rig: Rig) -> None:
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    assert await rig.service.tag_offer(PRINTER, 0) is None
    await rig.feed()
    await rig.slots.assign(PRINTER, 2, 4)
    assert await rig.service.tag_offer(PRINTER, 2) is None
    with pytest.raises(RfidError):
        await rig.service.remember_tag(PRINTER, 2, 4)


async def test_remembering_a_tag_takes_it_off_any_other_spool(rig: Rig) -> None:
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    await rig.service.remember_tag(PRINTER, 0, 7)
    assert [s["id"] for s in rig.spools_with(TAG_A)] == [7]


# ----- creating spools -------------------------------------------------------------------------------

def spools_of(store: SpoolmanStore) -> list[Spool]:
    items, _ = store.list_spools({})
    return [Spool.model_validate(item) for item in items]


async def test_create_spools_uses_a_matching_filament_and_never_duplicates(tmp_path: Path) -> None:
    store = SpoolmanStore()
    seed_demo(store)
    seeded = len(spools_of(store))
    async with rig_for(tmp_path, store, create_spools=True) as rig:
        rig.vp.set_tray(0, 1, tray_uuid=TAG_NEW, remain=80, weight_g=1000)  # PETG 00AE42: "PETG HF Green"
        for _ in range(5):  # a burst of reports while the creation runs
            await rig.service.on_view(PRINTER, rig.view())
        await rig.service.drain()
        [created] = rig.spools_with(TAG_NEW)
        spool = Spool.model_validate(created)
        assert spool.filament.name == "PETG HF Green" and spool.filament.vendor is not None
        assert spool.filament.vendor.name == "Bambu Lab"
        assert spool.initial_weight == 1000 and spool.used_weight == 200
        assert await rig.held() == {1: (spool.id, "rfid")}

        rig.service.reset(PRINTER)  # reconnect
        await rig.feed()
        restarted = RfidService(RfidConfig(create_spools=True), rig.client, rig.slots, rig.bus, rig.db,
                                empty_grace=0)
        await restarted.on_view(PRINTER, rig.view())  # restart
        await restarted.drain()
        assert len(rig.spools_with(TAG_NEW)) == 1

        # The user takes the tag off the created spool: Layerwise does not create another for it.
        store.update_spool(spool.id, {"extra": {TRAY_UUID_FIELD: None}})
        rig.vp.set_tray(0, 1, empty=True)
        await rig.feed()
        rig.vp.set_tray(0, 1, empty=False)
        await restarted.on_view(PRINTER, rig.view())
        await restarted.drain()
        assert rig.spools_with(TAG_NEW) == []
        assert len(spools_of(store)) == seeded + 1


async def test_create_spools_on_an_empty_spoolman_registers_field_vendor_and_filament(tmp_path: Path) -> None:
    store = SpoolmanStore()
    async with rig_for(tmp_path, store, create_spools=True) as rig:
        rig.vp.set_tray(0, 2, tray_uuid=TAG_NEW, type="PLA-S", color="d3b7a7ff", sub_brands="Support for PLA",
                        weight_g=250)
        await rig.feed()
        assert [f["key"] for f in store.list_fields("spool")] == [TRAY_UUID_FIELD]
        [spool] = spools_of(store)
        assert spool.extra_value(TRAY_UUID_FIELD) == TAG_NEW
        assert spool.filament.material == "PLA-S" and spool.filament.color_hex == "D3B7A7"
        assert spool.filament.name == "Support for PLA"
        assert spool.filament.density == 1.24 and spool.filament.diameter == 1.75
        assert spool.initial_weight == 250
        assert await rig.held() == {2: (spool.id, "rfid")}


async def test_without_create_spools_an_unknown_tag_creates_nothing(rig: Rig) -> None:
    rig.vp.set_tray(0, 0, tray_uuid=TAG_NEW)
    await rig.feed()
    assert rig.spools_with(TAG_NEW) == [] and await rig.held() == {}


# ----- Spoolman down ---------------------------------------------------------------------------------

async def test_spoolman_down_then_back(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    await rig.standin.stop()
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    with caplog.at_level(logging.WARNING, logger="server.slots"):
        for _ in range(3):
            await rig.feed()
    assert await rig.held() == {}
    assert sum("waits for Spoolman" in r.getMessage() for r in caplog.records) == 1  # logged once

    await rig.standin.start()
    await rig.feed()  # the same view: the failed lookup is retried
    assert await rig.held() == {0: (1, "rfid")}


async def test_spoolman_down_at_a_swap_still_sees_the_swap_later(rig: Rig) -> None:
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    await rig.feed()
    await rig.standin.stop()
    rig.vp.set_tray(0, 0, tray_uuid=TAG_B, type="PETG")
    await rig.feed()
    assert await rig.held() == {}  # spool 1 has left, whoever the new one is
    await rig.standin.start()
    await rig.feed()
    assert await rig.held() == {0: (2, "rfid")}


async def test_no_spoolman_configured_does_nothing(tmp_path: Path) -> None:
    db = open_database(tmp_path / "data")
    bus = EventBus()
    slots = SlotService(db, SpoolDirectory(None), bus, [PRINTER])
    service = RfidService(RfidConfig(), None, slots, bus, db)
    vp = demo_printer()
    vp.set_tray(0, 0, tray_uuid=TAG_A)
    await service.on_view(PRINTER, printer_view(vp.state["print"]))
    await service.drain()
    assert await slots.assignments(PRINTER) == []
    assert await service.tag_offer(PRINTER, 0) is None
    db.close()


async def test_a_restart_recognises_a_swap_made_while_down(rig: Rig) -> None:
    await rig.slots.assign(PRINTER, 0, 3)  # by hand, for the untagged spool
    await rig.feed()
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)  # swapped while Layerwise was not running
    restarted = RfidService(RfidConfig(), rig.client, rig.slots, rig.bus, rig.db, empty_grace=0)
    await restarted.on_view(PRINTER, rig.view())
    await restarted.drain()
    # The tray held an untagged spool before, so the tag is not a swap for sure: the user decides.
    assert [c.tag_spool_id for c in await restarted.conflicts(PRINTER)] == [1]
    assert repo.get_meta(rig.db, f"rfid.trays.{PRINTER}") is not None


# ----- end to end over MQTT --------------------------------------------------------------------------

async def test_virtual_printer_tag_change_over_mqtt(rig: Rig, tmp_path: Path) -> None:
    vp = VirtualPrinter(serial="00M09A000000002", model="X1C", access_code="12345678", cert_dir=tmp_path / "certs",
                        ams=[AmsUnit(0, trays=[Tray(0, type="PLA", color="000000FF"), Tray(1, empty=True)])])
    async with vp:
        config = PrinterConfig(name=PRINTER, host=vp.host, serial=vp.serial, access_code=SecretStr("12345678"),
                               mqtt_port=vp.mqtt_port, ftps_port=vp.ftps_port, ca_file=vp.ca_cert_path)
        state: dict[str, Any] = {}

        async def on_message(message: dict[str, Any]) -> None:
            nonlocal state
            body = message.get("print")
            if isinstance(body, dict) and body.get("command") in (None, "push_status"):
                state = merge_report(state, body)
                await rig.service.on_view(PRINTER, printer_view(state))

        async def on_status(_status: object) -> None:
            return None

        link = PrinterLink(config, PinStore(tmp_path / "pins"))
        task = asyncio.create_task(link.run(on_message, on_status))
        try:
            async with asyncio.timeout(15):
                while not state.get("ams"):
                    await asyncio.sleep(0.02)
                await vp.push_tray_change(0, 1, empty=False, type="PETG", color="00AE42FF", tray_uuid=TAG_B)
                while (await rig.held()).get(1) != (2, "rfid"):
                    await asyncio.sleep(0.02)
                await vp.push_tray_change(0, 1, empty=True)
                while 1 in await rig.held():
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
