"""The ledger pages over HTTP: they render, unknown ids are 404 pages, bad input is a clear answer (never a
500), and their actions need the pages' CSRF token."""

from __future__ import annotations

import re

import httpx

from server.billing.settlement import DELIVERED
from tests.app.conftest import Stack
from tests.app.test_ledger_api import bill, new_job, states, until


async def _token(client: httpx.AsyncClient, path: str = "/attention") -> str:
    page = await client.get(path)
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def test_pages_render_and_unknown_ids_are_404(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {0: 0}, range(0, 3))
    await until(lambda: states(stack, ids) == {DELIVERED})
    bill(stack, job, {}, range(3, 5), filament=1)  # waits for its tray
    pages = {
        "/attention": "Which tray fed filament 2 of cube?",
        "/attention/list": "Tap the tray filament 2 printed from",
        "/attention/badge": "Needs attention",
        "/": "Needs attention",
        "/spools/3/ledger": "layer 2 · filament 1 · A1",
        f"/jobs/{job}": "Spool #3",
        f"/jobs/{job}/correct?from_spool=3": "Which spool was really used?",
        f"/jobs/{job}/correct/spools?from_spool=3&q=petg": "Move here",
        f"/jobs/{job}/correct/preview?from_spool=3&pick_spool_id=4": "from spool #3 to spool #4",
        f"/jobs/{job}/correct/preview?from_spool=3&pick_spool_id=999": "Spoolman has no spool 999",
        f"/jobs/{job}/correct/preview?from_spool=3&pick_spool_id=3": "same spool",
        "/attention/pick-spool?job_id=1&state=rejected&spool_id=3": "Send to another spool",
        "/attention/pick-spool": "not known",
    }
    for path, text in pages.items():
        response = await stack.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert text in response.text, (path, response.text[:2000])
    for path in ("/jobs/424242", "/spools/999/ledger", f"/jobs/{job}/correct?from_spool=5", "/jobs/424242/correct"):
        response = await stack.client.get(path)
        assert response.status_code == 404, path
        assert "Layerwise" in response.text  # a page that says so, not a bare error
    for path in (f"/jobs/{job}/correct/preview?from_spool=3&pick_spool_id=x", "/spools/3/ledger?offset=-1",
                 f"/jobs/{job}/correct/preview"):
        assert (await stack.client.get(path)).status_code == 400, path


async def test_page_actions_need_the_csrf_token_and_explain_refusals(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {}, range(0, 2), filament=1)
    form = {"job_id": str(job), "filament_index": "1", "tray": "0"}
    async with httpx.AsyncClient(base_url=stack.client.base_url) as browser:  # no CSRF pair, like a browser
        await _page_actions(stack, browser, job, ids, form)


async def _page_actions(stack: Stack, browser: httpx.AsyncClient, job: int, ids: list[int],
                        form: dict[str, str]) -> None:
    assert (await browser.post("/attention/tray", data=form)).status_code == 403
    token = await _token(browser)
    headers = {"X-CSRF-Token": token}
    refused = await browser.post("/attention/tray", data={**form, "tray": "300"}, headers=headers)
    assert refused.status_code == 200 and "0 to 255" in refused.text  # said in words, nothing swapped away
    garbage = await browser.post("/attention/tray", data={"job_id": "x"}, headers=headers)
    assert garbage.status_code == 400
    for action in ("retry", "confirm"):
        wrong = await browser.post(f"/attention/{action}", data={"job_id": str(job), "state": "waiting_tray",
                                                                 "filament_index": "1"}, headers=headers)
        assert wrong.status_code == 200 and "does not apply" in wrong.text
    incomplete = await browser.post("/attention/repoint", data={"job_id": str(job)}, headers=headers)
    assert incomplete.status_code == 200 and "incomplete" in incomplete.text
    done = await browser.post("/attention/tray", data=form, headers=headers)
    assert done.status_code == 200 and "layerwise:changed" in done.headers["HX-Trigger"]
    assert "2 bills released" in done.headers["HX-Trigger"]
    await until(lambda: states(stack, ids) == {DELIVERED})
    again = await browser.post("/attention/tray", data=form, headers=headers)
    assert "No bills match" in again.text


async def test_correction_from_the_page_needs_the_token_and_is_written_once(stack: Stack) -> None:
    job = new_job(stack)
    ids = bill(stack, job, {0: 0}, range(0, 2))
    await until(lambda: states(stack, ids) == {DELIVERED})
    async with httpx.AsyncClient(base_url=stack.client.base_url) as browser:
        await _correct(browser, job)
    log = (await stack.client.get("/api/v1/spools/4/ledger")).json()["items"]
    assert [i["kind"] for i in log] == ["charge"]


async def _correct(browser: httpx.AsyncClient, job: int) -> None:
    form = {"from_spool": "3", "to_spool": "4"}
    assert (await browser.post(f"/jobs/{job}/correct", data=form)).status_code == 403
    headers = {"X-CSRF-Token": await _token(browser, f"/jobs/{job}")}
    done = await browser.post(f"/jobs/{job}/correct", data=form, headers=headers)
    assert done.status_code == 200 and 'data-done="correction"' in done.text
    twice = await browser.post(f"/jobs/{job}/correct", data=form, headers=headers)
    assert "has no usage on spool #3 to move" in twice.text
