"""The hub's own database: a second SQLite file, or a second PostgreSQL database beside the test one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from bastion.core.db import Database, migrate
from tests.conftest import PG_URL, _empty_tables, _reset_postgres


def _ensure_postgres_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    engine = create_engine(f"{base}/postgres".replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


@pytest.fixture(scope="session")
def hub_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        url = f"{PG_URL}_hub"
        _ensure_postgres_database(url)
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('hub') / 'hub.db'}"
    migrate(url)
    return url


@pytest.fixture
def hub_db(hub_database_url: str) -> Iterator[Database]:
    database = Database(hub_database_url)
    _empty_tables(database)
    yield database
    database.dispose()
