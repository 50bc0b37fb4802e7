"""Issue 12 item 1: the README's run command installs word for word with Debian's own python3.

The command is read from README.md, so the two cannot drift: its venv and pip steps run as written
(``python3`` is Debian's ``/usr/bin/python3``, ``.venv`` a fresh temporary directory, ``.`` a copy of the
repository's tracked files, as a fresh clone has them); the ``apt-get`` step is the machine's business and is
skipped. The installed ``layerwise`` then answers ``--help`` and analyses a print file.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = Path("/usr/bin/python3")
FIXTURE = ROOT / "tests" / "fixtures" / "print-files" / "p1s-2colour-bs2.05.gcode.3mf"


def readme_run_command() -> list[list[str]]:
    """The README's one-line run command, split at ``&&`` into argument lists."""
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if "-m venv" in line and "&&" in line]
    assert len(lines) == 1, lines
    return [shlex.split(step) for step in lines[0].split("&&")]


def test_the_readme_command_is_venv_then_pip_then_layerwise() -> None:
    steps = [step for step in readme_run_command() if "apt-get" not in step]
    assert [step[:3] for step in steps[:2]] == [["python3", "-m", "venv"], [f"{steps[0][3]}/bin/pip", "install", "."]]
    assert steps[-1][0] == f"{steps[0][3]}/bin/layerwise"


def _copy_tracked_files(destination: Path) -> None:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_PYTHON.exists(), reason="needs Debian's /usr/bin/python3")
def test_the_readme_command_installs_with_debians_python(tmp_path: Path) -> None:
    clone, venv = tmp_path / "layerwise", tmp_path / "venv"
    _copy_tracked_files(clone)
    steps = [step for step in readme_run_command() if "apt-get" not in step]
    venv_name = steps[0][3]

    def local(arg: str) -> str:
        if arg == "python3":
            return str(DEBIAN_PYTHON)
        if arg == venv_name or arg.startswith(venv_name + "/"):
            return str(venv) + arg[len(venv_name):]
        return arg

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    for step in steps[:-1]:  # the last step runs the service: checked below with --help and analyze
        done = subprocess.run([local(arg) for arg in step], cwd=clone, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-2000:])
    layerwise = local(steps[-1][0])
    assert Path(layerwise).is_file()
    help_text = subprocess.run([layerwise, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                               check=True, timeout=120).stdout
    assert all(command in help_text for command in ("serve", "demo", "simulate", "check", "analyze"))
    analysed = subprocess.run([layerwise, "analyze", str(FIXTURE)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
    assert analysed.returncode == 0, analysed.stderr
    assert "100 layers" in analysed.stdout
