"""Session ids and API tokens: random secrets, stored as their SHA-256, and parsed from requests."""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_PREFIX = "lw_"  # recognisable in a script or a secret scanner
SESSION_COOKIE = "layerwise_session"
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
_TOKEN_SHAPE = re.compile(re.escape(TOKEN_PREFIX) + _SECRET_SHAPE.pattern)


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored: 256 random bits need no slow hash, only one that cannot be reversed."""
    return hashlib.sha256(secret.encode()).hexdigest()


def session_id(cookie: str | None) -> str | None:
    """The cookie's value when it has a session id's shape (anything else is never looked up)."""
    return cookie if cookie and _SECRET_SHAPE.fullmatch(cookie) else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer lw_...`` header, or ``None`` (absent, other scheme, bad shape)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not _TOKEN_SHAPE.fullmatch(value):
        return None
    return value
