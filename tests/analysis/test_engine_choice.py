"""Which indexer runs: `vectorised=False` never touches numpy's, `True` and the default use it (issue 16:
mutants of the scanner's set-up that gave the same figures by running the other engine; numpy's first load
is tested in test_scanner_limits.py)."""

from __future__ import annotations

import pytest

import server.analysis.vector as vector
from server.analysis import analyze_gcode_stream

GCODE = b"T0\nM73 L1\nG1 E1.5\nG1 E1.5\nM73 L2\n"


@pytest.mark.parametrize(("vectorised", "numpy_used"), [(False, False), (True, True), (None, True)])
def test_the_chosen_engine_runs(monkeypatch: pytest.MonkeyPatch, vectorised: bool | None, numpy_used: bool) -> None:
    calls = []

    def counted(buf: bytes, end: int):  # type: ignore[no-untyped-def]
        calls.append(end)
        return index(buf, end)

    index = vector.index
    monkeypatch.setattr(vector, "index", counted)
    usage = analyze_gcode_stream([GCODE], vectorised=vectorised)
    assert [dict(layer) for layer in usage.layers] == [{}, {0: 3.0}, {}]
    assert bool(calls) is numpy_used
