"""The farm view (/farm) in a real Chromium while the farm prints: is the page still smooth?

Over the measured window: frames per second (requestAnimationFrame callbacks counted in the page: 60
when the page keeps up, fewer when its main thread is busy), long tasks (PerformanceObserver
'longtask', main-thread work over 50 ms: count and total), and the bytes per second the page received
for its live updates: the update stream (/events) and the rows it asks for (/farm/rows), as Chromium's
network layer counts them (DevTools protocol). A figure, never a test assertion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")

# Installed before the page's own scripts: counts frames and long tasks from a reset() on.
COUNTERS = """
window.__farmBench = { frames: 0, longTasks: 0, longMs: 0 };
window.__farmBench.reset = () => Object.assign(window.__farmBench, { frames: 0, longTasks: 0, longMs: 0 });
(function tick() { window.__farmBench.frames += 1; requestAnimationFrame(tick); })();
try {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      window.__farmBench.longTasks += 1; window.__farmBench.longMs += entry.duration;
    }
  }).observe({ type: "longtask", buffered: false });
} catch (_) { /* no long-task timing in this browser: counted as none */ }
"""


@dataclass
class PageFigures:
    fps: float
    long_tasks: int
    long_task_ms: float
    stream_bytes_per_s: float  # /events
    rows_bytes_per_s: float  # /farm/rows and anything else the page fetched


class FarmPage:
    """``async with FarmPage(url):`` opens /farm in headless Chromium; ``start()`` opens the window and
    ``stop()`` closes it with the figures."""

    def __init__(self, url: str, executable: Path = CHROMIUM) -> None:
        self.url, self.executable = url, executable
        self._urls: dict[str, str] = {}
        self._bytes = {"stream": 0, "rows": 0}
        self._started = 0.0

    async def __aenter__(self) -> FarmPage:
        from playwright.async_api import async_playwright  # only when measuring a page

        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=str(self.executable), args=["--no-sandbox", "--disable-dev-shm-usage"])
        self.page = await self._browser.new_page(viewport={"width": 1280, "height": 900})
        await self.page.add_init_script(COUNTERS)
        cdp = await self.page.context.new_cdp_session(self.page)
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.dataReceived", self._received)
        await cdp.send("Network.enable")
        await self.page.goto(f"{self.url}/farm")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._browser.close()
        await self._playwright.stop()

    def _sent(self, params: dict[str, Any]) -> None:
        self._urls[params["requestId"]] = params["request"]["url"]

    def _received(self, params: dict[str, Any]) -> None:
        # dataLength: bytes after decoding (the stream is never compressed; rows are, and this counts
        # what the page has to handle); chunks of a stream arrive here as they come.
        kind = "stream" if self._urls.get(params["requestId"], "").split("?")[0].endswith("/events") else "rows"
        self._bytes[kind] += int(params.get("dataLength", 0))

    async def start(self) -> None:
        await self.page.evaluate("window.__farmBench.reset()")
        self._bytes = {"stream": 0, "rows": 0}
        self._started = time.monotonic()

    async def stop(self) -> PageFigures:
        counters = await self.page.evaluate("({ ...window.__farmBench })")
        elapsed = max(1e-6, time.monotonic() - self._started)
        return PageFigures(counters["frames"] / elapsed, int(counters["longTasks"]), float(counters["longMs"]),
                           self._bytes["stream"] / elapsed, self._bytes["rows"] / elapsed)
