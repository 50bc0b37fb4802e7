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
