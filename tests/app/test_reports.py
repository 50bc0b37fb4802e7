"""Usage reports through the API (JSON and CSV) and the page, with bills written by the ledger and
delivered by the real outbox to the Spoolman stand-in."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import pytest

from server.billing.settlement import DELIVERED
from server.billing.usage import UsageRow
from server.jobs import store as job_store
from server.jobs.files import THUMBNAIL_FILE
from server.web.reports import parse_query, to_csv
from tests.app.conftest import Stack
from tests.app.test_ledger_api import bill, new_job, states, until

URL = "/api/v1/reports/usage"


async def billed(stack: Stack) -> None:
    """Spool 3 (tray 0) priced 12.50 for 500 g: 0.025/g. Five layers of 0.03 g delivered; one waits for a spool."""
    stack.spoolman.store.update_spool(3, {"price": 12.5, "initial_weight": 500.0})
    job = new_job(stack)
    ids = bill(stack, job, {0: 0}, range(0, 5))
    await until(lambda: states(stack, ids) == {DELIVERED})
    bill(stack, job, {1: 1}, range(0, 1), filament=1, mm=20.0)  # tray 1 has no spool: waiting, pending
    stack.runtime.spools.invalidate()


async def test_json_per_spool_and_printer(stack: Stack) -> None:
    await billed(stack)
    answer = await stack.client.get(URL, params={"group": "spool", "period": "day"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    today = datetime.now(UTC).date().isoformat()
    assert body["until"] == today and "filament's price" in body["price_rule"]
    rows = {r["key"]: r for r in body["rows"]}
    assert rows["3"]["period"] == today and rows["3"]["label"].startswith("#3 ")
    assert rows["3"]["grams_delivered"] == pytest.approx(0.15) and rows["3"]["grams_pending"] == 0
    assert rows["3"]["cost_delivered"] == pytest.approx(0.15 * 0.025) and rows["3"]["cost_complete"] is True
    assert rows["none"]["grams_pending"] == pytest.approx(0.06) and rows["none"]["cost_complete"] is False
    printers = (await stack.client.get(URL, params={"group": "printer", "period": "month"})).json()["rows"]
    assert [(r["key"], r["grams_delivered"], r["grams_pending"]) for r in printers] == [
        ("Workshop P1S", pytest.approx(0.15), pytest.approx(0.06))]


async def test_csv_download(stack: Stack) -> None:
    await billed(stack)
    answer = await stack.client.get(URL, params={"group": "material", "period": "week", "format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="layerwise-usage-material-week-')
    table = list(csv.reader(io.StringIO(answer.text)))
    assert table[0] == ["period", "material", "label", "grams_delivered", "grams_pending", "cost_delivered",
                        "cost_pending", "cost_complete"]
    material = stack.spoolman.store.get_spool(3)["filament"]["material"]
    assert [row[1] for row in table[1:]] == [material, "none"]
    assert float(table[1][3]) == pytest.approx(0.15) and table[1][7] == "True"


async def test_bad_queries_are_clean_400s(stack: Stack) -> None:
    for params in ({"group": "colour"}, {"period": "year"}, {"since": "yesterday"}, {"format": "xml"},
                   {"since": "2026-03-02", "until": "2026-03-01"}, {"since": "1990-01-01", "until": "2026-01-01"}):
        answer = await stack.client.get(URL, params=params)
        assert answer.status_code == 400, params
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["detail"]


async def test_the_page_draws_a_chart_and_a_table(stack: Stack) -> None:
    await billed(stack)
    page = await stack.client.get("/reports", params={"group": "spool", "period": "week"})
    assert page.status_code == 200
    assert "<svg" in page.text and 'class="delivered"' in page.text
    body = page.text.split("</head>")[1]  # the chart is drawn by the server: no script but the page's JSON data
    assert not re.findall(r"<script(?![^>]*application/json)", body)
    assert 'data-key="3"' in page.text and 'data-key="none"' in page.text
    assert "format=csv" in page.text
    bad = await stack.client.get("/reports", params={"period": "fortnight"})
    assert bad.status_code == 400 and "period must be one of" in bad.text


def test_query_defaults_and_csv_quoting() -> None:
    query = parse_query({}, date(2026, 3, 18))
    assert (query.group, query.period, query.since, query.until) == ("spool", "week", date(2025, 12, 29),
                                                                      date(2026, 3, 18))
    text = to_csv(query, [UsageRow(date(2026, 3, 16), "9", '#9 "Silk", red\nPLA', 1.0),
                          UsageRow(date(2026, 3, 16), "10", "=cmd()", 2.0)])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][2] == '#9 "Silk", red\nPLA' and rows[2][2] == "'=cmd()"
    assert '"#9 ""Silk"", red\nPLA"' in text


async def test_job_page_shows_grams_cost_and_the_plate(stack: Stack) -> None:
    stack.spoolman.store.update_spool(3, {"price": 500.0, "initial_weight": 500.0})  # 1 per gram
    job = new_job(stack)
    ids = bill(stack, job, {0: 0}, range(0, 5))  # 5 x 0.03 g
    await until(lambda: states(stack, ids) == {DELIVERED})
    bill(stack, job, {1: 1}, range(0, 1), filament=1)  # tray 1: no spool, no price
    png = b"\x89PNG\r\n\x1a\n" + b"plate"
    folder = stack.runtime.settings.server.data_dir / "jobs" / str(job)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / THUMBNAIL_FILE).write_bytes(png)
    job_store.save_checkpoint(stack.runtime.db, job, thumbnail=THUMBNAIL_FILE)
    stack.runtime.spools.invalidate()
    page = (await stack.client.get(f"/jobs/{job}")).text
    usage = page.split('class="card job-usage"')[1].split("</section>")[0]
    assert f'src="/api/v1/jobs/{job}/thumbnail.png"' in usage
    assert '<tr data-spool="3">' in usage and ">0.15<" in usage  # grams and cost (1 per gram) both 0.15
    assert "no price" in usage and "0.15 <abbr" in usage  # the total says a spool has no price
    image = await stack.client.get(f"/api/v1/jobs/{job}/thumbnail.png")
    assert image.status_code == 200 and image.content == png
    assert image.headers["content-type"] == "image/png"
    assert image.headers["cache-control"] == "private, max-age=86400"
