"""``in_list``: a list of strings bound as one parameter selects exactly its members, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select

from bastion.core.db import Database, in_list

STORED = ["a", "b'c", 'd"e', "é", "f,g", "[h]", "1"]
_METADATA = MetaData()
_TABLE = Table("test_in_list", _METADATA, Column("v", String(20), primary_key=True))


@pytest.fixture
def stored(db: Database) -> Iterator[Database]:
    _METADATA.create_all(db.engine)
    with db.write() as session:
        session.execute(insert(_TABLE), [{"v": v} for v in STORED])
    yield db
    _METADATA.drop_all(db.engine)


@pytest.mark.parametrize("asked", [
    [],
    ["a"],
    ["b'c", 'd"e', "é", "missing"],
    ["f,g", "[h]", "1", "1.0", "A"],  # no coercion: "1.0" and "A" are other strings
    [f"x{i}" for i in range(2000)] + ["a"],
])
def test_members_of_the_list_are_found_and_nothing_else(stored: Database, asked: list[str]) -> None:
    with stored.read() as session:
        dialect = session.get_bind().dialect.name
        query = select(_TABLE.c.v).where(in_list(_TABLE.c.v, "ids", dialect))
        assert sorted(session.scalars(query, {"ids": asked})) == sorted(set(asked) & set(STORED))
