"""Layerwise's own certificate authority and the server certificate it signs: pure X.509 over values.

A phone trusts the authority once (server/web/phone_setup.py hands it out); from then on every server
certificate Layerwise issues for its addresses and names is trusted too. The authority is name
constrained to private addresses and home-network names, so a copy of its key (a stolen backup of the
data directory) cannot sign a certificate a phone would accept for a bank's site.

Decisions (``renewal_reason``) are pure functions of certificates, names and a time; files live in
``server.https.store``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
# Apple accepts at most 825 days from a private authority; a short life keeps a leaked key short-lived.
SERVER_VALIDITY = dt.timedelta(days=200)
RENEW_BEFORE = dt.timedelta(days=30)
# Clocks on a Pi without a real-time clock may start behind: back-date a little.
BACKDATE = dt.timedelta(hours=1)

# What the authority may sign for: private and loopback addresses and names only a home network resolves.
PERMITTED_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10",  # carrier-grade NAT range, used by Tailscale
    "::1/128", "fc00::/7", "fe80::/10",
))
HOME_SUFFIXES = ("localhost", "local", "lan", "home", "home.arpa", "internal", "localdomain", "box", "fritz.box")

Names = Sequence[str]


@dataclass(frozen=True)
class KeyAndCert:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # fast on a Pi; accepted by Android, iOS and desktops


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def dns_subtrees(names: Iterable[str]) -> list[str]:
    """The DNS names an authority for ``names`` may sign: the home suffixes, and each dotted name's own
    domain (``layerwise.example.net`` -> ``example.net``) and each single-label name (``nas``)."""
    trees = list(HOME_SUFFIXES)
    for name in names:
        if is_ip(name):
            continue
        labels = name.lower().rstrip(".").split(".")
        tree = ".".join(labels[-2:]) if len(labels) > 1 else labels[0]
        if tree not in trees:
            trees.append(tree)
    return trees


def _in_tree(name: str, tree: str) -> bool:
    name = name.lower().rstrip(".")
    return name == tree or name.endswith("." + tree)


def permits(ca: x509.Certificate, name: str) -> bool:
    """``ca``'s name constraints allow a server certificate for ``name``."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return True
    permitted = constraints.permitted_subtrees or []
    if is_ip(name):
        address = ipaddress.ip_address(name)
        return any(isinstance(t, x509.IPAddress) and address in t.value for t in permitted)
    return any(isinstance(t, x509.DNSName) and _in_tree(name, t.value) for t in permitted)


def new_authority(names: Names, now: dt.datetime, label: str) -> KeyAndCert:
    """A new authority, constrained to private addresses and the DNS trees of ``names``. ``label`` (the host
    name) tells two Layerwise authorities apart in a phone's list of trusted certificates."""
    key = _new_key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"Layerwise on {label}"[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Layerwise (local)"),
    ])
    constraints = x509.NameConstraints(
        permitted_subtrees=[*(x509.IPAddress(net) for net in PERMITTED_NETWORKS),
                            *(x509.DNSName(tree) for tree in dns_subtrees(names))],
        excluded_subtrees=None,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyAndCert(key, cert)


def _general_name(name: str) -> x509.GeneralName:
    return x509.IPAddress(ipaddress.ip_address(name)) if is_ip(name) else x509.DNSName(name)


def issue_server_certificate(ca: KeyAndCert, names: Names, now: dt.datetime) -> KeyAndCert:
    """A server certificate for ``names`` (IP addresses and DNS names), signed by ``ca``."""
    if not names:
        raise ValueError("a server certificate needs at least one name")
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return KeyAndCert(key, cert)


def san_names(cert: x509.Certificate) -> list[str]:
    """The addresses and DNS names a certificate is for, as text."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.IPAddress)] + san.get_values_for_type(x509.DNSName)


def _same_name(a: str, b: str) -> bool:
    if is_ip(a) and is_ip(b):
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    return a.lower().rstrip(".") == b.lower().rstrip(".")


def missing_names(cert: x509.Certificate, names: Names) -> list[str]:
    have = san_names(cert)
    return [n for n in names if not any(_same_name(n, h) for h in have)]


def authority_renewal_reason(ca: x509.Certificate | None, now: dt.datetime) -> str | None:
    """Why a new authority is needed (phones must then trust it anew), or None to keep it. Never for a new
    name: a container's host name changes with every upgrade, and phones should not have to trust again."""
    if ca is None:
        return "no authority yet"
    if now + RENEW_BEFORE >= ca.not_valid_after_utc:
        return "the authority expires soon"
    return None


def certifiable(ca: x509.Certificate, names: Names) -> tuple[list[str], list[str]]:
    """``names`` split into those ``ca`` may sign for and those it may not (left out of the certificate)."""
    kept = [n for n in names if permits(ca, n)]
    return kept, [n for n in names if n not in kept]


def server_renewal_reason(cert: x509.Certificate | None, ca: x509.Certificate, names: Names,
                          now: dt.datetime) -> str | None:
    """Why the server certificate must be issued anew, or None while it still fits."""
    if cert is None:
        return "no server certificate yet"
    if cert.issuer != ca.subject or _authority_key_id(cert) != _subject_key_id(ca):
        return "it was signed by another authority"
    if now + RENEW_BEFORE >= cert.not_valid_after_utc:
        return "it expires soon"
    missing = missing_names(cert, names)
    if missing:
        return f"it does not name {', '.join(missing)}"
    return None


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as phones and browsers show it: ``AB:CD:...``."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def spki_sha256(cert: x509.Certificate) -> str:
    """Base64 SHA-256 of the public key (what Chromium's --ignore-certificate-errors-spki-list takes)."""
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)
