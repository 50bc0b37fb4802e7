"""Usage reports and the job page's usage summary in the phone app (Chromium): the server-drawn chart shows
under the strict Content-Security-Policy, the pickers reload the report, the CSV downloads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from test_ledger_browser import bill, entry_states, wait_for
from web_stack import WebStack

from server.billing.settlement import DELIVERED

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """Its own stack: the bills written here never meet the other browser tests."""
    running = WebStack(tmp_path_factory.mktemp("reports-stack")).start()
    yield running
    running.stop()


def test_report_chart_pickers_csv_and_job_summary(page: Page, stack: WebStack, artifacts: Path) -> None:
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
    job, *ids = bill(stack, "Bracket.gcode.3mf", {0: 0}, 0, range(0, 4), 100.0)  # tray A1: spool 1, 4 x 0.3 g
    wait_for(lambda: entry_states(stack, ids) == {DELIVERED})

    page.goto("/reports?group=spool&period=day")
    expect(page.locator(".report-chart svg rect.delivered")).to_have_count(1)
    expect(page.locator('.report-table tr[data-key="1"]')).to_contain_text("1.20")
    page.screenshot(path=artifacts / "reports-phone.png", full_page=True)
    page.select_option('select[name="group"]', "material")
    page.select_option('select[name="period"]', "month")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"group=material&period=month"))
    expect(page.locator(".report-chart svg rect.delivered")).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text("utf-8")
    assert text.startswith("period,material,label,grams_delivered")

    page.goto(f"/jobs/{job}")
    summary = page.locator(".job-usage")
    expect(summary.locator('tr[data-spool="1"]')).to_contain_text("1.20")
    page.screenshot(path=artifacts / "job-usage-phone.png", full_page=True)
    assert not [text for text in refused if "Content Security Policy" in text], refused
