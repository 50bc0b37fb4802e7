"""How the client fails: unreachable vs sent-but-unanswered, retries only for idempotent calls."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from server.retry import backoff_delay
from server.sim.spoolman import SpoolmanStandin
from server.spoolman import SpoolmanClient, SpoolmanNotFound, SpoolmanUnreachable

FAST = {"retries": 2, "backoff_base": 0.01, "backoff_cap": 0.02}


@dataclass
class RawServer:
    """A TCP server on 127.0.0.1 that reads whole HTTP requests, counts them, then misbehaves."""

    behaviour: str  # "hang": never answer; "drop": close the connection; "500", "404html", "404route": answer so
    requests: list[bytes] = field(default_factory=list)
    url: str = ""
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                self.requests.append(head + await reader.readexactly(length))
                if self.behaviour == "hang":
                    await self._release.wait()
                    return
                if self.behaviour == "drop":
                    return
                status, kind, body = {
                    "500": (b"500 Internal Server Error", b"application/json", b'{"message": "database is locked"}'),
                    # a reverse proxy's own page, or a web server that is not Spoolman
                    "404html": (b"404 Not Found", b"text/html", b"<html><body>404 Not Found</body></html>"),
                    # FastAPI's answer for a path it has no route for: Spoolman, but a wrong base path
                    "404route": (b"404 Not Found", b"application/json", b'{"detail": "Not Found"}'),
                }[self.behaviour]
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\ncontent-type: " + kind + b"\r\n"
                    + b"content-length: %d\r\n\r\n" % len(body)
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def release(self) -> None:
        self._release.set()
        for writer in self._writers:
            writer.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[str], Awaitable[RawServer]]]:
    started: list[tuple[asyncio.Server, RawServer]] = []

    async def start(behaviour: str) -> RawServer:
        raw = RawServer(behaviour)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        started.append((server, raw))
        return raw

    yield start
    for server, raw in started:
        raw.release()
        server.close()
        await server.wait_closed()


class FlakyConnects(httpx.AsyncBaseTransport):
    """Refuses the first `failures` connections (as a restarting Spoolman would), then passes through."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_stopped_spoolman_is_unreachable_and_nothing_was_sent(standin: SpoolmanStandin) -> None:
    async with SpoolmanClient(standin.url, timeout=2.0, **FAST) as client:
        await client.use_spool(1, weight_g=10.0)
        await standin.stop()
        with pytest.raises(SpoolmanUnreachable) as use_failure:
            await client.use_spool(1, weight_g=10.0)
        assert use_failure.value.request_sent is False
        with pytest.raises(SpoolmanUnreachable) as get_failure:
            await client.get_spool(1)
        assert get_failure.value.request_sent is False
        assert await client.health() is False
        await standin.start()  # same port, same data
        assert await client.health() is True
        assert (await client.get_spool(1)).used_weight == pytest.approx(212.5 + 10.0)


async def test_reads_retry_through_refused_connections_but_use_does_not(standin: SpoolmanStandin) -> None:
    transport = FlakyConnects(failures=2)
    async with SpoolmanClient(standin.url, transport=transport, **FAST) as client:
        assert (await client.get_spool(2)).id == 2
        assert transport.attempts == 3
    transport = FlakyConnects(failures=1)
    async with SpoolmanClient(standin.url, transport=transport, **FAST) as client:
        with pytest.raises(SpoolmanUnreachable) as caught:
            await client.use_spool(2, weight_g=1.0)
        assert caught.value.request_sent is False and transport.attempts == 1
    assert standin.store.get_spool(2)["used_weight"] == 80.0


async def test_not_found_is_not_retried(standin: SpoolmanStandin) -> None:
    transport = FlakyConnects(failures=0)
    async with SpoolmanClient(standin.url, transport=transport, **FAST) as client:
        with pytest.raises(SpoolmanNotFound):
            await client.get_spool(77)
    assert transport.attempts == 1


async def test_unanswered_use_may_have_been_applied(raw_server: Callable[[str], Awaitable[RawServer]]) -> None:
    server = await raw_server("hang")
    async with SpoolmanClient(server.url, timeout=0.3, **FAST) as client:
        with pytest.raises(SpoolmanUnreachable) as caught:
            await client.use_spool(5, length_mm=120.0)
    assert caught.value.request_sent is True
    assert len(server.requests) == 1  # never repeated
    assert server.requests[0].startswith(b"PUT /api/v1/spool/5/use ")
    assert server.requests[0].endswith(b'{"use_length":120.0}')


async def test_unanswered_reads_are_retried(raw_server: Callable[[str], Awaitable[RawServer]]) -> None:
    server = await raw_server("hang")
    async with SpoolmanClient(server.url, timeout=0.2, **FAST) as client:
        with pytest.raises(SpoolmanUnreachable) as caught:
            await client.get_spool(5)
    assert caught.value.request_sent is True and len(server.requests) == 3


async def test_connection_dropped_after_the_request(raw_server: Callable[[str], Awaitable[RawServer]]) -> None:
    server = await raw_server("drop")
    async with SpoolmanClient(server.url, timeout=2.0, **FAST) as client:
        with pytest.raises(SpoolmanUnreachable) as caught:
            await client.use_spool(5, weight_g=3.0)
    assert caught.value.request_sent is True and len(server.requests) == 1


async def test_server_errors(raw_server: Callable[[str], Awaitable[RawServer]]) -> None:
    server = await raw_server("500")
    async with SpoolmanClient(server.url, timeout=2.0, **FAST) as client:
        with pytest.raises(SpoolmanUnreachable) as use_failure:
            await client.use_spool(5, weight_g=3.0)
        assert len(server.requests) == 1
        with pytest.raises(SpoolmanUnreachable) as patch_failure:
            await client.patch_spool_extra(5, {"tag": "x"})
        assert len(server.requests) == 1 + 3
    assert use_failure.value.request_sent is True and use_failure.value.status_code == 500
    assert "database is locked" in str(use_failure.value)
    assert patch_failure.value.status_code == 500


@pytest.mark.parametrize("behaviour", ["404html", "404route"])
async def test_a_404_that_is_not_spoolmans_is_no_deleted_spool(
    raw_server: Callable[[str], Awaitable[RawServer]], behaviour: str
) -> None:
    # A proxy's 404 page or a wrong base path must not read as "this spool was deleted": the outbox
    # would empty every tray. Only Spoolman's own {"message": ...} 404 means the item is gone.
    server = await raw_server(behaviour)
    async with SpoolmanClient(server.url, timeout=2.0, **FAST) as client:
        with pytest.raises(SpoolmanUnreachable) as read:
            await client.get_spool(5)
        with pytest.raises(SpoolmanUnreachable) as use:
            await client.use_spool(5, length_mm=3.0)
    assert "not Spoolman's" in str(read.value) and "[spoolman] url" in str(read.value)
    assert use.value.request_sent is True


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempt, base=0.5, cap=4.0, rng=rng) for attempt in range(8)]
    for attempt, delay in enumerate(delays):
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)
