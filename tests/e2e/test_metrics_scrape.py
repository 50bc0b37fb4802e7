"""A scrape after a billed print shows what the ledger and Spoolman hold."""

from __future__ import annotations

import pytest
from e2e_stack import CUBE_1, StackFactory, analysis_of
from prometheus_client.parser import text_string_to_metric_families

from server.analysis.filament import grams
from tests.billing.ledger_rows import ledger_entries

pytestmark = pytest.mark.slow


async def test_scrape_after_a_billed_print(make_stack: StackFactory) -> None:
    analysis = analysis_of(CUBE_1)
    async with make_stack(("A1",)) as stack:
        await stack.start("p0", CUBE_1, [2])
        await stack.run_to("p0", analysis.layer_count, step=10)
        await stack.finish("p0")
        await stack.wait_delivered()
        answer = await stack.client.get("/metrics")
        assert answer.status_code == 200
        found = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for family in text_string_to_metric_families(answer.text) for s in family.samples}
        bills = ledger_entries(stack.runtime.db)
        spool = stack.rigs["p0"].spools[2]
        assert found[("layerwise_bills", (("printer", "p0"), ("state", "delivered")))] == len(bills)
        assert found[("layerwise_bills_written_total", (("printer", "p0"),))] == len(bills)
        assert found[("layerwise_bills_delivered_total", (("printer", "p0"),))] == len(bills)
        want_g = grams(sum(analysis.totals().values()), 1.75, 1.24)
        got_g = found[("layerwise_spool_grams_billed", (("spool", str(spool)), ("state", "delivered")))]
        assert got_g == pytest.approx(want_g, rel=1e-6)
        assert found[("layerwise_printers_connected", ())] == 1
        assert found[("layerwise_printer_reports_total", (("printer", "p0"),))] >= analysis.layer_count // 10
        assert found[("layerwise_delivery_latency_seconds_count", ())] >= 1
