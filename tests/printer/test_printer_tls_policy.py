"""TLS policy decisions on certificates (no network)."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from server.config import PrinterConfig
from server.printer.errors import PrinterTLSError
from server.printer.tls import PinStore, bambu_ca_pem, certificate_common_name, check_peer, client_ssl_context

CODE = "12345678"


def _cert(cn: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def _cfg(tls: str = "verify", serial: str = "01S00A000000001", name: str = "P1S") -> PrinterConfig:
    return PrinterConfig(name=name, host="127.0.0.1", serial=serial, access_code=SecretStr(CODE), tls=tls)


def test_cn_must_equal_serial() -> None:
    check_peer(_cfg(), _cert("01S00A000000001"), None)
    with pytest.raises(PrinterTLSError) as err:
        check_peer(_cfg(), _cert("00M09A000000002"), None)
    message = str(err.value)
    assert "'00M09A000000002'" in message and "'01S00A000000001'" in message and CODE not in message
    assert certificate_common_name(b"not a certificate") is None


def test_pin_first_use_then_refuses_another(tmp_path: Path) -> None:
    pins = PinStore(tmp_path)
    first, other = _cert("A"), _cert("A")
    check_peer(_cfg("pin"), first, pins)
    check_peer(_cfg("pin"), first, pins)
    with pytest.raises(PrinterTLSError) as err:
        check_peer(_cfg("pin"), other, pins)
    assert str(pins.path_for("01S00A000000001")) in str(err.value) and "delete" in str(err.value)
    pins.reset("01S00A000000001")
    check_peer(_cfg("pin"), other, pins)


def test_pin_store_keeps_serials_inside_its_folder(tmp_path: Path) -> None:
    assert PinStore(tmp_path).path_for("../../etc/passwd").parent == tmp_path / "printer-pins"


def test_insecure_accepts_anything_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    cfg = _cfg("insecure", name="warn-once-printer")
    with caplog.at_level(logging.WARNING):
        context = client_ssl_context(cfg)
        client_ssl_context(cfg)
    assert context.verify_mode == ssl.CERT_NONE
    check_peer(cfg, None, None)
    warnings = [r.getMessage() for r in caplog.records if "TLS verification is off" in r.getMessage()]
    assert warnings == ["TLS verification is off for printer warn-once-printer"]


def test_verify_context_trusts_the_shipped_bambu_cas() -> None:
    context = client_ssl_context(_cfg())
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    subjects = {dict(x[0] for x in c["subject"])["commonName"] for c in context.get_ca_certs()}
    assert {"BBL CA2 RSA", "BBL Device CA N7-V2", "BBL Device CA O1C2-V2"} <= subjects
    assert bambu_ca_pem().count("BEGIN CERTIFICATE") == 8


def test_unreadable_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = _cfg().model_copy(update={"ca_file": tmp_path / "missing.pem"})
    with pytest.raises(PrinterTLSError, match="cannot load ca_file"):
        client_ssl_context(cfg)
