"""The gate: the policy from the settings plus the store's answers, behind plain synchronous calls.

``Gate.verify_bearer(token)`` is the seam for other checks (CSRF) that accept an API token in place of
a browser's proof. Everything here touches SQLite: the web side calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.auth import credentials, passwords, store
from server.auth.decisions import Access, Policy, TokenGrant, Visit, decide_access, is_public, parse_networks
from server.auth.limiter import LoginLimiter, limit_keys
from server.config import AuthConfig
from server.db import Database

log = logging.getLogger(__name__)

AUTH_OFF_WARNING = ("access control is off ([auth] required = false): anyone who can reach this server can "
                    "change slots and bills; see the README's 'Access control'")


NO_PASSWORD_WARNING = ("no password yet: the first visitor from another machine creates it (at /first-run); "
                       "set it now with `layerwise user add NAME`")


@dataclass(frozen=True)
class Verdict:
    access: Access
    user: str | None = None
    token: TokenGrant | None = None
    refreshed_session: str | None = None  # a session id whose expiry slid: send its cookie again


@dataclass(frozen=True)
class SignIn:
    session_id: str | None  # the new session's id when the password was right
    retry_after: int | None = None  # seconds, when too many recent failures refuse even trying


def policy_for(config: AuthConfig, *, demo: bool) -> Policy:
    return Policy(enabled=config.required and not demo, trusted_networks=parse_networks(config.trusted_networks))


class Gate:
    def __init__(self, db: Database, config: AuthConfig, *, demo: bool, limiter: LoginLimiter | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.policy = policy_for(config, demo=demo)
        self.limiter = limiter or LoginLimiter()
        self.clock = clock
        if not config.required and not demo:
            log.warning("%s", AUTH_OFF_WARNING)
        if self.enabled:
            store.forget_expired_sessions(db)  # once per start: expired sessions are dead weight
            if not store.has_users(db):
                log.warning("%s", NO_PASSWORD_WARNING)

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    def verify_bearer(self, token: str) -> TokenGrant | None:
        """The grant of a valid API token (the raw token, without ``Bearer ``), or ``None``."""
        return store.verify_token(self.db, token)

    def judge(self, *, path: str, method: str, client: str | None, forwarded: bool,
              authorization: str | None, session_cookie: str | None) -> Verdict:
        """Who this request is and whether it may pass (``decide_access`` with the store's facts)."""
        probe = Visit(path=path, method=method, client=client, forwarded=forwarded, has_users=True)
        if is_public(path) or not self.enabled or (
                decide_access(self.policy, probe) is Access.ALLOW and not authorization and not session_cookie):
            return Verdict(Access.ALLOW)  # public, off, or a trusted network: no database needed
        token = bad_token = None
        if authorization and authorization.lstrip()[:7].lower() == "bearer ":
            # Only Bearer is ours: a proxy's own sign-in (Basic) in front of Layerwise is not a bad token.
            raw = credentials.bearer_token(authorization)
            token = self.verify_bearer(raw) if raw else None
            bad_token = token is None
        session = None
        session_id = credentials.session_id(session_cookie)
        if session_id and token is None:
            session = store.session_user(self.db, session_id)
        visit = Visit(path=path, method=method, client=client, forwarded=forwarded,
                      has_users=session is not None or token is not None or store.has_users(self.db),
                      session_user=session.user if session else None, token=token, bad_token=bool(bad_token))
        return Verdict(decide_access(self.policy, visit), user=session.user if session else None, token=token,
                       refreshed_session=session_id if session and session.refreshed else None)

    def has_users(self) -> bool:
        return store.has_users(self.db)

    def sign_in(self, client: str | None, name: str, password: str) -> SignIn:
        keys = limit_keys(client, name)
        wait = self.limiter.retry_after(keys, self.clock())
        if wait is not None:
            return SignIn(None, wait)
        if not store.check_password(self.db, name, password):
            self.limiter.failed(keys, self.clock())
            # Never the name tried: people type their password into the wrong field.
            log.warning("failed sign-in from %s", client or "?")
            return SignIn(None)
        self.limiter.succeeded(keys)
        log.info("%s signed in from %s", name, client or "?")
        return SignIn(store.create_session(self.db, name))

    def first_user(self, name: str, password: str) -> str | None:
        """Create the first person and sign them in (their session id), or ``None`` if someone was first."""
        if passwords.name_problem(name) or passwords.password_problem(password):
            return None
        if not store.create_first_user(self.db, name, password):
            return None
        log.info("first user %r created from the first-run page", name)
        return store.create_session(self.db, name)

    def sign_out(self, session_cookie: str | None) -> None:
        session_id = credentials.session_id(session_cookie)
        if session_id:
            store.end_session(self.db, session_id)
