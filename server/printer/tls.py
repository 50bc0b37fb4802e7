"""TLS policy for the printer's MQTT broker and FTPS server.

Printers are reached by IP and their certificates carry the serial number as CN (no subjectAltName), so the
host-name check is off and replaced by a CN == serial check. Three modes:

* ``verify`` (default): chain checked against Bambu Lab's public device CAs shipped in ``certs/`` (plus the
  configured ``ca_file``), then the CN must equal the configured serial.
* ``pin``: trust on first use; the first certificate's SHA-256 fingerprint is stored per serial and any other
  certificate later is refused.
* ``insecure``: no verification at all (a WARNING is logged once per printer).

``client_ssl_context(cfg, pins)`` returns a context whose handshake itself runs ``check_peer``, so nothing
(not even the MQTT login carrying the access code) is sent to a peer that fails the policy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import ssl
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from server.config import PrinterConfig
from server.printer.errors import PrinterTLSError

log = logging.getLogger(__name__)

CERTS_DIR = Path(__file__).resolve().parent / "certs"
_warned_insecure: set[str] = set()


@cache
def bambu_ca_pem() -> str:
    """All shipped Bambu Lab CA certificates, concatenated (PEM)."""
    # Some of the published files lack a final newline; joining them bare would break the PEM framing.
    return "\n".join(path.read_text("ascii").strip() for path in sorted(CERTS_DIR.glob("*.cert"))) + "\n"


def certificate_common_name(der_cert: bytes) -> str | None:
    try:
        cert = x509.load_der_x509_certificate(der_cert)
    except ValueError:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def fingerprint(der_cert: bytes) -> str:
    return hashlib.sha256(der_cert).hexdigest()


class PinStore:
    """Trust-on-first-use fingerprints: a small JSON file per printer serial in ``data_dir/printer-pins``."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = Path(data_dir) / "printer-pins"

    def path_for(self, serial: str) -> Path:
        # Serials are alphanumeric; anything else is replaced so a crafted serial cannot escape the folder.
        return self.directory / f"{re.sub(r'[^A-Za-z0-9_-]', '_', serial)}.json"

    def get(self, serial: str) -> str | None:
        try:
            data = json.loads(self.path_for(serial).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        value = data.get("sha256") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    def set(self, serial: str, sha256: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(serial)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"serial": serial, "sha256": sha256}) + "\n", "utf-8")
        os.replace(tmp, path)

    def reset(self, serial: str) -> None:
        self.path_for(serial).unlink(missing_ok=True)


def check_peer(cfg: PrinterConfig, der_cert: bytes | None, pins: PinStore | None) -> None:
    """Apply the policy to the certificate the printer presented; raise ``PrinterTLSError`` if refused."""
    if cfg.tls == "insecure":
        return
    if not der_cert:
        raise PrinterTLSError(f"printer {cfg.name} presented no certificate")
    if cfg.tls == "verify":
        found = certificate_common_name(der_cert)
        if found != cfg.serial:
            raise PrinterTLSError(
                f"printer {cfg.name}: certificate CN is {found!r}, expected the serial {cfg.serial!r} "
                "(check the configured serial number, or that this address is the right printer)"
            )
        return
    if cfg.tls == "pin":
        if pins is None:
            raise PrinterTLSError(f"printer {cfg.name}: tls = 'pin' needs a pin store (data directory)")
        seen = fingerprint(der_cert)
        pinned = pins.get(cfg.serial)
        if pinned is None:
            pins.set(cfg.serial, seen)
            log.info("printer %s: pinned certificate sha256 %s", cfg.name, seen)
        elif pinned != seen:
            raise PrinterTLSError(
                f"printer {cfg.name}: certificate changed (pinned sha256 {pinned}, now {seen}); "
                f"if the printer was reset or replaced, delete {pins.path_for(cfg.serial)} to pin the new one"
            )
        return
    raise PrinterTLSError(f"printer {cfg.name}: unknown tls mode {cfg.tls!r}")


def _checking_socket_class(cfg: PrinterConfig, pins: PinStore | None) -> type[ssl.SSLSocket]:
    class CheckedSSLSocket(ssl.SSLSocket):
        """Runs the policy right after the handshake, before the caller can send anything."""

        def do_handshake(self, block: bool = False) -> None:
            try:
                super().do_handshake(block)
            except ssl.SSLCertVerificationError as exc:
                by_ca_file = (f"nor by the configured ca_file {cfg.ca_file}" if cfg.ca_file is not None
                              else "and no ca_file is configured (a virtual printer needs its CA as ca_file)")
                raise PrinterTLSError(
                    f"printer {cfg.name}: certificate not trusted ({exc.verify_message}); "
                    f"it is not signed by Bambu Lab's CA {by_ca_file}"
                ) from None
            try:
                check_peer(cfg, self.getpeercert(binary_form=True), pins)
            except PrinterTLSError:
                self.close()
                raise

    return CheckedSSLSocket


def client_ssl_context(cfg: PrinterConfig, pins: PinStore | None = None) -> ssl.SSLContext:
    """An SSL context for MQTT and FTPS to this printer; its handshake runs ``check_peer`` itself.

    ``pin`` mode needs ``pins`` (without it every handshake is refused with a clear error).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # reached by IP; the CN is compared with the serial instead
    if cfg.tls == "verify":
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=bambu_ca_pem())
        if cfg.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(cfg.ca_file))
            except (OSError, ssl.SSLError) as exc:
                msg = f"printer {cfg.name}: cannot load ca_file {cfg.ca_file}: {exc}"
                raise PrinterTLSError(msg) from None
    else:
        context.verify_mode = ssl.CERT_NONE
        if cfg.tls == "insecure" and cfg.name not in _warned_insecure:
            _warned_insecure.add(cfg.name)
            log.warning("TLS verification is off for printer %s", cfg.name)
    if cfg.tls != "insecure":
        context.sslsocket_class = _checking_socket_class(cfg, pins)
    return context

