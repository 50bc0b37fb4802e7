"""The spool cache pages read (``SpoolDirectory``): asks Spoolman only for spools it does not hold fresh,
and never keeps a read that began before an invalidation (it may hold the old weight)."""

from __future__ import annotations

import asyncio

from server.sim.spoolman import SpoolmanStandin, SpoolmanStore
from server.spoolman import Spool, SpoolmanClient
from server.spoolman.directory import FETCHES_AT_ONCE, SpoolDirectory


class Gated:
    """Answers ``get_spool`` with ``spool`` once ``gate`` is open: a Spoolman answer still on its way."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.gate = asyncio.Event()

    async def get_spool(self, spool_id: int) -> Spool:
        await self.gate.wait()
        return self.spool


async def test_a_read_begun_before_an_invalidation_is_not_kept() -> None:
    store = SpoolmanStore()
    vendor = store.create_vendor({"name": "V"})["id"]
    filament = store.create_filament({"vendor_id": vendor, "name": "PLA", "material": "PLA", "density": 1.24,
                                      "diameter": 1.75, "weight": 1000.0})["id"]
    spool_id = int(store.create_spool({"filament_id": filament})["id"])
    async with SpoolmanStandin(store) as standin, SpoolmanClient(standin.url, timeout=5) as client:
        old = await client.get_spool(spool_id)
        store.update_spool(spool_id, {"remaining_weight": 20.0})
        new = await client.get_spool(spool_id)
    spoolman = Gated(old)
    directory = SpoolDirectory(spoolman)  # type: ignore[arg-type]
    reading = asyncio.create_task(directory.get(spool_id))  # Spoolman answered the old weight...
    await asyncio.sleep(0)
    directory.invalidate(spool_id)  # ...and the spool changed before the answer was taken in
    spoolman.gate.set()
    assert await reading is old
    spoolman.spool = new
    assert (await directory.get(spool_id)) is new  # read again, not the stale answer
    assert (await directory.get(spool_id)) is new  # and now kept
    spoolman.spool = old
    assert (await directory.get(spool_id)) is new


class Counting(SpoolmanClient):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.asked: list[int] = []

    async def get_spool(self, spool_id: int) -> Spool:
        self.asked.append(spool_id)
        return await super().get_spool(spool_id)


async def test_get_many_asks_only_for_what_it_does_not_hold(standin: SpoolmanStandin) -> None:
    ids = [int(s["id"]) for s in standin.store.list_spools({})[0]][:3]
    async with Counting(standin.url) as client:
        spools = SpoolDirectory(client)
        first = await spools.get_many(ids[:2])
        again = await spools.get_many(ids)
        assert client.asked == [*ids[:2], ids[2]]  # the two cached ones were not asked for again
        assert again == {**first, ids[2]: again[ids[2]]} and again[ids[2]] is not None
        spools.put(again[ids[2]].model_copy(update={"used_weight": 5.0}))  # as the outbox hands a delivery's answer
        assert (await spools.get_many(ids[2:]))[ids[2]].used_weight == 5.0
        assert client.asked == ids


class Held:
    """Answers ``get_spool`` once ``gate`` is open, counting the reads asked and those under way at once."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.gate = asyncio.Event()
        self.asked: list[int] = []
        self.under_way = self.most = 0

    async def get_spool(self, spool_id: int) -> Spool:
        self.asked.append(spool_id)
        self.under_way += 1
        self.most = max(self.most, self.under_way)
        try:
            await self.gate.wait()
        finally:
            self.under_way -= 1
        return self.spool.model_copy(update={"id": spool_id})


def _spool() -> Spool:
    store = SpoolmanStore()
    vendor = store.create_vendor({"name": "V"})["id"]
    filament = store.create_filament({"vendor_id": vendor, "name": "PLA", "material": "PLA", "density": 1.24,
                                      "diameter": 1.75, "weight": 1000.0})["id"]
    return Spool.model_validate(store.create_spool({"filament_id": filament}))


async def test_callers_asking_for_a_spool_being_read_share_the_read() -> None:
    spoolman = Held(_spool())
    directory = SpoolDirectory(spoolman)  # type: ignore[arg-type]
    first = asyncio.create_task(directory.get(7))
    await asyncio.sleep(0)
    patient = asyncio.create_task(directory.get(7))
    impatient = asyncio.create_task(directory.get(7))
    await asyncio.sleep(0)
    impatient.cancel()  # one caller giving up does not cancel the others' read
    await asyncio.sleep(0)
    spoolman.gate.set()
    assert (await first).id == 7 and (await patient).id == 7
    assert spoolman.asked == [7]


async def test_a_caller_after_an_invalidation_does_not_share_the_older_read() -> None:
    spoolman = Held(_spool())
    directory = SpoolDirectory(spoolman)  # type: ignore[arg-type]
    older = asyncio.create_task(directory.get(7))
    await asyncio.sleep(0)
    directory.invalidate(7)  # the spool changed while it was being read
    newer = asyncio.create_task(directory.get(7))
    await asyncio.sleep(0)
    spoolman.gate.set()
    await asyncio.gather(older, newer)
    assert spoolman.asked == [7, 7]


async def test_a_farm_of_spools_is_read_a_few_at_a_time() -> None:
    spoolman = Held(_spool())
    directory = SpoolDirectory(spoolman)  # type: ignore[arg-type]
    reading = asyncio.create_task(directory.get_many(range(1, 101)))
    for _ in range(5):
        await asyncio.sleep(0)
    spoolman.gate.set()
    found = await reading
    assert sorted(found) == list(range(1, 101)) and spoolman.most == FETCHES_AT_ONCE


async def test_another_spools_change_keeps_a_read_under_way() -> None:
    spoolman = Held(_spool())
    directory = SpoolDirectory(spoolman)  # type: ignore[arg-type]
    reading = asyncio.create_task(directory.get(7))
    await asyncio.sleep(0)
    directory.invalidate(8)  # a delivery to another spool while 7 is read
    sharing = asyncio.create_task(directory.get(7))  # still shares the read under way
    await asyncio.sleep(0)
    spoolman.gate.set()
    assert (await reading).id == 7 and (await sharing).id == 7
    assert (await directory.get(7)).id == 7  # kept: not read again
    assert spoolman.asked == [7]
    directory.invalidate()  # every spool changed: read anew
    assert (await directory.get(7)).id == 7 and spoolman.asked == [7, 7]
