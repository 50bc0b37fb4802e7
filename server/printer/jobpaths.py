"""Where on the printer's storage a job's file may be, from what the printer reports. Pure.

Printers name the job file in many ways (``project_file.url``, ``gcode_file``, ``subtask_name``):

* ``file:///sdcard/x.gcode.3mf``, ``file:///mnt/sdcard/x.gcode.3mf``: the SD card, which is the FTPS root;
* ``ftp:///x.gcode.3mf`` and ``ftp://x.gcode.3mf`` (the name in the host position);
* ``/media/usb0/...``: a USB stick (tried at the FTPS root too, under ``/usb0`` and as given);
* ``/cache/...``: files sent from the cloud or Bambu Handy;
* ``/data/Metadata/plate_1.gcode`` (H2D and others printing locally): the printer unpacked a cached
  project; only ``subtask_name`` says which, so it is searched for;
* percent-encoded names (``W%C3%BCrfel.3mf``).

``http(s)`` URLs (cloud prints) are not on the printer: ``is_http_url`` tells the caller to download them.
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlsplit

# Folders where the FTPS server may keep a job file, in the order they are searched.
SEARCH_DIRS = ("/", "/cache", "/sdcard", "/sdcard/cache")
JOB_SUFFIXES = (".gcode.3mf", ".3mf")
_SD_PREFIXES = ("/mnt/sdcard", "/sdcard")
_USB_PREFIXES = ("/media/usb0", "/mnt/usb0", "/usb0")


def is_http_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url.strip()).scheme.lower() in ("http", "https")


def is_unpacked_project(path: str) -> bool:
    """``/data/Metadata/plate_1.gcode``: a project the printer unpacked; the name is in ``subtask_name``."""
    return path.startswith(("/data/", "Metadata/")) or "/Metadata/" in path


def url_path(url: str) -> str | None:
    """The absolute path a ``file:``/``ftp:`` URL or bare path names, percent-decoded; None for http(s)."""
    url = url.strip()
    if not url or is_http_url(url):
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("file", "ftp", "ftps"):
        # ``ftp://x.gcode.3mf`` puts the file name where the host belongs.
        path = f"/{parts.netloc}{parts.path}" if parts.netloc else parts.path
    elif scheme:
        return None
    else:
        path = url
    path = unquote(path)
    if not path.startswith("/"):
        path = "/" + path
    return posixpath.normpath(path).replace("//", "/")


def _strip_prefix(path: str, prefixes: tuple[str, ...]) -> str | None:
    for prefix in prefixes:
        if path == prefix:
            return "/"
        if path.startswith(prefix + "/"):
            return path[len(prefix):]
    return None


def _path_forms(path: str) -> list[str]:
    """The FTPS paths an on-printer path may appear under."""
    forms: list[str] = []
    sd_relative = _strip_prefix(path, _SD_PREFIXES)
    if sd_relative is not None:
        forms.append(sd_relative)
    usb_relative = _strip_prefix(path, _USB_PREFIXES)
    if usb_relative is not None:
        forms += [f"/usb0{usb_relative}", usb_relative]
    forms.append(path)
    return forms


def _is_file_path(path: str) -> bool:
    name = posixpath.basename(path)
    return bool(name) and "." in name and not is_unpacked_project(path)


def name_candidates(name: str) -> list[str]:
    """File names a job called ``name`` (a subtask name or file name) may be stored under."""
    name = posixpath.basename(unquote(name.strip()))
    if not name:
        return []
    lowered = name.lower()
    if lowered.endswith(JOB_SUFFIXES) or lowered.endswith(".gcode"):
        stem = name[: -len(".gcode.3mf")] if lowered.endswith(".gcode.3mf") else None
        names = [name]
        if stem is None and lowered.endswith(".3mf"):
            names.append(name[: -len(".3mf")] + ".gcode.3mf")
        elif stem is not None:
            names.append(stem + ".3mf")
        return names
    return [name + suffix for suffix in JOB_SUFFIXES]


def candidate_paths(url: str | None, subtask_name: str | None, gcode_file: str | None) -> list[str]:
    """FTPS paths to try, most specific first, without duplicates.

    Exact paths from the URL and ``gcode_file`` come first; then the names they and ``subtask_name``
    suggest, in each of ``SEARCH_DIRS``.
    """
    exact: list[str] = []
    names: list[str] = []
    for source in (url, gcode_file):
        if not source:
            continue
        path = url_path(source)
        if path is None:
            continue
        if _is_file_path(path):
            exact += _path_forms(path)
            names += name_candidates(posixpath.basename(path))
    if subtask_name:
        names += name_candidates(subtask_name)
    searched = [posixpath.join(folder, name) for name in _unique(names) for folder in SEARCH_DIRS]
    return _unique(exact + searched)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
