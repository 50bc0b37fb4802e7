"""The Spoolman client's transport: a connection the server closed while idle is never used again."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest

from server.spoolman import SpoolmanClient
from server.spoolman.transport import readable

SPOOL = {"id": 5, "filament": {"id": 1, "density": 1.24, "diameter": 1.75}, "used_weight": 3.0}


def test_a_socket_is_readable_with_data_or_once_its_peer_closed() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert readable(ours) is False
        theirs.sendall(b"x")
        assert readable(ours) is True
        ours.recv(1)
        assert readable(ours) is False
        theirs.close()
        assert readable(ours) is True
    assert readable(None) is False


class OneAnswerServer:
    """Answers one request per connection (keep-alive, as far as the client can tell), then closes it."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.closed = asyncio.Event()
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            await reader.readexactly(length)
            self.requests += 1
            body = json.dumps(SPOOL).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()
            self.closed.set()


@pytest.fixture
async def one_answer() -> AsyncIterator[OneAnswerServer]:
    raw = OneAnswerServer()
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield raw
    server.close()
    await server.wait_closed()


async def test_a_use_after_the_server_closed_the_idle_connection_goes_on_a_new_one(
        one_answer: OneAnswerServer) -> None:
    # retries=0 and `use` is never retried anyway: a request written to the closed connection would fail
    # (and a use whose fate is unknown waits for settlement). The pool must see the close first.
    async with SpoolmanClient(one_answer.url, timeout=2.0, retries=0) as client:
        assert (await client.use_spool(5, length_mm=10.0)).used_weight == 3.0
        await one_answer.closed.wait()
        assert (await client.use_spool(5, length_mm=10.0)).used_weight == 3.0
    assert (one_answer.requests, one_answer.connections) == (2, 2)
