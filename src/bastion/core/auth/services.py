"""Issue and check credentials. Secrets are shown once, stored hashed, and never logged."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from time import monotonic

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from bastion.core.audit.services import AuditAction, record
from bastion.core.auth.models import ApiToken, ConsoleSession, User
from bastion.core.auth.roles import Role
from bastion.core.clock import Clock, SystemClock
from bastion.core.db import Database

TOKEN_PREFIX = "bst"
_hasher = PasswordHasher()
# Verifying against a fixed dummy hash keeps unknown-user logins as slow as wrong-password ones.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token or a console user, and the one role they act in."""

    kind: str  # "token" or "user"
    id: int
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """Unique per credential: token names may repeat, so a token is named by its id too."""
        return f"token:{self.id}:{self.name}" if self.kind == "token" else f"{self.kind}:{self.name}"


def person_of(session: Session, actor: str) -> str:
    """The person behind an actor, for rules that need two people (four eyes): a token stands for whoever minted
    it (``created_by``, itself a person's actor), so one person holding a session and a token of their own is still
    one person. Anything else is its own person."""
    kind, _, rest = actor.partition(":")
    token_id = rest.partition(":")[0]
    if kind != "token" or not (token_id.isascii() and token_id.isdigit()) or len(token_id) > 18:
        return actor
    minted_by = session.scalar(select(ApiToken.created_by).where(ApiToken.id == int(token_id)))
    return person_of(session, minted_by) if minted_by and minted_by != actor else actor


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(db: Database, *, role: Role, name: str, actor: str, clock: Clock | None = None) -> str:
    """Create a token and return it; this is the only time its secret exists in clear."""
    secret = secrets.token_urlsafe(32)
    now = (clock or SystemClock()).now()
    with db.write() as session:
        token = ApiToken(name=name, role=role.value, secret_sha256=_sha256(secret), created_at=now, created_by=actor)
        session.add(token)
        session.flush()
        record(db, session, actor=actor, action=AuditAction.TOKEN_CREATED, subject=f"token:{token.id}",
               details={"name": name, "role": role.value}, clock=clock)
        return f"{TOKEN_PREFIX}_{token.id}_{secret}"


def revoke_token(db: Database, token_id: int, *, actor: str, clock: Clock | None = None) -> bool:
    now = (clock or SystemClock()).now()
    with db.write() as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.revoked_at is not None:
            return False
        token.revoked_at = now
        record(db, session, actor=actor, action=AuditAction.TOKEN_REVOKED, subject=f"token:{token_id}",
               details={"name": token.name}, clock=clock)
    forget_checked_tokens()  # after the commit, so no request re-reads the row before the revocation is visible
    return True


#: The four columns a request's token check needs, built once: every API request runs it, and loading the row as an
#: ORM object (``session.get``) cost twice as much.
_TOKEN_CHECK = select(ApiToken.secret_sha256, ApiToken.revoked_at, ApiToken.name, ApiToken.role).where(
    ApiToken.id == bindparam("id"))

#: How long a token that passed the check is trusted without reading its row again. A revocation holds at once in
#: the process that made it (``revoke_token`` empties the cache) and within this many seconds in every other one.
TOKEN_CACHE_SECONDS = 1.0
_TOKEN_CACHE_MAX = 10_000
#: (database URL, SHA-256 of the whole presented token) -> (monotonic expiry, principal). Only tokens that passed.
_checked: dict[tuple[str, str], tuple[float, Principal]] = {}
_checked_lock = threading.Lock()
#: How many times the cache was emptied: a check caches its row only if no revocation came since it read it.
_forgotten = 0


