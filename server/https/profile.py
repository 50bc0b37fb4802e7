"""An iOS/iPadOS configuration profile (``.mobileconfig``) that installs Layerwise's authority.

A plain property list (plistlib): one ``com.apple.security.root`` payload carrying the certificate's DER.
Its identifiers are derived from the certificate, so downloading it twice gives the same profile and iOS
replaces rather than duplicates it.
"""

from __future__ import annotations

import plistlib
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from server.https.authority import cert_der

_NAMESPACE = uuid.UUID("6f1c9a52-2f2e-4d53-9a53-6c6179657277")


def mobileconfig(ca: x509.Certificate) -> bytes:
    der = cert_der(ca)
    name = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    key = ca.fingerprint(hashes.SHA256()).hex()[:16]
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"net.layerwise.ca.{key}",
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, "profile:" + key)).upper(),
        "PayloadDisplayName": str(name),
        "PayloadDescription": "Lets this device trust Layerwise's HTTPS address on your home network, so the "
                              "camera works and the app can be installed.",
        "PayloadOrganization": "Layerwise (local)",
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [{
            "PayloadType": "com.apple.security.root",
            "PayloadVersion": 1,
            "PayloadIdentifier": f"net.layerwise.ca.{key}.root",
            "PayloadUUID": str(uuid.uuid5(_NAMESPACE, "root:" + key)).upper(),
            "PayloadDisplayName": str(name),
            "PayloadCertificateFileName": "layerwise-ca.cer",
            "PayloadContent": der,
        }],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)
