"""A small bar chart drawn on the server as SVG shapes (no script: the Content-Security-Policy forbids inline
ones, and a chart library would be most of the page's weight). Pure: values in, rectangles out."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 400, 180  # the viewBox; the SVG scales to its container (a phone is about 370 px wide)
TOP, BOTTOM = 16, 24  # room for the top value and the axis labels
LABEL_HALF = 20  # half an axis label's width ("Nov 05" at 11 px)
MAX_LABELS = 6  # axis labels that fit side by side; the bars between go unlabelled (their title names them)


@dataclass(frozen=True)
class Bar:
    label: str
    x: float
    width: float
    # Stacked from the axis up: delivered below, pending above.
    delivered_y: float
    delivered_h: float
    pending_y: float
    pending_h: float
    title: str  # the figures, for a tooltip and screen readers
    labelled: bool  # its label is drawn under the axis
    label_x: float  # the label's centre, kept inside the chart at both ends


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    axis_y: float
    top: float  # the value at the chart's top line
    bars: list[Bar]


def nice_top(value: float) -> float:
    """A round value at or above ``value`` for the chart's top line (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def bar_chart(points: list[tuple[str, float, float]], unit: str = "g") -> Chart:
    """``points``: (label, delivered, pending) per bar, left to right."""
    axis = HEIGHT - BOTTOM
    top = nice_top(max((d + p for _, d, p in points), default=0.0))
    scale = (axis - TOP) / top
    slot = WIDTH / max(1, len(points))
    width = max(1.0, slot * 0.7)
    bars = []
    step = math.ceil(len(points) / MAX_LABELS) if points else 1
    for index, (label, delivered, pending) in enumerate(points):
        d_h, p_h = delivered * scale, pending * scale
        title = f"{label}: {delivered:.1f} {unit}" + (f" + {pending:.1f} {unit} pending" if pending else "")
        x = index * slot + (slot - width) / 2
        label_x = min(max(x + width / 2, LABEL_HALF), WIDTH - LABEL_HALF)
        bars.append(Bar(label, round(x, 2), round(width, 2), round(axis - d_h, 2), round(d_h, 2),
                        round(axis - d_h - p_h, 2), round(p_h, 2), title, index % step == 0, round(label_x, 2)))
    return Chart(WIDTH, HEIGHT, axis, top, bars)
