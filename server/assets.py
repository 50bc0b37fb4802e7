"""Where the templates, static files and web manifest are.

An installed wheel carries them inside the package (``server/_assets``); a source
checkout or an editable install finds them at the top of the repository.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def asset_root() -> Path:
    bundled = _PACKAGE / "_assets"
    if (bundled / "templates").is_dir():
        return bundled
    return _PACKAGE.parent


def templates_dir() -> Path:
    return asset_root() / "templates"


def static_dir() -> Path:
    return asset_root() / "static"


def manifest_path() -> Path:
    return asset_root() / "manifest.webmanifest"


def versioned_files(root: Path | None = None) -> list[Path]:
    """Every file whose change must reach browsers past their caches and the service worker's: all of
    ``static/`` that pages load (scripts, styles, icons, vendored libraries), the service worker and the
    manifest."""
    base = root or asset_root()
    shipped = sorted(p for p in (base / "static").rglob("*") if p.is_file() and p.suffix in (".js", ".css", ".png"))
    return [*shipped, base / "templates" / "sw.js", base / "manifest.webmanifest"]


def fingerprint(files: Iterable[Path], salt: str) -> str:
    """A short hash of the files' names and bytes (and ``salt``, the version): changes when any of them does."""
    digest = hashlib.sha256(salt.encode())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]
