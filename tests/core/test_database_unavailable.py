"""A database that cannot take a request now (a lost connection, SQLite still locked) is answered 503 with
``Retry-After``, quoting nothing of the driver's message; any other error of the driver stays a 500."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from bastion.core import db as db_module
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.http import install_problem_handlers
from bastion.minors.models import AgeRecord
from bastion.web.app import create_app

SECRET = "account-4711"  # stands for a parameter the driver's message may quote


def _raising(error: Exception) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


def _lost() -> DBAPIError:
    return DBAPIError(f"SELECT * FROM t WHERE id = '{SECRET}'", {"id": SECRET}, Exception("server closed the "
                      "connection unexpectedly"), connection_invalidated=True)


def test_a_lost_connection_is_a_503_to_send_again_that_quotes_nothing() -> None:
    answer = _raising(_lost()).get("/boom")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Service unavailable" and SECRET not in answer.text and "SELECT" not in answer.text


class _ServerError(Exception):
    """A server driver's error with its SQLSTATE, as psycopg's carry it."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"error {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("sqlstate", "status"), [
    ("57P01", 503),  # the server shutting down (admin_shutdown)
    ("08006", 503),  # the connection failed
    ("40P01", 503),  # a deadlock: the same request may pass
    ("53300", 503),  # too many connections
    ("54000", 500),  # a row too big for its index: it never will
    ("42P01", 500),  # no such table: a mistake
])
def test_a_server_error_is_a_503_only_when_the_same_request_may_pass_later(sqlstate: str, status: int) -> None:
    error = OperationalError("SELECT 1", {}, _ServerError(sqlstate))
    assert _raising(error).get("/boom").status_code == status


def test_a_server_refusing_the_connection_is_a_503() -> None:
    """A connection never made has no statement (SQLAlchemy's error at connect) and often no SQLSTATE."""
    refused = OperationalError(None, None, Exception("connection refused: is the server running?"))
    assert _raising(refused).get("/boom").status_code == 503


def test_sqlite_still_locked_is_a_503_and_other_driver_errors_stay_500() -> None:
    locked = OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
    assert _raising(locked).get("/boom").status_code == 503
    other = OperationalError(f"INSERT '{SECRET}'", None, sqlite3.OperationalError("no such table: t"))
    answer = _raising(other).get("/boom")
    assert answer.status_code == 500 and SECRET not in answer.text


def test_a_write_that_waits_past_the_busy_timeout_is_a_503_and_changes_nothing(
        settings: Settings, db: Database, auth_header: Callable[[Role], dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's one writer")
    monkeypatch.setattr(db_module, "SQLITE_BUSY_SECONDS", 0.2)
    platform = auth_header(Role.PLATFORM)
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.write():
            holding.set()
            release.wait(10)

    with TestClient(create_app(settings, db=db, refresh=False)) as api:
        other = threading.Thread(target=writer)
        other.start()
        try:
            assert holding.wait(10)
            answer = api.put("/v1/accounts/teen/age", json={"years": 15}, headers=platform)
        finally:
            release.set()
            other.join(10)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        with db.read() as session:
            assert session.scalars(select(AgeRecord)).all() == []
        assert api.put("/v1/accounts/teen/age", json={"years": 15}, headers=platform).status_code == 200
