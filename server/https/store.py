"""Layerwise's authority and server certificate as files in ``DATA_DIR/tls``, made and renewed as needed.

Private keys are written 0600 in a 0700 folder, each file replaced atomically, and never read back into
anything but an SSL context or the signer: no log line, page or API answer carries them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.https.authority import (
    KeyAndCert,
    authority_renewal_reason,
    cert_pem,
    certifiable,
    issue_server_certificate,
    key_pem,
    new_authority,
    server_renewal_reason,
)

log = logging.getLogger(__name__)

TLS_DIR = "tls"


@dataclass(frozen=True)
class TlsFiles:
    folder: Path

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca-key.pem"

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def key(self) -> Path:
        return self.folder / "server-key.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def learnt(self) -> Path:
        return self.folder / "learnt-names.json"


def tls_files(data_dir: Path) -> TlsFiles:
    return TlsFiles(data_dir / TLS_DIR)


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is cut by the umask and ignored for an existing file
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def first_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM file (the server's file also carries the authority after it)."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def _load_pair(key_path: Path, cert_path: Path) -> KeyAndCert | None:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = first_certificate(cert_path)
    except (OSError, ValueError):
        return None  # missing or damaged: made anew
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    return KeyAndCert(key, cert)


def _save_pair(pair: KeyAndCert, key_path: Path, cert_path: Path, chain: bytes = b"") -> None:
    _write(key_path, key_pem(pair.key), 0o600)
    _write(cert_path, cert_pem(pair.cert) + chain, 0o644)


def load_authority(files: TlsFiles) -> x509.Certificate | None:
    pair = _load_pair(files.ca_key, files.ca_cert)
    return pair.cert if pair else None


@dataclass(frozen=True)
class Outcome:
    changed: bool  # a new server certificate was written: a running server should load it
    left_out: list[str]  # names the authority may not sign for (a new authority would: delete tls/)


def ensure(files: TlsFiles, names: list[str], now: dt.datetime, label: str) -> Outcome:
    """Make or renew the authority and server certificate so they fit ``names`` at ``now``."""
    ca = _load_pair(files.ca_key, files.ca_cert)
    reason = authority_renewal_reason(ca.cert if ca else None, now)
    if reason:
        log.warning("HTTPS: making a new certificate authority (%s); phones must trust it once, "
                    "see the set-up page", reason)
        ca = new_authority(names, now, label)
        _save_pair(ca, files.ca_key, files.ca_cert)
    assert ca is not None
    names, left_out = certifiable(ca.cert, names)
    server = _load_pair(files.key, files.cert)
    reason = server_renewal_reason(server.cert if server else None, ca.cert, names, now)
    if not reason:
        return Outcome(False, left_out)
    log.info("HTTPS: new server certificate for %s (%s)", ", ".join(names), reason)
    # The authority follows the server's certificate: a client that was told to trust the authority's key
    # (Chromium's --ignore-certificate-errors-spki-list, some Android versions) finds it in the chain.
    _save_pair(issue_server_certificate(ca, names, now), files.key, files.cert, chain=cert_pem(ca.cert))
    return Outcome(True, left_out)


def read_learnt(files: TlsFiles) -> list[str]:
    try:
        names = json.loads(files.learnt.read_text())
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def write_learnt(files: TlsFiles, names: list[str]) -> None:
    _write(files.learnt, json.dumps(names).encode(), 0o644)
