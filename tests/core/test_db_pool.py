"""PostgreSQL's pool: a connection is pinged only after it sat idle (``core/db.py: PING_AFTER_IDLE_SECONDS``).

Run on PostgreSQL only (CI sets BASTION_TEST_DATABASE_URL); SQLite has no pool of server connections to ping."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bastion.core import db as db_module
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app


@pytest.fixture
def pg(db: Database) -> Database:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's pool (CI runs it with BASTION_TEST_DATABASE_URL)")
    return db


def _backend(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(text("SELECT pg_backend_pid()")))


def _terminate(db: Database, pid: int) -> None:
    """End one server connection from outside the pool, as a restart or a proxy's idle timeout would."""
    outside = Database(db.url)
    try:
        with outside.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
    finally:
        outside.dispose()


def _pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the pings the pool sends (the dialect's own ``do_ping``, still run)."""
    pings: list[int] = []
    ping = db.engine.dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        pings.append(1)
        return ping(dbapi_conn)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_in_steady_use_is_not_pinged_and_an_idle_one_is(pg: Database,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _pings(pg, monkeypatch)
    for _ in range(5):
        _backend(pg)
    assert pings == []
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # every connection has now been idle too long
    for _ in range(5):
        _backend(pg)
    assert len(pings) == 5


def test_a_connection_dropped_while_idle_is_replaced_before_a_request_meets_it(
        pg: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    dropped = _backend(pg)
    _terminate(pg, dropped)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend(pg) != dropped  # the ping found it gone: a new connection answered


def test_a_connection_dropped_soon_after_its_use_fails_one_request_and_the_pool_is_renewed(pg: Database) -> None:
    """The price of pinging only after idle: a connection dropped less than ``PING_AFTER_IDLE_SECONDS`` after its
    last use (a restart) fails the request that takes it; SQLAlchemy then replaces every connection the pool holds."""
    dropped = _backend(pg)
    _terminate(pg, dropped)
    with pytest.raises(DBAPIError) as failed:
        _backend(pg)
    assert failed.value.connection_invalidated  # what the API answers 503, to send again
    assert _backend(pg) != dropped


def test_the_request_that_meets_a_dropped_connection_is_told_to_send_again(
        pg: Database, settings: Settings, auth_header: Callable[[Role], dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTP, the price above is a 503 with ``Retry-After`` (``core/http.py``), and the request sent again is
    answered. Every connection of the app's pool is dropped (a restart), found by its own application name."""
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 3600.0)  # a slow run pings nothing away
    name = f"bastion-test-{uuid.uuid4().hex[:8]}"
    own = Database(f"{pg.url}{'&' if '?' in pg.url else '?'}application_name={name}")
    check = {"actor": {"account_id": "a", "age": 30}, "target": {"account_id": "b", "age": 14}, "action": "dm"}
    platform = auth_header(Role.PLATFORM)
    try:
        with TestClient(create_app(settings, db=own, refresh=False)) as api:
            assert api.post("/v1/interactions/check", json=check, headers=platform).status_code == 200
            outside = Database(pg.url)
            with outside.engine.connect() as other:
                ended = other.scalars(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                           "WHERE application_name = :name"), {"name": name}).all()
                other.commit()
            outside.dispose()
            assert ended and all(ended)
            answer = api.post("/v1/interactions/check", json=check, headers=platform)
            assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
            assert api.post("/v1/interactions/check", json=check, headers=platform).json()["decision"] == "deny"
    finally:
        own.dispose()


def test_a_failed_ping_renews_every_connection_the_pool_holds(pg: Database,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart drops them all: once one idle connection fails its ping, none of the others is handed out."""
    with pg.engine.connect() as a, pg.engine.connect() as b, pg.engine.connect() as c:
        dropped = {int(x.scalar(text("SELECT pg_backend_pid()"))) for x in (a, b, c)}
    for pid in dropped:
        _terminate(pg, pid)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend(pg) not in dropped
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 3600.0)  # no more pings: only the renewal can help
    with pg.engine.connect() as a, pg.engine.connect() as b, pg.engine.connect() as c:
        assert not {int(x.scalar(text("SELECT pg_backend_pid()"))) for x in (a, b, c)} & dropped
