"""Console login back-off, lockout and the bound on concurrent password checks (the hub's: tests/hub)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.audit.models import AuditEntry
from bastion.core.audit.services import AuditAction, verify
from bastion.core.auth.models import LoginFailures
from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_user
from bastion.core.auth.throttle import LoginGuard, ThrottlePolicy
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app
from bastion.web.console import SESSION_COOKIE
from tests.factories.console import PASSWORD, csrf_of

WRONG = "not the password at all"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC))


def _platform(settings: Settings, db: Database, clock: FrozenClock) -> FastAPI:
    return create_app(settings, db=db, clock=clock, refresh=False, classifiers=())


def _login(client: TestClient, username: str, password: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    r: httpx.Response = client.post("/login", follow_redirects=False,
                                    data={"csrf_token": token, "username": username, "password": password})
    return r


def _actions(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_an_account_locks_after_five_failures_even_for_the_right_password(
        settings: Settings, db: Database, clock: FrozenClock) -> None:
    create_user(db, username="mona", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with TestClient(_platform(settings, db, clock)) as client:
        for _ in range(4):
            assert _login(client, "mona", WRONG).status_code == 401
        assert _login(client, "mona", WRONG).status_code == 401  # the fifth failure locks for 1 s
        refused = _login(client, "mona", PASSWORD)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "Too many failed logins" in refused.text
        assert SESSION_COOKIE not in refused.cookies
        clock.advance(seconds=1)
        assert _login(client, "mona", WRONG).status_code == 401  # the sixth: 2 s
        assert _login(client, "mona", PASSWORD).headers["retry-after"] == "2"
        clock.advance(seconds=2)
        assert _login(client, "mona", PASSWORD).status_code == 303  # the right one, once the lock ends
    with db.read() as session:  # a success clears the account's count, not the address's
        keys = set(session.scalars(select(LoginFailures.key)))
    assert keys == {"address:testclient"}
    actions = _actions(db)
    assert actions.count(AuditAction.LOGIN_FAILED.value) == 6
    assert actions.count(AuditAction.LOGIN_LOCKED.value) == 2
    assert verify(db).ok


def test_the_lock_survives_a_restart_and_holds_on_another_replica(
        settings: Settings, db: Database, clock: FrozenClock) -> None:
    create_user(db, username="mona", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with TestClient(_platform(settings, db, clock)) as first:
        for _ in range(8):
            clock.advance(seconds=300)  # wait out each lock (1, 2, 4 s), then fail again
            assert _login(first, "mona", WRONG).status_code == 401
    with TestClient(_platform(settings, db, clock)) as second:  # a new process on the same database
        refused = _login(second, "mona", PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "8"


def test_one_address_guessing_many_accounts_is_locked(settings: Settings, db: Database,
                                                       clock: FrozenClock) -> None:
    create_user(db, username="mona", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with TestClient(_platform(replace(settings, login_address_attempts=3), db, clock)) as client:
        for name in ("ann", "bob", "cy"):
            assert _login(client, name, WRONG).status_code == 401
        assert _login(client, "mona", PASSWORD).status_code == 429  # mona has no failures; the address has
    with db.read() as session:
        locked = session.scalars(select(LoginFailures.key).where(LoginFailures.locked_until.is_not(None))).all()
    assert locked == ["address:testclient"]


def test_failures_are_forgotten_after_a_quiet_hour(settings: Settings, db: Database, clock: FrozenClock) -> None:
    create_user(db, username="mona", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with TestClient(_platform(settings, db, clock)) as client:
        for _ in range(4):
            _login(client, "mona", WRONG)
        clock.advance(hours=1, seconds=1)
        assert _login(client, "mona", WRONG).status_code == 401  # counted as the first again: no lock
        assert _login(client, "mona", PASSWORD).status_code == 303


def test_beyond_the_concurrent_checks_a_login_is_refused_at_once_without_hashing(
        settings: Settings, db: Database, clock: FrozenClock) -> None:
    create_user(db, username="mona", password=PASSWORD, role=Role.MODERATOR, actor="test")
    app = _platform(replace(settings, login_max_concurrent=2), db, clock)
    guard: LoginGuard = app.state.login_guard
    with TestClient(app) as client:
        assert guard.slots.acquire(blocking=False) and guard.slots.acquire(blocking=False)  # two checks running
        try:
            busy = _login(client, "mona", PASSWORD)
        finally:
            guard.slots.release()
            guard.slots.release()
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        with db.read() as session:  # nothing was checked, so nothing counted
            assert session.scalars(select(LoginFailures)).all() == []
        assert _login(client, "mona", PASSWORD).status_code == 303


def test_the_lockout_policy_doubles_to_a_cap() -> None:
    policy = ThrottlePolicy(base_seconds=1.0, cap_seconds=900.0)
    assert [policy.lock_seconds(n, 5) for n in (1, 4, 5, 6, 7, 14, 15, 1000)] == [0, 0, 1, 2, 4, 512, 900, 900]
