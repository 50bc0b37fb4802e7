"""The printer's file server: implicit FTPS (TLS from the first byte) on top of pyftpdlib.

Bambu printers run vsftpd with ``implicit_ssl``, ``PROT P`` data channels and ``require_ssl_reuse``: a data
connection must resume the control connection's TLS session or it is refused with 522. pyftpdlib speaks only
explicit FTPS (``AUTH TLS``), so the control handler starts TLS itself on accept, and the data handler checks
OpenSSL's ``SSL_session_reused`` once its handshake is done. pyftpdlib's loop is blocking, so each server runs
its own IOLoop in a daemon thread and never touches the caller's asyncio loop.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from OpenSSL import SSL
from OpenSSL._util import lib as _openssl_lib  # SSL_session_reused has no public pyOpenSSL wrapper
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.handlers.ftps.data import TLS_DTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from server.sim.printer.certs import PrinterCertificates

log = logging.getLogger(__name__)
# Without a handler of its own, pyftpdlib installs a stderr handler and turns off logging's thread and
# source-line capture process-wide the first time a server loops; a NullHandler leaves logging to the app.
logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())

USERNAME = "bblp"
# Folders a printer's storage has; jobs sent from the slicer land in /cache.
PRINTER_FOLDERS = ("cache", "model", "timelapse", "logger")
SESSION_REUSE_REQUIRED = "522 SSL connection failed: session reuse required"
_POLL_SECONDS = 0.05


def session_reuse_supported() -> bool:
    return hasattr(_openssl_lib, "SSL_session_reused")


class _ReusingDataChannel(TLS_DTPHandler):
    """A PROT P data channel that, like vsftpd's require_ssl_reuse, refuses fresh TLS sessions."""

    def send(self, data: bytes) -> int:
        # SSL_write during the handshake would complete it implicitly, skipping the reuse check below:
        # hold the data until handle_ssl_established has run.
        if self._ssl_accepting:
            return 0
        return super().send(data)

    def handle_ssl_established(self) -> None:
        if self.cmd_channel.require_session_reuse and not _openssl_lib.SSL_session_reused(self.socket._ssl):
            self._resp = (SESSION_REUSE_REQUIRED, log.info)
            self.close()


class _ImplicitTlsControl(TLS_FTPHandler):
    """Control channel that is TLS from the first byte; the 220 banner comes after the handshake."""

    tls_control_required = True
    tls_data_required = True
    dtp_handler = _ReusingDataChannel
    banner = "Layerwise virtual printer FTPS ready"
    require_session_reuse = True
    _banner_sent = False

    def handle(self) -> None:
        self.secure_connection(self.ssl_context)

    def handle_ssl_established(self) -> None:
        if not self._banner_sent:
            self._banner_sent = True
            FTPHandler.handle(self)


def _ssl_context(certs: PrinterCertificates) -> SSL.Context:
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.use_certificate_chain_file(str(certs.chain))
    context.use_privatekey_file(str(certs.key))
    context.set_options(SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3 | SSL.OP_NO_COMPRESSION)
    # Sessions must be resumable across the control and data connections of one client.
    context.set_session_id(b"layerwise-virtual-printer")
    context.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
    return context


class ImplicitFtpsServer:
    """One printer's FTPS server over a folder on disk; ``start()``/``stop()`` are safe from asyncio code."""

    def __init__(self, *, root: Path, access_code: str, certs: PrinterCertificates, host: str = "127.0.0.1",
                 port: int = 0, require_session_reuse: bool = True) -> None:
        self.root = root
        self.host = host
        self.port = port
        self._certs = certs
        self._access_code = access_code
        self._require_session_reuse = require_session_reuse and session_reuse_supported()
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._drop_requested = threading.Event()
        self._dropped = threading.Event()

    def __repr__(self) -> str:
        return f"ImplicitFtpsServer(host={self.host!r}, port={self.port}, root={str(self.root)!r})"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        for folder in PRINTER_FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user(USERNAME, self._access_code, str(self.root), perm="elradfmwMT")
        # pyftpdlib configures handlers through class attributes: one subclass per server keeps printers apart.
        attrs: dict[str, Any] = {
            "authorizer": authorizer,
            "ssl_context": _ssl_context(self._certs),
            "require_session_reuse": self._require_session_reuse,
            "passive_ports": None,
            "masquerade_address": None,
            # vsftpd waits a second after a bad login; a short pause keeps tests of refusals quick.
            "auth_failed_timeout": 0.2,
        }
        handler = type("PrinterFtpsHandler", (_ImplicitTlsControl,), attrs)
        ioloop = IOLoop()
        self._server = FTPServer((self.host, self.port), handler, ioloop=ioloop)
        self.port = self._server.address[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name=f"virtual-printer-ftps-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        try:
            while not self._stopping.is_set():
                # One poll per turn (not serve_forever, which logs a start banner every call).
                server.ioloop.loop(_POLL_SECONDS, blocking=False)
                if self._drop_requested.is_set():
                    self._close_clients(server)
        finally:
            server.close_all()

    def _close_clients(self, server: FTPServer) -> None:
        # Runs on the server thread: pyftpdlib's socket map is not thread-safe.
        for channel in list(server.ioloop.socket_map.values()):
            if channel is not server:
                channel.close()
        self._drop_requested.clear()
        self._dropped.set()

    def drop_connections(self) -> None:
        """Close every client's control and data connection; the listener stays up."""
        if not self.running:
            return
        self._dropped.clear()
        self._drop_requested.set()
        self._dropped.wait(timeout=5)

    def stop(self) -> None:
        """Close the listener and every client connection; the port can be bound again afterwards."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        self._server = None
