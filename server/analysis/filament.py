"""Filament length <-> mass: the one place Layerwise turns millimetres into grams. Pure.

The order of operations is Spoolman's (``density * length * pi * r**2 / 1000``, as its stand-in in
server/sim/spoolman computes ``used_weight``), so a weight Layerwise predicts for a ``use`` matches the one
Spoolman reports to the last bit.
"""

from __future__ import annotations

import math


def grams(mm: float, diameter_mm: float, density: float) -> float:
    """Grams in ``mm`` of filament of ``diameter_mm``; density in g/cm³ (mm³ / 1000 = cm³)."""
    return density * mm * math.pi * (diameter_mm / 2) ** 2 / 1000


def millimetres(grams: float, diameter_mm: float, density: float) -> float:
    """The length of ``grams`` of filament: the inverse of :func:`grams`."""
    return grams / (density * (math.pi * (diameter_mm / 2) ** 2)) * 1000
