"""``/metrics`` behind access control: refused without credentials, open to a read-only token."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from server.auth import store
from tests.web.test_auth import PASSWORD, SiteRunner


async def test_metrics_need_a_token_once_a_password_exists(tmp_path: Path) -> None:
    async with SiteRunner(tmp_path) as site:
        store.set_password(site.runtime.db, "ann", PASSWORD)
        refused = await site.other.get("/metrics")
        assert refused.status_code == 401  # a scraper is told, not sent to the sign-in page
        assert refused.headers["www-authenticate"].startswith("Bearer")
        reader = store.create_token(site.runtime.db, "prometheus", read_only=True)
        answer = await site.other.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        names = {family.name for family in text_string_to_metric_families(answer.text)}
        assert {"layerwise_printers_connected", "layerwise_delivery_latency_seconds"} <= names
        assert reader not in answer.text


async def test_metrics_open_when_access_control_is_off(tmp_path: Path) -> None:
    async with SiteRunner(tmp_path, demo=True) as site:
        assert (await site.other.get("/metrics")).status_code == 200


async def test_reports_and_metrics_behind_sign_in_and_the_host_check(tmp_path: Path) -> None:
    async with SiteRunner(tmp_path) as site:
        store.set_password(site.runtime.db, "ann", PASSWORD)
        page = await site.other.get("/reports")
        assert page.status_code in (302, 303) and page.headers["location"].startswith("/login")  # a person signs in
        assert (await site.other.get("/api/v1/reports/usage")).status_code == 401
        reader = store.create_token(site.runtime.db, "reports", read_only=True)
        bearer = {"Authorization": f"Bearer {reader}"}
        csv = await site.other.get("/api/v1/reports/usage?format=csv", headers=bearer)
        assert csv.status_code == 200 and csv.text.startswith("period,")
        for path in ("/metrics", "/reports", "/api/v1/reports/usage"):  # a rebound name is refused first
            refused = await site.other.get(path, headers={**bearer, "host": "evil.example"})
            assert refused.status_code == 400, path
