"""What a script (or a test) sends to change things without a bearer token: the CSRF double-submit pair.

The check only stops browsers on other sites, which can neither set our cookie nor add our header; any
other client may pick its own token and send it as both.
"""

from __future__ import annotations

from typing import Any

from server.web import csrf


def csrf_pair() -> dict[str, Any]:
    """Keyword arguments for ``httpx.Client``/``AsyncClient``: one token as cookie and as header."""
    token = csrf.new_token()
    return {"cookies": {csrf.COOKIE_NAME: token}, "headers": {csrf.HEADER_NAME: token}}
