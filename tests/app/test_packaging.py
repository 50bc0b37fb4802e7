"""The wheel carries the templates, static files and manifest, and an installed package finds them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_bundles_assets_and_finds_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("layerwise-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert "server/_assets/templates/base.html" in names
    assert "server/_assets/manifest.webmanifest" in names
    assert any(n.startswith("server/_assets/static/vendor/htmx-") for n in names)
    assert "server/printer/certs/bambu.cert" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "layerwise = server.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    # Run from the unpacked wheel, away from the source tree: assets resolve inside the package.
    code = "from server.assets import templates_dir, static_dir; print(templates_dir()); print(static_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    ).stdout.split()
    assert out == [str(tmp_path / "site/server/_assets/templates"), str(tmp_path / "site/server/_assets/static")]
    assert Path(out[0], "base.html").is_file()


def test_help_lists_the_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "server", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("serve", "demo", "simulate", "check", "analyze"):
        assert command in out