def authenticate_token(db: Database, presented: str, clock: Clock | None = None) -> Principal | None:
    """The token's principal, or None (malformed, unknown, revoked, wrong secret). A token that passed is not read
    again for ``TOKEN_CACHE_SECONDS`` (one read per request was a tenth of an upload's intake)."""
    parts = presented.split("_", 2)
    if (len(parts) != 3 or parts[0] != TOKEN_PREFIX or not (parts[1].isascii() and parts[1].isdigit())
            or len(parts[1]) > 18):
        return None
    cached = recently_checked(db, presented)
    if cached is not None:
        return cached
    token_id = int(parts[1])
    generation = _forgotten  # a revocation between this read and the caching below must win
    with db.read() as session:
        row = session.execute(_TOKEN_CHECK, {"id": token_id}).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_sha256, _sha256(parts[2])):
        return None
    principal = Principal("token", token_id, row.name, Role(row.role))
    with _checked_lock:
        if generation == _forgotten:  # else the row may predate a revocation: answer it, do not keep it
            if len(_checked) >= _TOKEN_CACHE_MAX:
                _checked.clear()
            _checked[(db.url, _sha256(presented))] = (monotonic() + TOKEN_CACHE_SECONDS, principal)
    return principal


def recently_checked(db: Database, presented: str) -> Principal | None:
    """The principal of a token that passed ``authenticate_token`` less than ``TOKEN_CACHE_SECONDS`` ago, else None;
    never reads the database (an async caller may use it on the event loop)."""
    cached = _checked.get((db.url, _sha256(presented)))
    return cached[1] if cached is not None and cached[0] > monotonic() else None


def forget_checked_tokens() -> None:
    """Make the next request of every token read its row again (after a revocation in this process); a check that
    read its row before this call does not keep it."""
    global _forgotten
    with _checked_lock:
        _checked.clear()
        _forgotten += 1


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def create_user(
    db: Database, *, username: str, password: str, role: Role, actor: str, clock: Clock | None = None
) -> User:
    if len(password) < 12:
        raise ValueError("password must be at least 12 characters")
    if not username or len(username) > 200:
        raise ValueError("username must be 1-200 characters")
    now = (clock or SystemClock()).now()
    with db.write() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise ValueError(f"user {username!r} exists already")
        user = User(username=username, role=role.value, password_hash=_hasher.hash(password), created_at=now)
        session.add(user)
        session.flush()
        record(db, session, actor=actor, action=AuditAction.USER_CREATED, subject=f"user:{username}",
               details={"role": role.value}, clock=clock)
        return user


def check_password(db: Database, username: str, password: str) -> User | None:
    with db.read() as session:
        user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None and not user.disabled else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return user if user is not None and not user.disabled else None


@dataclass(frozen=True)
class NewSession:
    cookie: str
    csrf_token: str


def open_session(db: Database, user: User, ttl_seconds: int, clock: Clock | None = None) -> NewSession:
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = (clock or SystemClock()).now() + dt.timedelta(seconds=ttl_seconds)
    with db.write() as session:
        session.add(ConsoleSession(secret_sha256=_sha256(secret), user_id=user.id, csrf_token=csrf,
                                   expires_at=expires))
    return NewSession(secret, csrf)


@dataclass(frozen=True)
class SessionUser:
    principal: Principal
    csrf_token: str


def session_user(db: Database, cookie: str, ttl_seconds: int, clock: Clock | None = None) -> SessionUser | None:
    """The user behind a console cookie; sliding expiry, so an active moderator stays logged in."""
    now = (clock or SystemClock()).now()
    with db.write() as session:
        row = session.execute(
            select(ConsoleSession, User)
            .join(User, User.id == ConsoleSession.user_id)
            .where(ConsoleSession.secret_sha256 == _sha256(cookie))
        ).first()
        if row is None:
            return None
        console_session, user = row
        if console_session.expires_at <= now or user.disabled:
            session.delete(console_session)
            return None
        console_session.expires_at = now + dt.timedelta(seconds=ttl_seconds)
        return SessionUser(Principal("user", user.id, user.username, Role(user.role)), console_session.csrf_token)


def close_session(db: Database, cookie: str) -> None:
    with db.write() as session:
        session.execute(update(ConsoleSession).where(ConsoleSession.secret_sha256 == _sha256(cookie))
                        .values(expires_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC)))
