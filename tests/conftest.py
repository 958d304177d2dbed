"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when BASTION_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.core.sealing import new_key
from bastion.models import metadata
from bastion.web.app import create_app
from tests.factories.receiver import receiver  # noqa: F401 - a shared fixture

PG_URL = os.environ.get("BASTION_TEST_DATABASE_URL", "")


def _reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        _reset_postgres(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'bastion.db'}"
    migrate(url)
    return url


def _empty_tables(db: Database) -> None:
    with db.write() as session:
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in metadata.sorted_tables)
            session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                session.execute(table.delete())


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A database with the current schema and no rows."""
    database = Database(database_url)
    _empty_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, max_upload_bytes=2 * 1024 * 1024, index_refresh_seconds=0.1,
                    spool_dir=tmp_path, media_key=new_key())


@pytest.fixture
def admin() -> auth.Principal:
    return auth.Principal("cli", 0, "test-admin", Role.ADMIN)


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings, db=db)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_token(db: Database) -> Callable[[Role], str]:
    def make(role: Role) -> str:
        return auth.create_token(db, role=role, name=f"test {role.value}", actor="test")

    return make


@pytest.fixture
def auth_header(make_token: Callable[[Role], str]) -> Callable[[Role], dict[str, str]]:
    def header(role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(role)}"}

    return header
