"""The spool cache pages read (``SpoolDirectory``): asks Spoolman only for spools it does not hold fresh."""

from __future__ import annotations

from server.sim.spoolman import SpoolmanStandin
from server.spoolman import Spool, SpoolmanClient
from server.spoolman.directory import SpoolDirectory


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
