"""Run the stand-in over real HTTP (uvicorn on 127.0.0.1), and take it down and up on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from server.sim.spoolman.app import create_standin_app
from server.sim.spoolman.store import SpoolmanStore


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal capture: the host process (tests, demo) owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SpoolmanStandin:
    """The Spoolman stand-in listening on `url`; `stop()` gives "connection refused" until `start()`."""

    def __init__(self, store: SpoolmanStore | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store if store is not None else SpoolmanStore()
        self.host = host
        self.port = port
        self._app = create_standin_app(self.store)
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            return
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
        # and without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # SO_REUSEADDR lets a restart bind the same port while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"spoolman-standin:{self.port}")
        while not server.started:
            if self._task.done():
                await self._task  # re-raises the startup failure
                raise RuntimeError("the Spoolman stand-in stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server, self._task = None, None

    async def __aenter__(self) -> SpoolmanStandin:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
