"""The running side of Layerwise's own HTTPS: which names, when to renew, and the live SSL context.

``LocalHttps.refresh`` runs at start and every few minutes (addresses change when a router hands out a
new lease, the certificate nears expiry); ``learn`` runs when a browser opens the set-up page by a name
the certificate lacks. A new certificate goes into the running server's SSL context: the next TLS
handshake uses it, no restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID

from server.https import store
from server.https.authority import cert_der, cert_pem, fingerprint, missing_names
from server.https.names import learnable, local_addresses, remember, wanted_names
from server.https.profile import mobileconfig

log = logging.getLogger(__name__)

REFRESH_EVERY = 600.0  # seconds between looks at this machine's addresses and the certificate's expiry


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class LocalHttps:
    files: store.TlsFiles
    port: int
    base_url: str | None = None
    hostname: str = field(default_factory=socket.gethostname)
    addresses: Callable[[], list[str]] = local_addresses
    clock: Callable[[], dt.datetime] = _now
    context: ssl.SSLContext | None = None  # the running HTTPS server's, once it runs
    _authority: x509.Certificate | None = None
    _warned: set[str] = field(default_factory=set)  # names already logged as left out

    def names(self) -> list[str]:
        return wanted_names(self.hostname, self.addresses(), self.base_url, store.read_learnt(self.files))

    def refresh(self) -> bool:
        """Make or renew the certificates as needed; True when the server certificate changed."""
        outcome = store.ensure(self.files, self.names(), self.clock(), self.hostname or "this machine")
        self._authority = store.load_authority(self.files)
        if outcome.changed and self.context is not None:
            self.context.load_cert_chain(str(self.files.cert), str(self.files.key))
        new = [n for n in outcome.left_out if n not in self._warned]
        if new:
            log.warning("HTTPS: the certificate cannot name %s: Layerwise's authority was made for other names "
                        "(delete %s and restart for a new one; every phone must then trust it again)",
                        ", ".join(new), self.files.folder)
            self._warned.update(new)
        return outcome.changed

    def learn(self, host_header: str | None) -> None:
        """Add the name a browser used to reach us, if the certificate may and does not yet carry it."""
        name = learnable(host_header)
        if name is None or not self._server_lacks(name):
            return
        store.write_learnt(self.files, remember(store.read_learnt(self.files), name))
        self.refresh()

    def _server_lacks(self, name: str) -> bool:
        try:
            cert = store.first_certificate(self.files.cert)
        except (OSError, ValueError):
            return True
        return bool(missing_names(cert, [name]))

    async def keep_fresh(self, every: float = REFRESH_EVERY) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # a full disk must not end the server; try again next time
                log.exception("HTTPS: could not renew the certificate")

    # What the set-up page hands out: the authority's certificate only, never a key.
    @property
    def authority(self) -> x509.Certificate:
        if self._authority is None:
            self.refresh()
        assert self._authority is not None
        return self._authority

    def authority_der(self) -> bytes:
        return cert_der(self.authority)

    def authority_pem(self) -> bytes:
        return cert_pem(self.authority)

    def authority_profile(self) -> bytes:
        return mobileconfig(self.authority)

    def authority_name(self) -> str:
        return str(self.authority.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)

    def authority_fingerprint(self) -> str:
        return fingerprint(self.authority)
