"""Dependencies inside server/ point one way (docs/CONTRIBUTING.md, "Layout").

web → jobs / slots → billing → spoolman / db; printer and analysis at the bottom. A package may import
its own modules and any package of a lower layer, never one of a higher layer; jobs and slots are
siblings and do not import each other. Every import counts, lazy ones and ``TYPE_CHECKING`` ones too.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "server"

# Layer of each package or top-level module of server/ (its first name under server.).
LAYERS: dict[str, int] = {
    # The bottom: adapters and pure cores that know nothing of jobs or bills.
    "analysis": 0, "printer": 0, "db": 0, "spoolman": 0, "config": 0, "logs": 0, "events": 0,
    "datadir": 0, "supervise": 0, "assets": 0, "retry": 0, "https": 0, "instruments": 0, "colours": 0,
    "metrics": 0,
    "billing": 1, "auth": 1,
    "jobs": 2, "slots": 2, "notify": 2, "forecast": 2,
    # Wiring: builds the service from the parts.
    "runtime": 3, "check": 3,
    # Entry points and the web app.
    "web": 4, "home_assistant": 4, "listen": 4, "sim": 4, "cli": 4, "__main__": 4, "__init__": 4,
}
# Layers whose packages may import one another (the bottom's adapters, the top's entry points).
OPEN_LAYERS = {0, 4}


def _unit(path: Path) -> str:
    return path.relative_to(SERVER).with_suffix("").parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "server" else [f"server.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name == "server" or name.startswith("server.")]
    return found


def upward_imports() -> list[str]:
    wrong = []
    for path in sorted(SERVER.rglob("*.py")):
        unit = _unit(path)
        layer = LAYERS[unit]
        for line, name in _imports(path):
            target = name.split(".")[1] if "." in name else "__init__"
            if target == unit or target not in LAYERS:
                continue
            other = LAYERS[target]
            if other > layer or (other == layer and layer not in OPEN_LAYERS):
                wrong.append(f"{path.relative_to(SERVER.parent)}:{line}: {unit} (layer {layer}) imports {name} "
                             f"(layer {other})")
    return wrong


def test_every_package_has_a_layer() -> None:
    units = {_unit(path) for path in SERVER.rglob("*.py")}
    assert units <= set(LAYERS), f"add to LAYERS: {sorted(units - set(LAYERS))}"


def test_no_import_points_up() -> None:
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The AST walk finds the kinds of import the rule is about (so an empty answer means something)."""
    source = tmp_path / "m.py"
    source.write_text("from server import web\nimport server.jobs.tracker\n"
                      "def f():\n    from server.slots import rfid\n")
    assert [name for _, name in _imports(source)] == ["server.web", "server.jobs.tracker", "server.slots"]


# Small modules with one job (issue 11): none over this many lines, the simulator aside (it plays a
# whole printer). A module that outgrows it is split by what its parts do, not cut anywhere.
MAX_MODULE_LINES = 400


def test_no_module_outside_the_simulator_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(SERVER)): lines
        for path in SERVER.rglob("*.py")
        if _unit(path) != "sim" and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long
