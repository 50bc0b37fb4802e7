"""Run the stand-in over real HTTP (uvicorn on 127.0.0.1), and take it down and up on the same port."""

from __future__ import annotations

from server.sim.spoolman.app import create_standin_app
from server.sim.spoolman.refusals import Refusals
from server.sim.spoolman.store import SpoolmanStore
from server.web.embedded import EmbeddedServer


class SpoolmanStandin(EmbeddedServer):
    """The Spoolman stand-in listening on `url`; `stop()` gives "connection refused" until `start()`,
    `refuse()` a 4xx answer to the next matching requests."""

    def __init__(self, store: SpoolmanStore | None = None, host: str = "127.0.0.1", port: int = 0,
                 api_key: str | None = None) -> None:
        self.store = store if store is not None else SpoolmanStore()
        self.refusals = Refusals()
        super().__init__(create_standin_app(self.store, api_key=api_key, refusals=self.refusals), host, port,
                         name="spoolman-standin")

    def refuse(self, method: str, path: str, status: int, message: str, *, times: int = 1) -> None:
        """Answer the next ``times`` requests ``method path`` (e.g. ``"PUT", "/spool/3/use"``) with ``status``
        in Spoolman's error shape, applying nothing."""
        self.refusals.add(method, path, status, message, times=times)

    async def __aenter__(self) -> SpoolmanStandin:
        await self.start()
        return self
