"""The Docker image's health check: Layerwise answers GET /healthz on its port (exit 0), else exit 1.

Plain HTTP first; if Layerwise serves HTTPS itself (tls_certfile), HTTPS without verifying the
certificate: this asks "is it up", over the container's own loopback, not "is it who it says".
"""

import http.client
import os
import ssl
import sys
import urllib.request

port = os.environ.get("LAYERWISE_PORT") or "7913"
insecure = ssl.create_default_context()
insecure.check_hostname = False
insecure.verify_mode = ssl.CERT_NONE
for url, context in ((f"http://127.0.0.1:{port}/healthz", None), (f"https://127.0.0.1:{port}/healthz", insecure)):
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as response:
            if response.status == 200:
                sys.exit(0)
    except (OSError, http.client.HTTPException):  # includes a plain-HTTP request to HTTPS
        continue
sys.exit(1)
