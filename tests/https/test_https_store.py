"""The authority and server certificate as files, renewed when they must be, and served live (server/https/)."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from server.https import store
from server.https.authority import SERVER_VALIDITY, san_names
from server.https.service import LocalHttps

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
NAMES = ["pi", "pi.local", "192.168.1.20", "127.0.0.1", "localhost"]


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_first_start_makes_the_authority_and_certificate_with_private_keys_0600(tmp_path: Path) -> None:
    files = store.tls_files(tmp_path)
    assert store.ensure(files, NAMES, NOW, "pi").changed is True
    for key in (files.ca_key, files.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700
    assert san_names(_cert(files.cert)) == ["192.168.1.20", "127.0.0.1", "pi", "pi.local", "localhost"]
    _cert(files.cert).verify_directly_issued_by(_cert(files.ca_cert))
    assert not list(files.folder.glob("*.tmp"))


def test_a_restart_keeps_both_and_a_new_address_renews_only_the_server_certificate(tmp_path: Path) -> None:
    files = store.tls_files(tmp_path)
    store.ensure(files, NAMES, NOW, "pi")
    ca, server = files.ca_cert.read_bytes(), files.cert.read_bytes()
    assert store.ensure(files, NAMES, NOW + dt.timedelta(days=1), "pi").changed is False
    assert (files.ca_cert.read_bytes(), files.cert.read_bytes()) == (ca, server)
    assert store.ensure(files, [*NAMES, "192.168.1.21"], NOW, "pi").changed is True
    assert files.ca_cert.read_bytes() == ca and "192.168.1.21" in san_names(_cert(files.cert))


def test_the_server_certificate_is_renewed_before_it_expires(tmp_path: Path) -> None:
    files = store.tls_files(tmp_path)
    store.ensure(files, NAMES, NOW, "pi")
    first = _cert(files.cert)
    assert store.ensure(files, NAMES, NOW + SERVER_VALIDITY - dt.timedelta(days=29), "pi").changed is True
    assert _cert(files.cert).not_valid_after_utc > first.not_valid_after_utc


def test_a_damaged_or_foreign_key_is_made_anew(tmp_path: Path) -> None:
    files = store.tls_files(tmp_path)
    store.ensure(files, NAMES, NOW, "pi")
    files.key.write_text("not a key")
    assert store.ensure(files, NAMES, NOW, "pi").changed is True
    ca = files.ca_cert.read_bytes()
    files.ca_key.write_bytes(b"")
    store.ensure(files, NAMES, NOW, "pi")
    assert files.ca_cert.read_bytes() != ca  # a new authority, and a server certificate it signed
    _cert(files.cert).verify_directly_issued_by(_cert(files.ca_cert))


def test_keys_stay_out_of_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    files = store.tls_files(tmp_path)
    store.ensure(files, NAMES, NOW, "pi")
    assert "PRIVATE" not in caplog.text and "making a new certificate authority" in caplog.text
    for secret in (files.ca_key, files.key):
        body = "".join(secret.read_text().splitlines()[1:-1])
        assert body[:40] not in caplog.text


def _handshake(port: int, cafile: Path, name: str) -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(cafile))  # checks the chain, the name and the constraints
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=name) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return x509.load_der_x509_certificate(der)


def test_a_learnt_name_reaches_the_running_server_without_a_restart(tmp_path: Path) -> None:
    local = LocalHttps(store.tls_files(tmp_path), port=0, hostname="pi", addresses=lambda: ["127.0.0.1"])
    local.refresh()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(local.files.cert, local.files.key)
    local.context = context
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def accept(times: int) -> None:
            for _ in range(times):
                conn, _ = listener.accept()
                try:
                    with context.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass  # the client refused the certificate: the test says so

        server = threading.Thread(target=accept, args=(3,), daemon=True)
        server.start()
        assert "127.0.0.1" in san_names(_handshake(port, local.files.ca_cert, "127.0.0.1"))
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(port, local.files.ca_cert, "printer-pi.lan")
        local.learn("printer-pi.lan:7913")
        local.learn("bank.example.com")  # never learnt
        assert "printer-pi.lan" in san_names(_handshake(port, local.files.ca_cert, "printer-pi.lan"))
        server.join(timeout=10)
    assert store.read_learnt(local.files) == ["printer-pi.lan"]
    assert local.authority_pem().startswith(b"-----BEGIN CERTIFICATE-----")
    assert b"PRIVATE" not in local.authority_pem() + local.authority_der() + local.authority_profile()


def test_a_new_host_name_keeps_the_authority_and_is_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = store.tls_files(tmp_path)
    local = LocalHttps(files, port=0, hostname="f3a9c1d2e4b5", addresses=lambda: ["192.168.1.20"])
    local.refresh()
    ca = files.ca_cert.read_bytes()
    local.hostname = "0b1c2d3e4f5a"  # the container was recreated by an upgrade
    local.refresh()
    local.refresh()
    assert files.ca_cert.read_bytes() == ca
    names = san_names(_cert(files.cert))
    assert "0b1c2d3e4f5a" not in names and "0b1c2d3e4f5a.local" in names and "192.168.1.20" in names
    assert caplog.text.count("cannot name 0b1c2d3e4f5a") == 1
