"""Layerwise's certificate authority and server certificates: pure X.509 decisions (server/https/authority.py)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import plistlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from server.https.authority import (
    RENEW_BEFORE,
    SERVER_VALIDITY,
    authority_renewal_reason,
    cert_der,
    certifiable,
    issue_server_certificate,
    new_authority,
    permits,
    san_names,
    server_renewal_reason,
    spki_sha256,
)
from server.https.profile import mobileconfig

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
NAMES = ["pi", "pi.local", "192.168.1.20", "127.0.0.1", "::1", "localhost"]


@pytest.fixture(scope="module")
def ca():
    return new_authority(NAMES, NOW, "pi")


def test_the_server_certificate_names_every_address_and_name_and_chains_to_the_authority(ca) -> None:
    server = issue_server_certificate(ca, NAMES, NOW)
    assert san_names(server.cert) == ["192.168.1.20", "127.0.0.1", "::1", "pi", "pi.local", "localhost"]
    assert server.cert.issuer == ca.cert.subject
    server.cert.verify_directly_issued_by(ca.cert)
    assert isinstance(server.key, ec.EllipticCurvePrivateKey)
    assert server.cert.not_valid_after_utc - NOW <= SERVER_VALIDITY
    eku = server.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_the_authority_is_a_ca_constrained_to_home_networks(ca) -> None:
    basic = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    assert all(permits(ca.cert, name) for name in [*NAMES, "10.1.2.3", "nas.lan", "printer.fritz.box", "fd12::1"])
    assert not any(permits(ca.cert, name) for name in ["8.8.8.8", "bank.example.com", "google.com", "2001:db8::1"])
    assert "pi" in ca.cert.subject.rfc4514_string()


def test_a_dotted_host_name_permits_its_own_domain() -> None:
    ca = new_authority(["layerwise.example.net"], NOW, "nas")
    assert permits(ca.cert, "layerwise.example.net") and permits(ca.cert, "other.example.net")
    assert not permits(ca.cert, "example.org")


def test_server_renewal_reasons(ca) -> None:
    server = issue_server_certificate(ca, NAMES, NOW).cert
    assert server_renewal_reason(None, ca.cert, NAMES, NOW) == "no server certificate yet"
    assert server_renewal_reason(server, ca.cert, NAMES, NOW) is None
    assert server_renewal_reason(server, ca.cert, NAMES[:2], NOW) is None  # fewer names: still fits
    assert server_renewal_reason(server, ca.cert, [*NAMES, "192.168.1.21"], NOW) == "it does not name 192.168.1.21"
    assert server_renewal_reason(server, ca.cert, ["0:0::1"], NOW) is None  # the same address, written otherwise
    later = NOW + SERVER_VALIDITY - RENEW_BEFORE + dt.timedelta(seconds=1)
    assert server_renewal_reason(server, ca.cert, NAMES, later) == "it expires soon"
    other = new_authority(NAMES, NOW, "pi")
    assert server_renewal_reason(server, other.cert, NAMES, NOW) == "it was signed by another authority"


def test_authority_renewal_reasons(ca) -> None:
    assert authority_renewal_reason(None, NOW) == "no authority yet"
    assert authority_renewal_reason(ca.cert, NOW) is None
    assert authority_renewal_reason(ca.cert, NOW + dt.timedelta(days=3640)) == "the authority expires soon"


def test_names_the_authority_may_not_sign_for_are_left_out_not_a_reason_for_a_new_authority(ca) -> None:
    # A container's host name changes with every upgrade: phones must not have to trust Layerwise again.
    assert certifiable(ca.cert, ["nas.lan", "10.0.0.9", "f3a9c1d2e4b5", "layerwise.example.net"]) == (
        ["nas.lan", "10.0.0.9"], ["f3a9c1d2e4b5", "layerwise.example.net"])


def test_the_ios_profile_parses_and_carries_the_authority(ca) -> None:
    profile = plistlib.loads(mobileconfig(ca.cert))
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    (payload,) = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.security.root"
    assert x509.load_der_x509_certificate(payload["PayloadContent"]) == ca.cert
    assert payload["PayloadUUID"] != profile["PayloadUUID"]
    assert mobileconfig(ca.cert) == mobileconfig(ca.cert)  # same authority, same profile: iOS replaces it
    assert b"PRIVATE" not in mobileconfig(ca.cert)


def test_spki_hash_is_of_the_public_key(ca) -> None:
    assert len(spki_sha256(ca.cert)) == 44 and spki_sha256(ca.cert) != spki_sha256(new_authority(NAMES, NOW, "pi").cert)
    assert x509.load_der_x509_certificate(cert_der(ca.cert)) == ca.cert


def test_an_ip_san_is_an_ip_address(ca) -> None:
    server = issue_server_certificate(ca, ["192.168.1.20"], NOW).cert
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.1.20")]
