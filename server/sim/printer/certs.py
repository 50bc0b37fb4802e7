"""The printer's own certificate chain: a private CA and a server certificate whose CN is the serial.

Real Bambu Lab printers present a certificate with CN = serial number and no subjectAltName, chained to a
Bambu device CA; clients pin the CA and compare the CN. The virtual printer does the same with a CA of its
own, generated once per (cert_dir, serial) and reused on later starts because key generation is the slow part.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_COMMON_NAME = "Layerwise Virtual Printer CA"
CA_FILE_NAME = "ca.pem"
_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class PrinterCertificates:
    ca_cert: Path  # PEM of the CA, for clients to trust
    chain: Path  # server certificate followed by the CA (what the printer presents)
    key: Path  # server private key (PEM, mode 0600)


def default_cert_dir(serial: str) -> Path:
    return Path(tempfile.gettempdir()) / "layerwise-virtual-printer" / serial


def ensure_certificates(cert_dir: Path, serial: str) -> PrinterCertificates:
    """Return the chain in ``cert_dir``, generating it if missing, for another serial, or near expiry."""
    certs = PrinterCertificates(cert_dir / CA_FILE_NAME, cert_dir / "server-chain.pem", cert_dir / "server.key")
    cert_dir.mkdir(parents=True, exist_ok=True)
    # Several processes (parallel test runs, a demo) may share the default folder: one generates at a time.
    with open(cert_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _usable(certs, serial):
            _generate(certs, serial)
    return certs


def _generate(certs: PrinterCertificates, serial: str) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _server_certificate(serial, server_key, ca_cert, ca_key)
    pem = serialization.Encoding.PEM
    _write(certs.key, server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), private=True)
    _write(certs.chain, server_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    _write(certs.ca_cert, ca_cert.public_bytes(pem))


def _usable(certs: PrinterCertificates, serial: str) -> bool:
    if not (certs.ca_cert.exists() and certs.chain.exists() and certs.key.exists()):
        return False
    try:
        leaf, *issuers = x509.load_pem_x509_certificates(certs.chain.read_bytes())
        ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(certs.key.read_bytes(), password=None)
    except ValueError:
        return False
    if leaf.public_key() != key.public_key() or issuers != [ca]:
        return False
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    fresh = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=30)
    return bool(names) and names[0].value == serial and fresh


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Layerwise"),
                      x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(serial: str, key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                        ca_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    # No subjectAltName, like the printers: clients must check the CN against the serial themselves.
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    # Write then rename so a concurrent start never reads half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
