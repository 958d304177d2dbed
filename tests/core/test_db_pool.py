"""PostgreSQL's pool: a connection is pinged only after it sat idle (``core/db.py: PING_AFTER_IDLE_SECONDS``).

Run on PostgreSQL only (CI sets BASTION_TEST_DATABASE_URL); SQLite has no pool of server connections to ping."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bastion.core import db as db_module
from bastion.core.db import Database


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


def test_without_the_ping_a_dropped_connection_fails_once_and_the_pool_is_renewed(
        pg: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the ping saves a request from; and what a connection that dies in steady use costs: one failed
    statement, after which SQLAlchemy replaces every connection the pool holds."""
    dropped = _backend(pg)
    _terminate(pg, dropped)
    with pytest.raises(DBAPIError):
        _backend(pg)
    assert _backend(pg) != dropped
