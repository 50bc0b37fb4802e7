"""Which indexer runs: `vectorised=False` never touches numpy's, `True` and the default use it, and loading
numpy asks OpenBLAS for one thread only when numpy is not loaded yet (issue 16: mutants of the scanner's
set-up that gave the same figures by running the other engine)."""

from __future__ import annotations

import os
import subprocess
import sys

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


def _child(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return out.stdout.strip()


def test_numpy_loaded_by_the_analysis_asks_openblas_for_one_thread() -> None:
    code = ("import os, sys; from server.analysis.scanner import vector_module; "
            "loaded = 'numpy' in sys.modules; vector_module(); "
            "print(loaded, 'numpy' in sys.modules, os.environ.get('OPENBLAS_NUM_THREADS'))")
    assert _child(code) == "False True 1"


def test_numpy_already_loaded_leaves_the_environment_alone() -> None:
    # Too late to matter for this process, and children would inherit it.
    code = ("import os, numpy; from server.analysis.scanner import vector_module; vector_module(); "
            "print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    assert _child(code) == "None"
