"""A lossy HTTP/1.1 proxy on loopback between Layerwise and the Spoolman stand-in.

It passes every request through unchanged, except the next request that matches an armed fault
(by default a ``PUT /api/v1/spool/{id}/use``):

* ``lost_answer``: the request reaches Spoolman and is applied; its answer is dropped and the
  client's connection closed (the client cannot know whether it was applied);
* ``lost_request``: the connection is closed before the request is forwarded (never applied, but
  the client cannot know that either);
* ``slow``: the request is held for ``hold`` seconds (past the client's timeout) before it is
  forwarded, so it is applied after the client gave up on it; the answer goes nowhere.

Each connection mirrors one upstream connection, so when the stand-in goes away the client sees
its connection close, and :meth:`pause` makes new connections be refused, as Spoolman being down
would. A fault's future resolves once it has had its whole effect (for ``slow``: the request was
applied), with the request line it acted on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

USE_REQUEST = re.compile(r"PUT /api/v1/spool/\d+/use ")


class ProxyFault(StrEnum):
    LOST_ANSWER = "lost_answer"
    LOST_REQUEST = "lost_request"
    SLOW = "slow"


@dataclass
class _Armed:
    kind: ProxyFault
    hold: float
    done: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def fire(self, request_line: str) -> None:
        if not self.done.done():
            self.done.set_result(request_line)


class _Closed(Exception):
    """One side closed the connection (or sent something that is not HTTP/1.1)."""


async def read_message(reader: asyncio.StreamReader, *, response_to: str | None = None) -> bytes:
    """One HTTP/1.1 message, head and body, as raw bytes (``response_to``: the request's method)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as error:
        raise _Closed(str(error)) from None
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    no_body = response_to == "HEAD"
    if response_to is not None:
        status = lines[0].split(" ", 2)[1] if len(lines[0].split(" ")) > 1 else "0"
        no_body = no_body or status.startswith("1") or status in ("204", "304")
    try:
        if no_body:
            return head
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return head + await _read_chunked(reader)
        if "content-length" in headers:
            return head + await reader.readexactly(int(headers["content-length"]))
        if response_to is not None:  # no length: the body runs to the end of the connection
            return head + await reader.read()
        return head
    except (asyncio.IncompleteReadError, ConnectionError, ValueError) as error:
        raise _Closed(str(error)) from None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        body += size_line
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, up to the blank line
                line = await reader.readuntil(b"\r\n")
                body += line
                if line == b"\r\n":
                    return body
        body += await reader.readexactly(size + 2)


class SpoolmanProxy:
    """``async with SpoolmanProxy(standin.url) as proxy:`` give Layerwise ``proxy.url``."""

    def __init__(self, upstream_url: str, *, host: str = "127.0.0.1", port: int = 0,
                 match: re.Pattern[str] = USE_REQUEST) -> None:
        upstream = urlsplit(upstream_url)
        self._upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.host = host
        self.port = port
        self._match = match
        self._server: asyncio.Server | None = None
        self._armed: list[_Armed] = []
        self._streams: set[asyncio.StreamWriter] = set()  # both ends of every open connection
        self.fired: list[tuple[ProxyFault, str]] = []  # every fault that acted, with its request line

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def pause(self) -> None:
        """Refuse connections until :meth:`start` (on the same port) and cut the open ones.

        Cut by closing their sockets, not by cancelling their tasks: each ends as on any closed
        connection (a slow request already held still goes through once its hold is over).
        """
        server, self._server = self._server, None
        if server is not None:
            server.close()
        closing = list(self._streams)
        for writer in closing:
            _close(writer)
        for writer in closing:  # closed for good (FIN sent) before Spoolman is taken down behind us
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if server is not None:
            await server.wait_closed()

    async def stop(self) -> None:
        await self.pause()
        for armed in self._armed:
            armed.done.cancel()
        self._armed.clear()

    async def __aenter__(self) -> SpoolmanProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def arm(self, kind: ProxyFault, *, hold: float = 0.0) -> asyncio.Future[str]:
        """Apply ``kind`` to the next matching request; the future resolves when it has acted."""
        armed = _Armed(ProxyFault(kind), hold)
        self._armed.append(armed)
        return armed.done

    def disarm(self, done: asyncio.Future[str]) -> bool:
        """Withdraw a fault that has not acted yet; whether it was still waiting."""
        for armed in self._armed:
            if armed.done is done:
                self._armed.remove(armed)
                done.cancel()
                return True
        return False

    def _take(self, request_line: str) -> _Armed | None:
        if self._armed and self._match.match(request_line):
            return self._armed.pop(0)
        return None

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._streams.add(client_writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        armed: _Armed | None = None
        line = ""
        try:
            upstream = await self._connect()
            while True:
                request = await self._next_request(client_reader, upstream[0])
                line = request.split(b"\r\n", 1)[0].decode("latin-1") + " "
                armed = self._take(line)
                if armed is not None and armed.kind is ProxyFault.LOST_REQUEST:
                    self.fired.append((armed.kind, line.strip()))
                    armed.fire(line.strip())
                    return
                if armed is not None and armed.kind is ProxyFault.SLOW:
                    await asyncio.sleep(armed.hold)
                    self._forget(upstream[1])  # idle meanwhile, the stand-in may have closed it: a fresh one
                    upstream = await self._connect()
                upstream[1].write(request)
                await upstream[1].drain()
                response = await read_message(upstream[0], response_to=line.split(" ", 1)[0])
                if armed is not None:  # the answer goes nowhere: lost, or too late for the client
                    self.fired.append((armed.kind, line.strip()))
                    armed.fire(line.strip())
                    return
                client_writer.write(response)
                await client_writer.drain()
                if b"\r\nconnection: close" in response.split(b"\r\n\r\n", 1)[0].lower():
                    return
        except (_Closed, OSError):
            return
        finally:
            if armed is not None and not armed.done.done():  # cut short (pause, stop): it acted as far as it got
                self.fired.append((armed.kind, line.strip() + " (cut)"))
                armed.fire(line.strip() + " (cut)")
            self._forget(client_writer)
            if upstream is not None:
                self._forget(upstream[1])

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(*self._upstream)
        self._streams.add(writer)
        return reader, writer

    def _forget(self, writer: asyncio.StreamWriter) -> None:
        _close(writer)
        self._streams.discard(writer)

    @staticmethod
    async def _next_request(client: asyncio.StreamReader, upstream: asyncio.StreamReader) -> bytes:
        """The client's next request; raises ``_Closed`` if the upstream closes first (mirrored)."""
        request = asyncio.ensure_future(read_message(client))
        gone = asyncio.ensure_future(upstream.read(1))
        try:
            await asyncio.wait({request, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancelled and awaited, so the reader has no waiter left when it is read next.
            for task in (request, gone):
                if not task.done():
                    task.cancel()
            await asyncio.gather(request, gone, return_exceptions=True)
        if not gone.cancelled():
            raise _Closed("upstream closed")
        return request.result()


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
