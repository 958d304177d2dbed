"""The hub's console login goes through the same back-off as the platform's (tests/web/test_login_throttle.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from bastion.core.audit.services import AuditAction
from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_user
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hub.app import create_hub_app
from bastion.web.hub_pages import with_console
from tests.factories.console import PASSWORD
from tests.web.test_login_throttle import WRONG, _actions, _login


@pytest.fixture
def hub(settings: Settings, hub_db: Database) -> Iterator[TestClient]:
    clock = FrozenClock(dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC))
    app = with_console(create_hub_app(replace(settings, hub_database_url=hub_db.url), db=hub_db, clock=clock,
                                      deliver=False))
    with TestClient(app) as client:
        yield client


def test_the_hub_console_login_locks_the_same_way(hub: TestClient, hub_db: Database) -> None:
    create_user(hub_db, username="anna", password=PASSWORD, role=Role.AUTHORITY, actor="test")
    for _ in range(5):
        assert _login(hub, "anna", WRONG).status_code == 401
    assert _login(hub, "anna", PASSWORD).status_code == 429
    assert AuditAction.LOGIN_LOCKED.value in _actions(hub_db)
