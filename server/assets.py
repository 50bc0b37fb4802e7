"""Where the templates, static files and web manifest are.

An installed wheel carries them inside the package (``server/_assets``); a source
checkout or an editable install finds them at the top of the repository.
"""

from __future__ import annotations

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
