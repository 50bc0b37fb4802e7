"""Argon2id password hashes (argon2-cffi, RFC 9106 defaults: 64 MiB, 3 passes)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # hashing cost grows with length: refuse megabyte "passwords"

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("layerwise: no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; ``None`` (no such user) still spends the time of a check."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with weaker parameters than today's: store a new one at the next sign-in."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def password_problem(password: str, again: str | None = None) -> str | None:
    """Why a new password cannot be used, in words, or ``None``."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters"
    if again is not None and again != password:
        return "the two passwords differ"
    return None


def name_problem(name: str) -> str | None:
    """Why a user or token name cannot be used, or ``None``."""
    if not name or len(name) > 64:
        return "the name must have 1 to 64 characters"
    if not name.isprintable() or name != name.strip():
        return "the name must be printable, without leading or trailing spaces"
    return None
