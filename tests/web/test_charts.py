"""The SVG bar chart's geometry, hand-computed."""

from __future__ import annotations

from server.web.charts import bar_chart, nice_top


def test_nice_top() -> None:
    assert [nice_top(v) for v in (0, 0.3, 1, 1.2, 3, 7, 42, 100, 101)] == [1, 0.5, 1, 2, 5, 10, 50, 100, 200]


def test_bars_stack_pending_on_delivered() -> None:
    chart = bar_chart([("Mar 2", 30.0, 10.0), ("Mar 9", 0.0, 0.0), ("Mar 16", 100.0, 0.0)])
    # top line 100 g; the plot is 200 - 24 - 16 = 160 units high, so 1 g = 1.6; three slots of 200, bars of 140
    assert (chart.top, chart.axis_y) == (100, 176)
    first, empty, last = chart.bars
    assert (first.x, first.width) == (30, 140)
    assert (first.delivered_y, first.delivered_h, first.pending_y, first.pending_h) == (128, 48, 112, 16)
    assert first.title == "Mar 2: 30.0 g + 10.0 g pending"
    assert (empty.delivered_h, empty.pending_h, empty.delivered_y) == (0, 0, 176)
    assert (last.x, last.delivered_y, last.delivered_h) == (430, 16, 160)


def test_no_data_draws_an_empty_chart() -> None:
    assert bar_chart([]).bars == [] and bar_chart([]).top == 1
