"""PostgreSQL's bank import: the plain INSERT it tries first, and the foreign key's check it may take over.

The answers on both databases are the same (``test_services.py`` compares them with line-by-line adds); these
tests pin what only PostgreSQL does: when the per-row foreign key check may be replaced by one lock on the bank
row, and that entries so imported still belong to their bank (its deletion takes them)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.matching import services as banks
from bastion.matching.models import Bank, BankEntry


@pytest.fixture
def pg(db: Database) -> Database:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's import path (CI runs it with BASTION_TEST_DATABASE_URL)")
    return db


@pytest.fixture
def driver(pg: Database) -> Iterator[Any]:
    """psycopg's own connection in an open transaction, rolled back after (roles and triggers made here vanish)."""
    raw = pg.engine.raw_connection()
    try:
        yield raw.driver_connection
    finally:
        raw.rollback()
        raw.close()


def _body(*ranges: range) -> str:
    return "signal_type,value,category\n" + "".join(f"pdq,{n:064x},tco\n" for r in ranges for n in r)


def test_a_superuser_import_checks_the_bank_itself(driver: Any) -> None:
    if not driver.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
        pytest.skip("the test database's role is not a superuser")
    assert banks._checks_bank_itself(driver) is True


def test_a_role_without_the_right_keeps_the_per_row_check(driver: Any) -> None:
    role = f"bastion_import_{uuid.uuid4().hex[:8]}"
    driver.execute(f"CREATE ROLE {role}")
    driver.execute(f"SET ROLE {role}")
    assert banks._checks_bank_itself(driver) is False


def test_a_trigger_of_its_own_on_bank_entries_keeps_the_per_row_check(driver: Any) -> None:
    """``session_replication_role = replica`` would skip such a trigger too: the import then leaves it alone."""
    driver.execute("CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'")
    driver.execute("CREATE TRIGGER bastion_test_noop BEFORE INSERT ON bank_entries FOR EACH ROW "
                   "EXECUTE FUNCTION pg_temp.noop()")
    assert banks._checks_bank_itself(driver) is False


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, bool, str]]:
    """Each INSERT a flush runs: whether it checked the bank itself, whether it skipped held values, and how it
    ended ("added" or the error's name)."""
    calls: list[tuple[bool, bool, str]] = []
    insert = banks._insert_lines

    def spy(cur: Any, plan: Any, *args: Any, skip_held: bool, **kwargs: Any) -> int:
        try:
            added = insert(cur, plan, *args, skip_held=skip_held, **kwargs)
        except Exception as exc:
            calls.append((plan.checks_bank_itself, skip_held, type(exc).__name__))
            raise
        calls.append((plan.checks_bank_itself, skip_held, "added"))
        return added

    monkeypatch.setattr(banks, "_insert_lines", spy)
    return calls


@pytest.mark.parametrize("checks_itself", [True, False], ids=["bank-row-lock", "per-row-check"])
def test_imported_entries_belong_to_their_bank(pg: Database, admin: Principal, monkeypatch: pytest.MonkeyPatch,
                                               checks_itself: bool, writes: list[tuple[bool, bool, str]]) -> None:
    """Four flushes, the second holding a value the bank has (the plain INSERT fails, ON CONFLICT redoes it and the
    rest), then the bank deleted: the foreign key still takes every imported entry with it."""
    if checks_itself:
        raw = pg.engine.raw_connection()
        try:
            if not banks._checks_bank_itself(raw.driver_connection):
                pytest.skip("the test database's role may not set session_replication_role")
        finally:
            raw.close()
    else:  # what a role without the right to set session_replication_role gets
        monkeypatch.setattr(banks, "_checks_bank_itself", lambda driver: False)
    monkeypatch.setattr(banks, "IMPORT_CHUNK", 10)
    monkeypatch.setattr(banks, "IMPORT_FLUSH_LINES", 10)
    banks.create_bank(pg, "TERRORIST_CONTENT", actor=admin)
    banks.create_bank(pg, "OTHER", actor=admin)
    banks.import_csv(pg, "OTHER", io.StringIO(_body(range(5))), actor=admin)
    banks.add_entry(pg, "TERRORIST_CONTENT", banks.NewEntry.parse("pdq", f"{15:064x}", "tco"), actor=admin)
    writes.clear()
    result = banks.import_csv(pg, "TERRORIST_CONTENT", io.StringIO(_body(range(30), range(25, 30))), actor=admin)
    assert (result.lines, result.added, result.duplicates) == (35, 29, 6)
    assert writes == [(checks_itself, False, "added"), (checks_itself, False, "UniqueViolation"),
                      (checks_itself, True, "added"), (checks_itself, True, "added"), (checks_itself, True, "added")]
    with pg.write() as session:  # no service deletes a bank; the cascade is the foreign key's
        session.execute(delete(Bank).where(Bank.name == "TERRORIST_CONTENT"))
    with pg.read() as session:
        assert session.scalar(select(func.count()).select_from(BankEntry)) == 5


def test_a_value_twice_in_one_flush_goes_in_once_by_the_plain_insert(pg: Database, admin: Principal,
                                                                    writes: list[tuple[bool, bool, str]]) -> None:
    banks.create_bank(pg, "TERRORIST_CONTENT", actor=admin)
    result = banks.import_csv(pg, "TERRORIST_CONTENT", io.StringIO(_body(range(10), range(3), range(10, 12))),
                              actor=admin)
    assert (result.lines, result.added, result.duplicates) == (15, 12, 3)
    assert [(skip, how) for _, skip, how in writes] == [(False, "added")]  # no fallback: the first line of each
    with pg.read() as session:
        ids = {value: id_ for value, id_ in session.execute(select(BankEntry.value, BankEntry.id))}
    assert sorted(ids, key=ids.__getitem__) == [f"{n:064x}" for n in range(12)]  # ids in the file's order
