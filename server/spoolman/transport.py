"""httpx's transport to Spoolman, with each connection's socket looked up once instead of per request.

Before every request and after every answer, httpcore's pool asks each pooled connection whether it has
expired: for an idle HTTP/1.1 connection that is "is its socket readable" (the server closed it). Its
anyio stream finds the socket through anyio's typed attributes, which build a fresh mapping, with a
``getpeername`` system call, on every lookup: with a farm billing many times a second this was ~8 % of
the event loop (py-spy, bench.farm). The streams here keep the socket from when they were opened and
ask the same question of it (``select.poll``, as httpcore does); everything else is httpcore's own.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


def readable(sock: socket.socket | None) -> bool:
    """Whether ``sock`` has something to read, or is closed (a read would not block)."""
    if sock is None:
        return False
    fd = sock.fileno()
    if fd == -1:
        return True  # closed: httpcore takes that as readable too (the connection is then dropped)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's stream, answering ``is_readable`` from the socket found when it was opened."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return readable(self._socket)
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, its streams wrapped in :class:`_Stream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def spoolman_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's own transport with ``limits``, its pool's connections opened through :class:`_Backend`.

    The pool's backend is httpcore's attribute, not httpx's API: should a version lack it, the transport
    is left as httpx made it (correct, only the per-request lookups stay)."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.AsyncNetworkBackend):
        pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
    return transport
