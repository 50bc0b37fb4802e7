"""Implicit FTPS client for fetching a job's file from the printer.

The printer speaks TLS from the first byte on port 990, wants ``PROT P`` and passive mode, and refuses a data
connection that does not resume the control connection's TLS session. ftplib blocks, so every session runs
in a worker thread (``asyncio.to_thread``) and never holds up the event loop.
"""

from __future__ import annotations

import asyncio
import ftplib
import logging
import os
import posixpath
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_fixed,
)

from server.config import PrinterConfig
from server.printer.errors import (
    JobFileNotFound,
    PrinterAuthError,
    PrinterError,
    PrinterTLSError,
    PrinterUnreachable,
)
from server.printer.jobpaths import SEARCH_DIRS, candidate_paths, is_http_url
from server.printer.tls import PinStore, client_ssl_context

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], Any]  # (bytes so far, total bytes or None)
CHUNK = 64 * 1024


class ImplicitFTPS(ftplib.FTP_TLS):
    """``FTP_TLS`` with TLS on connect (implicit) and TLS session reuse on data connections."""

    def connect(self, host: str = "", port: int = 0, timeout: float = -999,
                source_address: tuple[str, int] | None = None) -> str:
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((self.host, self.port), self.timeout, source_address=source_address)
        self.af = raw.family
        try:
            self.sock = self.context.wrap_socket(raw)
        except BaseException:
            raw.close()
            raise
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            try:
                conn = self.context.wrap_socket(conn, session=session)
            except BaseException:
                conn.close()
                raise
        return conn, size


