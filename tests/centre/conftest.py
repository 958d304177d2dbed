"""The Centre's own database, and a second platform's, beside the test one (SQLite files or PostgreSQL databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.core.db import Database, migrate
from tests.conftest import PG_URL, _empty_tables, _reset_postgres
from tests.factories.ncmec import fake_ncmec as fake_ncmec
from tests.hub.conftest import _ensure_postgres_database


def _database(tmp_path_factory: pytest.TempPathFactory, suffix: str) -> str:
    if PG_URL:
        url = f"{PG_URL}_{suffix}"
        _ensure_postgres_database(url)
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp(suffix) / f'{suffix}.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def centre_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _database(tmp_path_factory, "centre")


@pytest.fixture(scope="session")
def second_platform_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _database(tmp_path_factory, "platform2")


def _fresh(url: str) -> Iterator[Database]:
    database = Database(url)
    _empty_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def centre_db(centre_database_url: str) -> Iterator[Database]:
    yield from _fresh(centre_database_url)


@pytest.fixture
def second_db(second_platform_url: str) -> Iterator[Database]:
    yield from _fresh(second_platform_url)
