import struct
import zlib
from pathlib import Path

from server.assets import asset_root, fingerprint, static_dir, versioned_files
from server.web.icons import ICONS, draw_icon, encode_png
from server.web.pages import PAGE_SIZE, SpoolResults, asset_url, slug, swatch, unit_kind


def test_swatch_takes_the_first_usable_colour_and_never_raw_text() -> None:
    assert swatch("C12E1FFF") == "#c12e1f"  # printers send RRGGBBAA
    assert swatch(None, "00AE42") == "#00ae42"
    assert swatch("red;background:url(x)", None) is None
    assert swatch("", "12") is None


def test_slug_is_safe_for_ids() -> None:
    assert slug("Demo X1C") == "Demo-X1C"
    assert slug("Büro <P1S>") == "B-ro-P1S"
    assert slug("!!!") == "printer"


def test_unit_kind_names() -> None:
    assert unit_kind("ams_ht") == "AMS HT"
    assert unit_kind("ams_lite") == "AMS Lite"
    assert unit_kind("something new") == "something new"


def test_paging_offsets() -> None:
    first = SpoolResults([], total=25, offset=0, query="", filament_id=None)
    assert first.previous_offset is None and first.next_offset == PAGE_SIZE
    last = SpoolResults([], total=25, offset=2 * PAGE_SIZE, query="", filament_id=None)
    assert last.previous_offset == PAGE_SIZE and last.next_offset is None
    single = SpoolResults([], total=PAGE_SIZE, offset=0, query="", filament_id=None)
    assert single.next_offset is None


def test_asset_urls_carry_a_version_for_cache_busting() -> None:
    assert asset_url("/static/app.css").startswith("/static/app.css?v=")
    assert asset_url("/static/icons/icon-192.png") == "/static/icons/icon-192.png"


def _png(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    return width, height, zlib.decompress(idat)


def test_committed_icons_have_their_sizes_and_shapes() -> None:
    for name, (size, maskable) in ICONS.items():
        width, height, raw = _png(static_dir() / "icons" / name)
        assert (width, height) == (size, size)
        corner_alpha = raw[1 + 3]  # first pixel of the first row (after the filter byte), alpha
        # A maskable icon must fill its square (the launcher crops it); the plain one has round corners.
        assert corner_alpha == (255 if maskable else 0)
        assert (static_dir() / "icons" / name).stat().st_size < 20_000


def test_committed_small_icons_match_the_generator() -> None:
    for name, (size, maskable) in ICONS.items():
        if size == 192:
            assert (static_dir() / "icons" / name).read_bytes() == encode_png(draw_icon(size, maskable=maskable))


def test_the_asset_version_covers_every_static_script_and_style(tmp_path: Path) -> None:
    names = {path.relative_to(asset_root()).as_posix() for path in versioned_files()}
    assert {"static/setup.js", "static/scan.js", "static/app.css", "static/vendor/htmx-2.0.11.min.js",
            "templates/sw.js", "manifest.webmanifest"} <= names
    (tmp_path / "static").mkdir()
    (tmp_path / "templates").mkdir()
    for name in ("static/setup.js", "static/app.css", "templates/sw.js", "manifest.webmanifest"):
        (tmp_path / name).write_text("one")
    before = fingerprint(versioned_files(tmp_path), "1.0")
    (tmp_path / "static" / "setup.js").write_text("two")
    assert fingerprint(versioned_files(tmp_path), "1.0") != before