def _translate(cfg: PrinterConfig, exc: BaseException) -> PrinterError:
    """Map socket/ftplib/ssl failures to the adapter's errors with messages fit for a person."""
    if isinstance(exc, PrinterError):
        return exc
    text = str(exc)
    if isinstance(exc, ftplib.error_perm) and text.startswith("530"):
        return PrinterAuthError(f"printer {cfg.name}: the access code was refused (FTPS login: 530)")
    if isinstance(exc, ftplib.error_perm) and text.startswith("550"):
        return JobFileNotFound(f"printer {cfg.name}: {text}")
    if isinstance(exc, ssl.SSLError):
        return PrinterTLSError(f"printer {cfg.name}: TLS failed on FTPS: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return PrinterUnreachable(f"printer {cfg.name}: connection refused at {cfg.host}:{cfg.ftps_port}")
    if isinstance(exc, TimeoutError):
        return PrinterUnreachable(f"printer {cfg.name}: timed out reaching {cfg.host}:{cfg.ftps_port}")
    if isinstance(exc, OSError | EOFError | ftplib.Error):
        return PrinterUnreachable(f"printer {cfg.name}: FTPS failed: {type(exc).__name__}: {text}")
    return PrinterError(f"printer {cfg.name}: FTPS failed: {type(exc).__name__}: {text}")


@contextmanager
def ftps_session(cfg: PrinterConfig, pins: PinStore | None,
                 timeout: float = 15.0) -> Iterator[ImplicitFTPS]:
    """A logged-in, ``PROT P``, passive session (blocking; call from a worker thread)."""
    ftp = ImplicitFTPS(context=client_ssl_context(cfg, pins), timeout=timeout)
    try:
        ftp.connect(cfg.host, cfg.ftps_port)
        ftp.login("bblp", cfg.access_code.get_secret_value())
        ftp.prot_p()
        ftp.set_pasv(True)
        yield ftp
    except (OSError, EOFError, ftplib.Error) as exc:
        raise _translate(cfg, exc) from None
    finally:
        _close_quietly(ftp)


def _close_quietly(ftp: ftplib.FTP) -> None:
    try:
        if ftp.sock is not None:
            ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        pass
    ftp.close()


SIZE_UNKNOWN = -1  # the server refused SIZE for another reason than a missing file


def _remote_size(ftp: ftplib.FTP, path: str) -> int | None:
    """The file's size, None if it does not exist, ``SIZE_UNKNOWN`` if the server will not say."""
    try:
        ftp.voidcmd("TYPE I")
        size = ftp.size(path)
    except ftplib.error_perm as exc:
        return None if str(exc).startswith("550") else SIZE_UNKNOWN
    return SIZE_UNKNOWN if size is None else size


def _retrieve(ftp: ftplib.FTP, remote_path: str, part: Path, report: Callable[[int], None]) -> int:
    """RETR into ``part``; the data socket is closed without a TLS close_notify exchange, which some
    printer firmware never answers (``unwrap`` would hang)."""
    ftp.voidcmd("TYPE I")
    done = 0
    conn = ftp.transfercmd(f"RETR {remote_path}")
    try:
        with part.open("wb") as out:
            while chunk := conn.recv(CHUNK):
                out.write(chunk)
                done += len(chunk)
                report(done)
    finally:
        conn.close()
    ftp.voidresp()
    return done


def _download_blocking(cfg: PrinterConfig, remote_path: str, dest: Path, pins: PinStore | None,
                       report: Callable[[int, int | None], None], attempts: int, retry_delay: float) -> Path:
    part = dest.with_name(f".{dest.name}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)

    def once() -> Path:
        try:
            with ftps_session(cfg, pins) as ftp:
                total = _remote_size(ftp, remote_path)
                if total is None:
                    raise JobFileNotFound(f"printer {cfg.name}: {remote_path} not found")
                if total == 0:  # created but not written yet
                    raise JobFileNotFound(f"printer {cfg.name}: {remote_path} is still empty")
                known = None if total == SIZE_UNKNOWN else total
                got = _retrieve(ftp, remote_path, part, lambda n, t=known: report(n, t))
                after = _remote_size(ftp, remote_path)
            # Without SIZE support the growth check is impossible; RETR's own end is all there is.
            if (got == total or total == SIZE_UNKNOWN) and after == total:
                os.replace(part, dest)
                return dest
            # The printer is still writing the file (a print sent a moment ago): try again.
            raise JobFileNotFound(
                f"printer {cfg.name}: {remote_path} still changing ({total} -> {after} bytes, got {got})")
        finally:
            part.unlink(missing_ok=True)

    def note(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.info("printer %s: %s; retrying (%d/%d)", cfg.name, error, state.attempt_number, attempts)

    # A missing or growing file is waited for at a steady pace: the printer is writing it, not failing.
    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_fixed(retry_delay), sleep=time.sleep,
                        retry=retry_if_exception_type((JobFileNotFound, PrinterUnreachable)), before_sleep=note,
                        reraise=True)
    return retrying(once)


def _threadsafe_progress(progress: Progress | None) -> Callable[[int, int | None], None]:
    if progress is None:
        return lambda done, total: None
    loop = asyncio.get_running_loop()
    return lambda done, total: loop.call_soon_threadsafe(progress, done, total)


async def download(cfg: PrinterConfig, remote_path: str, dest: Path, *, pins: PinStore | None,
                   progress: Progress | None = None, attempts: int = 4, retry_delay: float = 2.0) -> Path:
    """Fetch ``remote_path`` into ``dest`` (via a temporary file renamed at the end).

    Retries, bounded by ``attempts``, while the file is missing or still growing. ``progress(done, total)``
    is called on the event loop.
    """
    report = _threadsafe_progress(progress)
    return await asyncio.to_thread(_download_blocking, cfg, remote_path, Path(dest), pins, report,
                                   max(1, attempts), retry_delay)


def _listing(ftp: ftplib.FTP, folder: str) -> set[str] | None:
    try:
        return {posixpath.basename(name.rstrip("/")) for name in ftp.nlst(folder)}
    except ftplib.error_perm:
        return None  # no such folder on this model


def _find_blocking(cfg: PrinterConfig, candidates: list[str], pins: PinStore | None) -> str | None:
    with ftps_session(cfg, pins) as ftp:
        listings = {folder: _listing(ftp, folder) for folder in SEARCH_DIRS}
        folded = {folder: {name.casefold(): name for name in names}
                  for folder, names in listings.items() if names is not None}
        for path in candidates:
            folder, name = posixpath.split(path)
            if folder in listings and listings[folder] is not None:
                if name in listings[folder]:  # type: ignore[operator]
                    return path
                # Names typed on the printer or phone may differ in case from the subtask name.
                real = folded.get(folder, {}).get(name.casefold())
                if real is not None:
                    return posixpath.join(folder, real)
            elif (_remote_size(ftp, path) or 0) > 0:
                return path
    return None


async def find_job_file(cfg: PrinterConfig, *, url: str | None, subtask_name: str | None,
                        gcode_file: str | None, pins: PinStore | None = None, attempts: int = 3,
                        retry_delay: float = 2.0) -> str | None:
    """The FTPS path of the job's file, or None (also None for http(s) URLs: use ``download_url``).

    A print started a moment ago may not be listed yet, so a miss is retried ``attempts`` times.
    """
    candidates = candidate_paths(None if is_http_url(url) else url, subtask_name, gcode_file)
    if not candidates:
        return None
    retrying = AsyncRetrying(stop=stop_after_attempt(max(1, attempts)), wait=wait_fixed(retry_delay),
                             retry=retry_if_result(lambda found: found is None),
                             retry_error_callback=lambda state: None)
    return await retrying(asyncio.to_thread, _find_blocking, cfg, candidates, pins)


async def download_url(url: str, dest: Path, *, progress: Progress | None = None,
                       client: httpx.AsyncClient | None = None, timeout: float = 60.0) -> Path:
    """Fetch a cloud print's file (a pre-signed http(s) URL the printer reported) into ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    own = client is None
    http = client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
    try:
        async with http.stream("GET", url) as response:
            if response.status_code in (403, 404, 410):
                raise JobFileNotFound(f"job file download refused: HTTP {response.status_code}")
            response.raise_for_status()
            total = int(response.headers["content-length"]) if "content-length" in response.headers else None
            done = 0
            with part.open("wb") as out:
                async for chunk in response.aiter_bytes(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        os.replace(part, dest)
        return dest
    except httpx.HTTPError as exc:
        raise PrinterUnreachable(f"job file download failed: {type(exc).__name__}") from None
    finally:
        part.unlink(missing_ok=True)
        if own:
            await http.aclose()
