"""Fixtures for the browser tests: one running stack and one Chromium per test module.

Per module, not per session: each module starts from the demo's Spoolman data and a fresh Layerwise
data directory, so what one module leaves (tags remembered on spools, jobs, bills, sessions) cannot
change what another sees, whatever order they run in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from credentials import csrf_pair
from fake_camera import write_y4m
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from web_stack import CHROMIUM, CHROMIUM_ARGS, DEMO_SLOTS, PHONE, PRINTER, SCANNED_LABEL, WebStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    running = WebStack(tmp_path_factory.mktemp("web-stack")).start()
    yield running
    running.stop()


# Module scope, not session: sync Playwright keeps an event loop running in this thread while it is
# open, which would break every asyncio test collected after the browser tests.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    video = write_y4m(tmp_path_factory.mktemp("camera") / "label.y4m", SCANNED_LABEL)
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"],
    )
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser, stack: WebStack) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, base_url=stack.url, permissions=["camera"])
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def api(stack: WebStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url + "/api/v1", timeout=10, **csrf_pair()) as client:
        for tray, spool in DEMO_SLOTS.items():  # every test starts from the demo's assignments
            client.put(f"/printers/{quote(PRINTER)}/slots/{tray}", json={"spool_id": spool, "move": True})
        yield client


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where browser tests leave their screenshots for a person to look at: LAYERWISE_ARTIFACTS, or a
    temporary folder (a test run writes nothing into the repository; README shots: tests.web.screenshots)."""
    chosen = os.environ.get("LAYERWISE_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
