"""How a member's name reads in a refusal (issue 16): a printable name of up to 80 characters as it is, any
other quoted (control characters escaped) and cut to 80 characters plus "...". The name here is the
plate's thumbnail, which the archive's own model_settings.config names: any member, hostile names too."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from server.analysis import UnsafeArchive, plate_thumbnail
from server.analysis.archive import Limits

GCODE = b"T0\nM73 L1\nG1 E1\n"
NOISE = bytes(range(256))  # does not deflate: the thumbnail's size cap trips


def _refusal(tmp_path: Path, name: str) -> str:
    settings = ('<?xml version="1.0" encoding="UTF-8"?><config><plate><metadata key="plater_id" value="1"/>'
                f'<metadata key="thumbnail_file" value="{name.replace(chr(9), "&#9;")}"/></plate></config>')
    path = tmp_path / "t.gcode.3mf"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Metadata/plate_1.gcode", GCODE)
        archive.writestr("Metadata/model_settings.config", settings)
        archive.writestr(name, NOISE)
    with pytest.raises(UnsafeArchive) as caught:
        plate_thumbnail(path, 1, limits=Limits(max_thumbnail_bytes=200))
    return str(caught.value)


P80 = "Metadata/" + "p" * 67 + ".png"  # 80 characters
P81 = "Metadata/" + "p" * 68 + ".png"
T80 = "Metadata/\t" + "p" * 66 + ".png"  # a tab: not printable
T81 = "Metadata/\t" + "p" * 67 + ".png"


@pytest.mark.parametrize(("name", "shown"), [
    (P80, P80),
    (P81, "'Metadata/" + "p" * 68 + ".pn...'"),
    (T80, "'Metadata/\\t" + "p" * 66 + ".png'"),
    (T81, "'Metadata/\\t" + "p" * 67 + ".pn...'"),
], ids=["printable-80", "printable-81", "tab-80", "tab-81"])
def test_a_refused_members_name_is_shown_whole_or_quoted_and_cut(tmp_path: Path, name: str, shown: str) -> None:
    assert len(name) in (80, 81)
    assert re.fullmatch(re.escape(shown) + r" inflates to 256 bytes \(cap 200\)", _refusal(tmp_path, name))
