"""Console logins: back-off per account and per address, and a bound on password checks running at once.

A password check costs 64 MiB of memory and tens of milliseconds of CPU (argon2id): unthrottled, anyone who can
reach the login form can guess passwords as fast as the server hashes and exhaust its memory with a few dozen
clients. So each login attempt passes three gates, cheapest first:

1. **Back-off.** Failed attempts are counted per account (``account:<username>``) and per client address
   (``address:<ip>``) in the database (``login_failures``), so a restart or another replica sees the same count.
   The first few failures are free; after that each one locks the key for twice as long as the one before, up to a
   cap. While a key is locked, every attempt is refused at once (429), even with the right password, and no hash is
   computed. A quiet period forgets the failures.
2. **Concurrency.** At most ``max_concurrent`` checks hash at the same time in a process; one more is answered 503
   at once instead of waiting (and holding a worker thread and a request body) for a slot.
3. **The check itself** (``services.check_password``); a failure is counted and audited, a success clears the
   account's count (never the address's: one valid account must not reset a password-spraying address).

Failures and lockouts go to the audit chain (``auth.login_failed``, ``auth.login_locked``), never the password.

Don't: lock on the username alone (anyone could lock out anyone for free); the address count keeps a single
attacker's cost high while the account count stays low enough to be a short, capped inconvenience.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bastion.core.audit.services import AuditAction, record
from bastion.core.auth.models import LoginFailures, User
from bastion.core.auth.services import check_password
from bastion.core.clock import Clock, SystemClock
from bastion.core.db import Database, dialect_insert

if TYPE_CHECKING:
    from bastion.core.config import Settings


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures are free and how the lock grows after them."""

    #: Failures of one account before it locks (a user mistyping a few times is never locked).
    account_free: int = 5
    #: Failures from one address before it locks (higher: an office behind one address shares it).
    address_free: int = 20
    #: The first lock; each further failure doubles it.
    base_seconds: float = 1.0
    #: The longest lock: a real user locked out by someone else waits at most this long.
    cap_seconds: float = 900.0
    #: Failures older than this (since the last one) are forgotten.
    forget_after_seconds: float = 3600.0

    def lock_seconds(self, failures: int, free: int) -> float:
        """The lock after the ``failures``-th failure: none while free, then base, 2 x base, 4 x base... capped."""
        over = failures - free
        if over < 0:
            return 0.0
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(over, 64))


class Outcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"  # wrong username or password (which one is never said)
    LOCKED = "locked"  # too many failures: refused without checking, until ``retry_after``
    BUSY = "busy"  # every password-check slot was taken: refused without checking


@dataclass(frozen=True)
class LoginAttempt:
    """What became of one attempt; ``retry_after`` (whole seconds) for LOCKED and BUSY."""

    outcome: Outcome
    user: User | None = None
    retry_after: int = 0

    @classmethod
    def ok(cls, user: User) -> LoginAttempt:
        return cls(Outcome.OK, user)

    @classmethod
    def failed(cls) -> LoginAttempt:
        return cls(Outcome.FAILED)

    @classmethod
    def locked(cls, seconds: float) -> LoginAttempt:
        return cls(Outcome.LOCKED, retry_after=max(1, math.ceil(seconds)))

    @classmethod
    def busy(cls) -> LoginAttempt:
        return cls(Outcome.BUSY, retry_after=1)


def account_key(username: str) -> str:
    return f"account:{username[:200]}"


def address_key(address: str) -> str:
    return f"address:{address[:200]}"


class LoginGuard:
    """One per app process: the back-off lives in the database, the concurrency bound in this object."""

    def __init__(self, db: Database, *, max_concurrent: int = 4, policy: ThrottlePolicy | None = None,
                 clock: Clock | None = None) -> None:
        if max_concurrent < 1:
            raise ValueError("at least one password check must be allowed at a time")
        self.db = db
        self.policy = policy or ThrottlePolicy()
        self.clock = clock or SystemClock()
        self.max_concurrent = max_concurrent
        self.slots = threading.BoundedSemaphore(max_concurrent)

    @classmethod
    def from_settings(cls, db: Database, settings: Settings, clock: Clock | None = None) -> LoginGuard:
        policy = ThrottlePolicy(account_free=settings.login_account_attempts,
                                address_free=settings.login_address_attempts,
                                cap_seconds=float(settings.login_lockout_max_seconds))
        return cls(db, max_concurrent=settings.login_max_concurrent, policy=policy, clock=clock)

    def attempt(self, username: str, password: str, address: str) -> LoginAttempt:
        """Check a login through the three gates (see the module's docstring)."""
        keys = (account_key(username), address_key(address))
        wait = self.locked_for(keys)
        if wait > 0:
            return LoginAttempt.locked(wait)
        if not self.slots.acquire(blocking=False):
            return LoginAttempt.busy()
        try:
            user = check_password(self.db, username, password)
        finally:
            self.slots.release()
        if user is None:
            self._count_failure(username, address)
            return LoginAttempt.failed()
        with self.db.write() as session:
            session.execute(delete(LoginFailures).where(LoginFailures.key == keys[0]))
        return LoginAttempt.ok(user)

    def locked_for(self, keys: tuple[str, ...]) -> float:
        """Seconds until every one of ``keys`` may be tried again (0 when none is locked)."""
        now = self.clock.now()
        with self.db.read() as session:
            until = session.scalars(select(LoginFailures.locked_until).where(LoginFailures.key.in_(keys))).all()
        return max([(u - now).total_seconds() for u in until if u is not None and u > now], default=0.0)

    def _count_failure(self, username: str, address: str) -> None:
        now = self.clock.now()
        forget_before = now - dt.timedelta(seconds=self.policy.forget_after_seconds)
        actor = address_key(address)
        with self.db.write() as session:
            session.execute(delete(LoginFailures).where(LoginFailures.last_failed_at < forget_before))
            account = _increment(self.db, session, account_key(username), now)
            by_address = _increment(self.db, session, address_key(address), now)
            record(self.db, session, actor=actor, action=AuditAction.LOGIN_FAILED,
                   subject=f"user:{username[:200]}", details={"failures": account.failures}, clock=self.clock)
            for row, free in ((account, self.policy.account_free), (by_address, self.policy.address_free)):
                seconds = self.policy.lock_seconds(row.failures, free)
                if seconds > 0:
                    row.locked_until = now + dt.timedelta(seconds=seconds)
                    record(self.db, session, actor=actor, action=AuditAction.LOGIN_LOCKED, subject=row.key,
                           details={"failures": row.failures, "seconds": seconds}, clock=self.clock)


def _increment(db: Database, session: Session, key: str, now: dt.datetime) -> LoginFailures:
    """Add one failure to ``key``'s row, creating it; the row is locked until commit, so replicas count right."""
    session.execute(dialect_insert(db.engine, LoginFailures).values(key=key, failures=0, last_failed_at=now)
                    .on_conflict_do_nothing(index_elements=["key"]))
    row = session.scalars(select(LoginFailures).where(LoginFailures.key == key).with_for_update()).one()
    row.failures += 1
    row.last_failed_at = now
    return row
