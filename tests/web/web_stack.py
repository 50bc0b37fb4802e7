"""The real app for browser tests: virtual printer + Spoolman stand-in + Layerwise, on a background loop.

Playwright's sync API runs its own event loop in the test thread, so the stack lives in a thread
of its own; tests reach into it with ``call`` (a coroutine run there, result returned here).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from server.config import Settings
from server.runtime import Runtime
from server.sim.demo import demo_printer, demo_settings
from server.sim.printer import VirtualPrinter
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore, seed_demo
from server.web.app import create_app
from server.web.embedded import EmbeddedServer

# Shared by the browser tests (imported by name: a test module never imports `conftest`, whose name
# clashes with the other folders' conftest modules).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SCANNED_LABEL = "WEB+SPOOLMAN:S-3"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
DEMO_SLOTS = {0: 1, 1: 3, 2: 4, 3: 2, 254: 6}  # tray -> spool, as the demo seeds and RFID-matches them

PRINTER = "Demo X1C"
T = TypeVar("T")


class WebStack:
    def __init__(self, folder: Path, adjust: Callable[[Settings], Settings] | None = None,
                 wait_online: bool = True) -> None:
        """``adjust`` changes the demo's settings (a wrong access code, no printers); ``wait_online=False``
        starts without waiting for the printer to be online."""
        self.folder = folder
        self.adjust = adjust
        self.wait_online = wait_online
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self.printer: VirtualPrinter | None = None
        self.runtime: Runtime | None = None
        self.web: EmbeddedServer | None = None
        self.spoolman: SpoolmanStandin | None = None
        self.store = SpoolmanStore()
        seed_demo(self.store)
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="web-stack", daemon=True)

    def start(self) -> WebStack:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the web stack did not start within 60 s")
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the test thread
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with SpoolmanStandin(self.store) as spoolman, demo_printer(self.folder / "printer-certs") as printer:
            settings = demo_settings(printer, spoolman.url, self.folder / "data", port=1)
            if self.adjust is not None:
                settings = self.adjust(settings)
            runtime = Runtime.build(settings)
            # The runtime outlives the web server here, so a test can restart the server alone.
            web = EmbeddedServer(create_app(runtime, manage_lifespan=False), "127.0.0.1", 0, name="layerwise")
            await runtime.start()
            try:
                await web.start()
                self.url, self.printer, self.runtime, self.web, self.spoolman = (
                    web.url, printer, runtime, web, spoolman)
                if self.wait_online:
                    await self._until(lambda: runtime.printers[PRINTER].online, "the printer online")
                self._ready.set()
                await self._stop.wait()
            finally:
                await web.stop()
                await runtime.stop()

    @staticmethod
    async def _until(condition: Callable[[], Any], what: str, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
