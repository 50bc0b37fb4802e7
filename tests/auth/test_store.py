"""Users, sessions and tokens in a real SQLite file: only hashes stored, sessions slide and expire."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from server.auth import credentials, passwords, store
from server.auth.decisions import TokenGrant
from server.db import Database, open_database
from server.db.models import utcnow


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Database:
    return open_database(tmp_path, database_url)  # both backends


def dump(db: Database) -> str:
    """Every row of every table, as text (either backend)."""
    with db.engine.connect() as conn:
        return "\n".join(str(tuple(row)) for table in SQLModel.metadata.sorted_tables
                         for row in conn.execute(table.select()))


def test_only_hashes_are_stored(db: Database) -> None:
    store.set_password(db, "ann", "correct horse")
    session = store.create_session(db, "ann")
    token = store.create_token(db, "ha")
    assert token is not None and token.startswith("lw_")
    text = dump(db)
    for secret in ("correct horse", session, token):
        assert secret not in text
    assert credentials.digest(session) in text and "$argon2id$" in text


def test_passwords(db: Database) -> None:
    assert not store.has_users(db)
    assert store.set_password(db, "ann", "correct horse") is True
    assert store.check_password(db, "ann", "correct horse")
    assert not store.check_password(db, "ann", "Correct horse")
    assert not store.check_password(db, "bob", "correct horse")
    assert not store.check_password(db, "ann", "x" * 5000)
    assert store.set_password(db, "ann", "battery staple") is False  # a new password, same person
    assert store.check_password(db, "ann", "battery staple")
    assert store.user_names(db) == ["ann"]


def test_a_new_password_or_removal_signs_out(db: Database) -> None:
    store.set_password(db, "ann", "correct horse")
    first = store.create_session(db, "ann")
    store.set_password(db, "ann", "battery staple")
    assert store.session_user(db, first) is None
    second = store.create_session(db, "ann")
    assert store.remove_user(db, "ann") and not store.remove_user(db, "ann")
    assert store.session_user(db, second) is None


def test_only_the_first_visitor_creates_the_first_user(db: Database) -> None:
    assert store.create_first_user(db, "ann", "correct horse")
    assert not store.create_first_user(db, "mallory", "correct horse")
    assert store.user_names(db) == ["ann"]


def test_sessions_slide_and_expire(db: Database) -> None:
    start = utcnow()
    session = store.create_session(db, "ann", now=start)
    same_day = store.session_user(db, session, now=start + timedelta(hours=3))
    assert same_day is not None and same_day.user == "ann" and not same_day.refreshed
    assert same_day.expires_at == start + store.SESSION_LIFETIME
    later = start + timedelta(days=100)
    slid = store.session_user(db, session, now=later)
    assert slid is not None and slid.refreshed and slid.expires_at == later + store.SESSION_LIFETIME
    assert store.session_user(db, session, now=later + store.SESSION_LIFETIME - timedelta(seconds=1)) is not None
    assert store.session_user(db, session, now=later + 2 * store.SESSION_LIFETIME) is None  # expired, deleted
    assert store.session_user(db, session, now=later) is None


def test_sessions_survive_reopening_and_end_on_sign_out(db: Database, tmp_path: Path,
                                                        database_url: str | None) -> None:
    session = store.create_session(db, "ann")
    db.close()
    reopened = open_database(tmp_path, database_url)
    assert store.session_user(reopened, session) is not None
    store.end_session(reopened, session)
    assert store.session_user(reopened, session) is None


def test_tokens(db: Database) -> None:
    token = store.create_token(db, "ha", read_only=True)
    assert token is not None
    assert store.create_token(db, "ha") is None  # names are unique
    assert store.verify_token(db, token) == TokenGrant("ha", read_only=True)
    assert store.verify_token(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    [listed] = store.list_tokens(db)
    assert (listed.name, listed.read_only) == ("ha", True) and listed.last_used is not None
    assert store.revoke_token(db, "ha") and not store.revoke_token(db, "ha")
    assert store.verify_token(db, token) is None


def test_credential_shapes() -> None:
    token = credentials.new_api_token()
    assert credentials.bearer_token(f"Bearer {token}") == token
    assert credentials.bearer_token(f"bearer  {token} ") == token
    for header in (None, "", token, f"Basic {token}", "Bearer lw_short", f"Bearer {token}x"):
        assert credentials.bearer_token(header) is None
    session = credentials.new_session_id()
    assert credentials.session_id(session) == session
    assert credentials.session_id("../etc") is None and credentials.session_id(None) is None


def test_password_rules() -> None:
    assert passwords.password_problem("short") is not None
    assert passwords.password_problem("long enough", "long enouhg") == "the two passwords differ"
    assert passwords.password_problem("long enough", "long enough") is None
    assert passwords.name_problem(" ann") is not None and passwords.name_problem("") is not None
    assert passwords.name_problem("ann") is None


def test_expired_sessions_are_forgotten(db: Database) -> None:
    start = utcnow()
    old = store.create_session(db, "ann", now=start - 2 * store.SESSION_LIFETIME)
    fresh = store.create_session(db, "ann", now=start)
    assert store.forget_expired_sessions(db, now=start) == 1
    assert store.session_user(db, fresh, now=start) is not None
    assert credentials.digest(old) not in dump(db)
