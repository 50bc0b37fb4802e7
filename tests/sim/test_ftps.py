"""The virtual printer's implicit FTPS: login, PROT P, session reuse on data connections, downloads."""

from __future__ import annotations

import asyncio
import ftplib
import socket
import ssl

import pytest
from printer_clients import ACCESS_CODE, ImplicitFtps, client_context, ftps_login

from server.sim.printer import VirtualPrinter
from server.sim.printer.ftps import SESSION_REUSE_REQUIRED


def _download(printer: VirtualPrinter, path: str) -> bytes:
    ftp = ftps_login(printer)
    try:
        chunks = bytearray()
        ftp.retrbinary(f"RETR {path}", chunks.extend)
        return bytes(chunks)
    finally:
        ftp.quit()


async def test_downloads_job_file_from_cache_and_root(printer: VirtualPrinter) -> None:
    job = bytes(range(256)) * 400
    printer.add_file("/cache/cube.gcode.3mf", job)
    printer.add_file("/root-job.gcode.3mf", b"at the root")

    assert await asyncio.to_thread(_download, printer, "/cache/cube.gcode.3mf") == job
    assert await asyncio.to_thread(_download, printer, "/root-job.gcode.3mf") == b"at the root"


async def test_lists_cache_folder(printer: VirtualPrinter) -> None:
    printer.add_file("/cache/a.gcode.3mf", b"a")

    def names() -> list[str]:
        ftp = ftps_login(printer)
        try:
            return ftp.nlst("/cache")
        finally:
            ftp.quit()

    assert "a.gcode.3mf" in await asyncio.to_thread(names)


async def test_tls_starts_at_first_byte_with_serial_as_cn(printer: VirtualPrinter) -> None:
    def handshake() -> tuple[str, str]:
        with socket.create_connection((printer.host, printer.ftps_port), 5) as raw, \
                client_context(printer).wrap_socket(raw) as tls:
            subject = dict(item[0] for item in tls.getpeercert()["subject"])
            return subject["commonName"], tls.recv(100).decode()

    common_name, banner = await asyncio.to_thread(handshake)
    assert common_name == printer.serial
    assert banner.startswith("220")


async def test_wrong_access_code_is_refused(printer: VirtualPrinter) -> None:
    with pytest.raises(ftplib.error_perm, match="530"):
        await asyncio.to_thread(ftps_login, printer, "00000000")


async def test_data_connection_without_session_reuse_is_refused(printer: VirtualPrinter) -> None:
    printer.add_file("/cache/cube.gcode.3mf", b"x" * 50_000)

    def fresh_session_download() -> bytes:
        ftp = ftps_login(printer)
        ftp.reuse_session = False
        chunks = bytearray()
        try:
            ftp.retrbinary("RETR /cache/cube.gcode.3mf", chunks.extend)
        finally:
            ftp.close()
        return bytes(chunks)

    with pytest.raises((ftplib.error_perm, ssl.SSLError, OSError)) as refused:
        await asyncio.to_thread(fresh_session_download)
    if isinstance(refused.value, ftplib.error_perm):
        assert str(refused.value) == SESSION_REUSE_REQUIRED


async def test_plain_data_channel_is_refused(printer: VirtualPrinter) -> None:
    def without_prot_p() -> None:
        ftp = ImplicitFtps(context=client_context(printer))
        ftp.connect(printer.host, printer.ftps_port)
        ftp.login("bblp", ACCESS_CODE)
        try:
            ftp.nlst("/")
        finally:
            ftp.close()

    with pytest.raises(ftplib.error_perm, match="550"):
        await asyncio.to_thread(without_prot_p)


async def test_session_reuse_also_over_tls12(printer: VirtualPrinter) -> None:
    printer.add_file("/cache/cube.gcode.3mf", b"y" * 70_000)

    def download(reuse: bool) -> bytes:
        context = client_context(printer)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        ftp = ImplicitFtps(context=context)
        ftp.reuse_session = reuse
        ftp.connect(printer.host, printer.ftps_port)
        ftp.login("bblp", ACCESS_CODE)
        ftp.prot_p()
        chunks = bytearray()
        try:
            ftp.retrbinary("RETR /cache/cube.gcode.3mf", chunks.extend)
        finally:
            ftp.close()
        return bytes(chunks)

    assert await asyncio.to_thread(download, True) == b"y" * 70_000
    with pytest.raises(ftplib.error_perm, match="522"):
        await asyncio.to_thread(download, False)
