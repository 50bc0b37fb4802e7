"""deploy/layerwise.service passes systemd's own checks (systemd-analyze; nothing is booted)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "layerwise.service"
INSTALLED = "/opt/layerwise/bin/layerwise"


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (bash .ci/run does)")
    return path


def test_unit_verifies(systemd_analyze: str, tmp_path: Path) -> None:
    unit = UNIT
    if not Path(INSTALLED).exists():
        # `verify` insists that ExecStart's program exists: point it at this environment's layerwise.
        here = Path(sys.executable).parent / "layerwise"
        assert here.exists(), f"no {INSTALLED} and no {here}: install Layerwise first"
        unit = tmp_path / UNIT.name
        unit.write_text(UNIT.read_text("utf-8").replace(INSTALLED, str(here)), "utf-8")
    result = subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layerwise.service" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_unit_is_hardened(systemd_analyze: str) -> None:
    result = subprocess.run([systemd_analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=120)
    exposure = re.search(r"Overall exposure level for layerwise\.service: ([0-9.]+)", result.stdout)
    assert exposure, result.stdout + result.stderr
    # 0 is locked down, 10 is unprotected; systemd calls below 2 "OK".
    assert float(exposure.group(1)) < 2.0, result.stdout


def test_unit_runs_layerwise_under_its_own_user_with_state_in_var_lib() -> None:
    text = UNIT.read_text("utf-8")
    for line in ("User=layerwise", "StateDirectory=layerwise", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert "--data-dir /var/lib/layerwise" in text
