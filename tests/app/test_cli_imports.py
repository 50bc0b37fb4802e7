"""The command line imports only what the command run needs: `layerwise --help` no subcommand's module,
`layerwise analyze` neither the web app nor the simulator. A behaviour test (which modules are loaded),
not a timing one: the time is in bench.analysis (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
P1S = ROOT / "tests" / "fixtures" / "print-files" / "p1s-2colour-bs2.05.gcode.3mf"
SERVER_SIDE = ["litestar", "sqlmodel", "sqlalchemy", "aiomqtt", "httpx", "uvicorn", "server.web", "server.sim"]

PROBE = """
import contextlib, io, json, sys
from server.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_by(*argv: str) -> set[str]:
    """Top-level packages and server.* subpackages a fresh interpreter holds after `layerwise ARGV`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["code"] == 0, result["code"]
    names: set[str] = set()
    for module in result["modules"]:
        parts = module.split(".")
        names.add(parts[0])
        if parts[0] == "server" and len(parts) > 1:
            names.add(".".join(parts[:2]))
    return names


def test_help_imports_no_subcommand() -> None:
    loaded = loaded_by("--help")
    assert loaded.isdisjoint([*SERVER_SIDE, "numpy", "pydantic", "server.analysis", "server.config"]), loaded


@pytest.mark.parametrize("argv", [("analyze", "--help"), ("analyze", str(P1S))])
def test_analyze_imports_neither_the_web_app_nor_the_simulator(argv: tuple[str, ...]) -> None:
    loaded = loaded_by(*argv)
    assert "server.analysis" in loaded
    assert loaded.isdisjoint([*SERVER_SIDE, "pydantic", "server.config", "server.tracking"]), loaded


@pytest.mark.parametrize("argv", [("analyze", "--help"), ("analyze", str(P1S))])
def test_analyze_leaves_numpy_unloaded_for_a_small_file(argv: tuple[str, ...]) -> None:
    """numpy's import costs more than it saves below VECTOR_FROM_BYTES of gcode (0.76 MB here)."""
    assert "numpy" not in loaded_by(*argv)


def test_analyze_summary_leaves_out_what_it_does_not_use() -> None:
    """The summary shows no MD5 and the records are no dataclasses: hashlib (OpenSSL), dataclasses and
    inspect stay unloaded (together ~10-15 ms of a ~0.1 s run, docs/benchmarks.md); the usual command line
    is read without argparse (and gettext, locale) and the records need no typing (~6 ms together); the
    archive is read by server.analysis.zipreader, not zipfile, whose import brings pathlib (urllib.parse,
    ipaddress), shutil, bz2 and lzma (~8 ms). (json and contextlib are not checked: the probe imports them.)"""
    loaded = loaded_by("analyze", str(P1S))
    unused = {"hashlib", "dataclasses", "inspect", "argparse", "gettext", "locale", "typing",
              "zipfile", "pathlib", "urllib", "ipaddress", "shutil", "bz2", "lzma"}
    assert loaded.isdisjoint(unused - at_start()), loaded


def at_start() -> set[str]:
    """What the interpreter loads before any command (a site's .pth file may import typing, for one)."""
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(json.loads(out))
