"""The fault campaign's lossy proxy, between Layerwise's own Spoolman client and the stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.faults.proxy import ProxyFault, SpoolmanProxy
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore
from server.spoolman import SpoolmanClient, SpoolmanUnreachable


@pytest.fixture
def store() -> SpoolmanStore:
    store = SpoolmanStore()
    filament = store.create_filament({"name": "PLA", "density": 1.24, "diameter": 1.75})["id"]
    store.create_spool({"filament_id": filament, "used_weight": 0.0})
    return store


@pytest.fixture
async def proxy(store: SpoolmanStore) -> AsyncIterator[SpoolmanProxy]:
    async with SpoolmanStandin(store) as standin, SpoolmanProxy(standin.url) as running:
        yield running


def _used(store: SpoolmanStore) -> float:
    return float(store.get_spool(1)["used_length"])


async def test_requests_pass_through_unchanged(proxy: SpoolmanProxy, store: SpoolmanStore) -> None:
    async with SpoolmanClient(proxy.url, retries=0) as client:
        for _ in range(3):  # one kept-alive connection carries them all
            await client.use_spool(1, length_mm=100.0)
        spool = await client.get_spool(1)
    assert spool.used_length == pytest.approx(300.0) == _used(store)
    assert proxy.fired == []


async def test_a_lost_answer_was_applied(proxy: SpoolmanProxy, store: SpoolmanStore) -> None:
    done = proxy.arm(ProxyFault.LOST_ANSWER)
    async with SpoolmanClient(proxy.url, retries=0) as client:
        await client.get_spool(1)  # only `use` requests are lost
        with pytest.raises(SpoolmanUnreachable) as lost:
            await client.use_spool(1, length_mm=100.0)
        assert lost.value.request_sent
        assert await done == "PUT /api/v1/spool/1/use HTTP/1.1"
        assert _used(store) == pytest.approx(100.0)
        await client.use_spool(1, length_mm=50.0)  # the next one goes through again
    assert _used(store) == pytest.approx(150.0)


async def test_a_lost_request_was_not_applied(proxy: SpoolmanProxy, store: SpoolmanStore) -> None:
    done = proxy.arm(ProxyFault.LOST_REQUEST)
    async with SpoolmanClient(proxy.url, retries=0) as client:
        with pytest.raises(SpoolmanUnreachable) as lost:
            await client.use_spool(1, length_mm=100.0)
        assert lost.value.request_sent  # the client cannot tell it from a lost answer
        await done
        assert _used(store) == 0.0
        await client.use_spool(1, length_mm=50.0)
    assert _used(store) == pytest.approx(50.0)
    assert [kind for kind, _ in proxy.fired] == [ProxyFault.LOST_REQUEST]


async def test_a_slow_request_lands_after_the_client_gave_up(proxy: SpoolmanProxy, store: SpoolmanStore) -> None:
    done = proxy.arm(ProxyFault.SLOW, hold=0.5)
    async with SpoolmanClient(proxy.url, timeout=0.1, retries=0) as client:
        with pytest.raises(SpoolmanUnreachable) as timed_out:
            await client.use_spool(1, length_mm=100.0)
        assert timed_out.value.request_sent
    await done  # resolves once Spoolman has applied it
    assert _used(store) == pytest.approx(100.0)


async def test_paused_it_refuses_connections(proxy: SpoolmanProxy, store: SpoolmanStore) -> None:
    async with SpoolmanClient(proxy.url, retries=0) as client:
        await client.get_spool(1)
        await proxy.pause()
        with pytest.raises(SpoolmanUnreachable) as refused:
            await client.use_spool(1, length_mm=100.0)
        assert not refused.value.request_sent  # as with Spoolman itself down: certainly not sent
        await proxy.start()
        await client.use_spool(1, length_mm=100.0)
    assert _used(store) == pytest.approx(100.0)


async def test_a_fault_can_be_withdrawn(proxy: SpoolmanProxy, store: SpoolmanStore) -> None:
    done = proxy.arm(ProxyFault.LOST_REQUEST)
    assert proxy.disarm(done) and done.cancelled()
    assert not proxy.disarm(done)
    async with SpoolmanClient(proxy.url, retries=0) as client:
        await client.use_spool(1, length_mm=100.0)
    assert _used(store) == pytest.approx(100.0)
