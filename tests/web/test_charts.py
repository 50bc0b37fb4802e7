"""The SVG bar chart's geometry, hand-computed."""

from __future__ import annotations

from server.web.charts import bar_chart, nice_top


def test_nice_top() -> None:
    assert [nice_top(v) for v in (0, 0.3, 1, 1.2, 3, 7, 42, 100, 101)] == [1, 0.5, 1, 2, 5, 10, 50, 100, 200]


def test_bars_stack_pending_on_delivered() -> None:
    chart = bar_chart([("Mar 2", 30.0, 10.0), ("Mar 9", 0.0, 0.0), ("Mar 16", 100.0, 0.0)])
    # top line 100 g; the plot is 180 - 24 - 16 = 140 units high, so 1 g = 1.4; three slots of 133.33, bars of 93.33
    assert (chart.top, chart.axis_y) == (100, 156)
    first, empty, last = chart.bars
    assert (first.x, first.width) == (20, 93.33)
    assert (first.delivered_y, first.delivered_h, first.pending_y, first.pending_h) == (114, 42, 100, 14)
    assert first.title == "Mar 2: 30.0 g + 10.0 g pending"
    assert (empty.delivered_h, empty.pending_h, empty.delivered_y) == (0, 0, 156)
    assert (last.x, last.delivered_y, last.delivered_h) == (286.67, 16, 140)
    assert all(bar.labelled for bar in chart.bars)


def test_labels_thin_out_on_many_bars() -> None:
    chart = bar_chart([(str(day), 1.0, 0.0) for day in range(31)])  # every 6th of 31: 0, 6, ..., 30
    assert [bar.label for bar in chart.bars if bar.labelled] == ["0", "6", "12", "18", "24", "30"]
    # a slot is 400 / 31 = 12.9 wide: the first and last labels' centres move inside the chart
    assert (chart.bars[0].label_x, chart.bars[15].label_x, chart.bars[30].label_x) == (20, 200, 380)


def test_no_data_draws_an_empty_chart() -> None:
    assert bar_chart([]).bars == [] and bar_chart([]).top == 1
