"""Issue 12 item 7: an untrusted printer certificate blames the ca_file only when one is configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from printer_links import ACCESS_CODE, config_for

from server.printer.errors import PrinterTLSError
from server.printer.ftps import download
from server.sim.printer import VirtualPrinter


@pytest.fixture
async def vp(tmp_path: Path) -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter(access_code=ACCESS_CODE, cert_dir=tmp_path / "certs") as printer:
        yield printer


async def test_without_a_ca_file_the_message_does_not_blame_one(vp: VirtualPrinter, tmp_path: Path) -> None:
    with pytest.raises(PrinterTLSError) as err:
        await download(config_for(vp, ca_file=None), "/cache/a", tmp_path / "x", pins=None, attempts=1)
    text = str(err.value)
    assert "certificate not trusted" in text and "configured ca_file" not in text
    assert "no ca_file is configured" in text


async def test_with_another_ca_file_the_message_names_it(vp: VirtualPrinter, tmp_path: Path) -> None:
    async with VirtualPrinter(access_code=ACCESS_CODE, cert_dir=tmp_path / "other") as other:
        wrong = other.ca_cert_path
    with pytest.raises(PrinterTLSError) as err:
        await download(config_for(vp, ca_file=wrong), "/cache/a", tmp_path / "x", pins=None, attempts=1)
    assert f"nor by the configured ca_file {wrong}" in str(err.value)
