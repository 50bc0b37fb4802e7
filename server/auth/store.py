"""Users, sessions and API tokens in SQLite. Only hashes go in; secrets are returned once, on creation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, insert, literal
from sqlmodel import col, delete, func, select

from server.auth import credentials, passwords
from server.auth.decisions import TokenGrant
from server.db import Database
from server.db.auth_tables import ApiTokenRow, SessionRow, UserRow
from server.db.models import UTCDateTime, utcnow

SESSION_LIFETIME = timedelta(days=180)  # a phone stays signed in for months while it is used
SESSION_REFRESH = timedelta(days=1)  # slide the expiry at most once a day (one write, one new cookie)
TOKEN_USE_RESOLUTION = timedelta(hours=1)  # `token list` says when a token was last used, to the hour


@dataclass(frozen=True)
class SessionInfo:
    user: str
    expires_at: datetime
    refreshed: bool  # the expiry moved: send the cookie again with a fresh max-age


@dataclass(frozen=True)
class TokenInfo:
    name: str
    read_only: bool
    created_at: datetime
    last_used: datetime | None


# ----- users -------------------------------------------------------------------------------------

def has_users(db: Database) -> bool:
    with db.session() as s:
        return bool(s.exec(select(func.count()).select_from(UserRow)).one())


def user_names(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.exec(select(UserRow.name).order_by(UserRow.name)).all())


def set_password(db: Database, name: str, password: str) -> bool:
    """Create the user or replace their password (signing out their sessions); True when created."""
    hashed = passwords.hash_password(password)
    with db.session() as s:
        row = s.get(UserRow, name)
        created = row is None
        if row is None:
            row = UserRow(name=name, password_hash=hashed)
        else:
            row.password_hash = hashed
            s.exec(delete(SessionRow).where(col(SessionRow.user) == name))
        s.add(row)
        s.commit()
    return created


def create_first_user(db: Database, name: str, password: str) -> bool:
    """The first-run page's create: only while nobody exists. One INSERT ... WHERE NOT EXISTS under the
    database's write lock (PostgreSQL's READ COMMITTED would let two visitors both see nobody), so of two
    visitors racing on the first-run page exactly one gets in."""
    hashed = passwords.hash_password(password)
    values = select(literal(name), literal(hashed), literal(utcnow(), UTCDateTime)).where(
        ~exists(select(UserRow.name)))
    with db.session() as s:
        db.lock_for_writing(s)
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... SELECT through the ORM.
        statement = insert(UserRow).from_select(["name", "password_hash", "created_at"], values)
        created = s.exec(statement.returning(UserRow.name)).first()  # type: ignore[call-overload]
        s.commit()
        return created is not None


def remove_user(db: Database, name: str) -> bool:
    with db.session() as s:
        row = s.get(UserRow, name)
        if row is None:
            return False
        s.exec(delete(SessionRow).where(col(SessionRow.user) == name))
        s.delete(row)
        s.commit()
    return True


def check_password(db: Database, name: str, password: str) -> bool:
    with db.session() as s:
        row = s.get(UserRow, name)
    ok = passwords.verify_password(row.password_hash if row else None, password)
    if ok and row is not None and passwords.needs_rehash(row.password_hash):
        set_password(db, name, password)
    return ok


# ----- sessions ----------------------------------------------------------------------------------

def create_session(db: Database, user: str, now: datetime | None = None) -> str:
    """A new session for ``user``; returns its id (the cookie's value), which is stored only hashed."""
    now = now or utcnow()
    secret = credentials.new_session_id()
    with db.session() as s:
        s.add(SessionRow(id_hash=credentials.digest(secret), user=user, created_at=now,
                         expires_at=now + SESSION_LIFETIME))
        s.commit()
    return secret


def session_user(db: Database, session_id: str, now: datetime | None = None) -> SessionInfo | None:
    """Who the session belongs to, sliding its expiry forward; ``None`` when unknown or expired."""
    now = now or utcnow()
    with db.session() as s:
        row = s.get(SessionRow, credentials.digest(session_id))
        if row is None:
            return None
        if row.expires_at <= now:
            s.delete(row)
            s.commit()
            return None
        refreshed = row.expires_at - SESSION_LIFETIME + SESSION_REFRESH <= now
        if refreshed:
            row.expires_at = now + SESSION_LIFETIME
            s.add(row)
            s.commit()
        return SessionInfo(row.user, row.expires_at, refreshed)


def end_session(db: Database, session_id: str) -> None:
    with db.session() as s:
        s.exec(delete(SessionRow).where(col(SessionRow.id_hash) == credentials.digest(session_id)))
        s.commit()


def forget_expired_sessions(db: Database, now: datetime | None = None) -> int:
    with db.session() as s:
        result = s.exec(delete(SessionRow).where(col(SessionRow.expires_at) <= (now or utcnow())))
        s.commit()
        return int(result.rowcount or 0)


# ----- API tokens --------------------------------------------------------------------------------

def create_token(db: Database, name: str, *, read_only: bool = False) -> str | None:
    """A new token named ``name``; returns it (shown once, stored hashed), or ``None`` if the name is taken."""
    token = credentials.new_api_token()
    with db.session() as s:
        if s.get(ApiTokenRow, name) is not None:
            return None
        s.add(ApiTokenRow(name=name, token_hash=credentials.digest(token), read_only=read_only))
        s.commit()
    return token


def list_tokens(db: Database) -> list[TokenInfo]:
    with db.session() as s:
        rows = s.exec(select(ApiTokenRow).order_by(ApiTokenRow.name)).all()
    return [TokenInfo(r.name, r.read_only, r.created_at, r.last_used) for r in rows]


def revoke_token(db: Database, name: str) -> bool:
    with db.session() as s:
        row = s.get(ApiTokenRow, name)
        if row is None:
            return False
        s.delete(row)
        s.commit()
    return True


def verify_token(db: Database, token: str, now: datetime | None = None) -> TokenGrant | None:
    """The grant of a valid token (noting when it was last used, to the hour), or ``None``."""
    now = now or utcnow()
    with db.session() as s:
        row = s.exec(select(ApiTokenRow).where(col(ApiTokenRow.token_hash) == credentials.digest(token))).first()
        if row is None:
            return None
        if row.last_used is None or now - row.last_used >= TOKEN_USE_RESOLUTION:
            row.last_used = now
            s.add(row)
            s.commit()
        return TokenGrant(row.name, row.read_only)
