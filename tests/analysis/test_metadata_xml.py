"""The metadata's XML is read by expat directly (metadata._xml, for start-up time), not by ElementTree: what
the parsers use of it (tags, attributes, ``iter``, ``findall``) and what they refuse, with the same message,
must be what ElementTree gives."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from server.analysis.errors import BadMetadata
from server.analysis.metadata import _xml

DOCUMENTS = [
    b'<config><plate><metadata key="index" value="1"/><plate><filament id="2"/></plate></plate><plate/></config>',
    b'<config xmlns="urn:x"><plate><metadata key="index" value="1"/></plate></config>',
    b'<config xmlns:a="urn:a"><plate a:key="1"><metadata a:key="index" key="index" value="1"/></plate></config>',
    b'<!DOCTYPE c [<!ENTITY e "1">]><config><plate><metadata key="a&amp;b" value="&e;&#65;"/></plate></config>',
    b'<config><!-- c --><?pi x?><plate><![CDATA[x]]>text</plate></config>',
    b"<a>" * 5000 + b"</a>" * 5000,  # deep: no recursion either way
]
REFUSED = [
    b"",
    b"<a>",
    b"<a></a><b/>",
    b"<config><plate>&foo;</plate></config>",
    b'<!DOCTYPE c SYSTEM "x.dtd"><config><plate>&foo;</plate></config>',  # ElementTree's own message
    b'<!DOCTYPE c [<!ENTITY % p "x">]><config>&amp;&bar;</config>',
    b'<?xml version="1.0" encoding="utf-16"?><config/>',
]


def shape(root: object, tag: str) -> list[tuple[str, dict[str, str], list[str]]]:
    return [(e.tag, dict(e.attrib), [c.tag for c in e.findall(tag)]) for e in root.iter(tag)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", DOCUMENTS)
def test_elements_as_elementtree_reads_them(data: bytes) -> None:
    ours, theirs = _xml(data, "x.config"), ET.fromstring(data)
    for tag in {e.tag for e in theirs.iter()}:
        assert shape(ours, tag) == shape(theirs, tag)
        assert [e.get("key", "-") for e in ours.iter(tag)] == [e.get("key", "-") for e in theirs.iter(tag)]


@pytest.mark.parametrize("data", REFUSED)
def test_refused_with_elementtrees_message(data: bytes) -> None:
    with pytest.raises(ET.ParseError) as theirs:
        ET.fromstring(data)
    with pytest.raises(BadMetadata) as ours:
        _xml(data, "x.config")
    assert str(ours.value) == f"x.config is not valid XML: {theirs.value}"
