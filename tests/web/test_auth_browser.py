"""Signing in with Debian's Chromium: first-run page → password → dashboard; sign out and in again.

The browser reaches the server from 127.0.0.1, which is this machine's own browser (let in without a
password); it sends ``X-Forwarded-For`` as a reverse proxy would, so the server treats it as a visitor
from another machine, which is what these pages are for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from web_stack import PHONE

from server.config import ServerConfig, Settings
from server.runtime import Runtime
from server.web.app import create_app
from server.web.embedded import EmbeddedServer

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


class Site:
    """A real installation with no printer yet (no demo: access control is on), on a thread of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        runtime = Runtime.build(Settings(server=ServerConfig(data_dir=self.folder)))
        async with EmbeddedServer(create_app(runtime), "127.0.0.1", 0, lifespan="on", name="layerwise") as web:
            self.url = web.url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Site:
        self._thread.start()
        assert self._ready.wait(60), "the site did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with Site(tmp_path / "data") as running:
        yield running


@pytest.fixture
def visitor(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, base_url=site.url,
                                  extra_http_headers={"X-Forwarded-For": "192.0.2.7"})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_first_run_then_sign_out_and_in(visitor: Page, site: Site, artifacts: Path) -> None:
    page = visitor
    page.goto("/")
    expect(page).to_have_url(f"{site.url}/first-run?next=%2F")
    expect(page.locator("h1")).to_have_text("Create a password")
    page.screenshot(path=str(artifacts / "auth-first-run-phone.png"))
    page.get_by_label("Name").fill("ann")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD + "!")
    page.get_by_role("button", name="Create and sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("the two passwords differ")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create and sign in").click()

    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page).to_have_url(f"{site.url}/")
    [session] = [c for c in page.context.cookies() if c["name"] == "layerwise_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    expect(page.locator("#live")).to_have_text("Live")  # the live updates got through with the session

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("h1")).to_have_text("Sign in")
    page.goto("/jobs")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.get_by_label("Name").fill("ann")
    page.get_by_label("Password").fill("wrong horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    page.screenshot(path=str(artifacts / "auth-login-phone.png"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{site.url}/jobs")


def test_live_updates_stop_and_go_to_sign_in_when_the_session_ends(visitor: Page, site: Site) -> None:
    page = visitor
    page.goto("/")
    page.get_by_label("Name").fill("ann")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create and sign in").click()
    expect(page.locator("#live")).to_have_text("Live")
    held: list[Route] = []  # the live-update stream's next connection, held back until the session has ended
    page.route("**/events", lambda route: held.append(route))
    page.reload()
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page did not connect to /events"
    other = page.context.new_page()  # signed out in another tab: this tab's session ends with it
    other.goto("/")
    other.get_by_role("button", name="Sign out").click()
    expect(other.locator("h1")).to_have_text("Sign in")
    other.close()
    held[0].continue_()  # now refused with 401: no retrying for ever, but the sign-in page
    expect(page).to_have_url(f"{site.url}/login?next=%2F")
    expect(page.locator("h1")).to_have_text("Sign in")
