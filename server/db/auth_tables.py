"""Tables of access control: people who may sign in, their sessions, and API tokens.

Only hashes are stored: an Argon2 hash of each password, and the SHA-256 of each session id and
token (both are 256 random bits, so a fast hash is enough and a stolen database opens nothing).
The rules live in ``server/auth``; these are only the shapes.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from server.db.models import UTCDateTime, utcnow


class UserRow(SQLModel, table=True):
    __tablename__ = "users"

    name: str = Field(primary_key=True)
    password_hash: str  # Argon2id, in its own encoded form ($argon2id$v=19$m=...)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SessionRow(SQLModel, table=True):
    """A signed-in browser. ``user`` is no foreign key: removing a person deletes their sessions first."""

    __tablename__ = "auth_sessions"

    id_hash: str = Field(primary_key=True)  # SHA-256 of the cookie's value, hex
    user: str = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)  # slides forward while the session is used


class ApiTokenRow(SQLModel, table=True):
    __tablename__ = "api_tokens"

    name: str = Field(primary_key=True)
    token_hash: str = Field(unique=True)  # SHA-256 of the token, hex
    read_only: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used: datetime | None = Field(default=None, sa_type=UTCDateTime)
