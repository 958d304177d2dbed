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


@pytest.mark.parametrize("checks_itself", [True, False], ids=["bank-row-lock", "per-row-check"])
def test_imported_entries_belong_to_their_bank(pg: Database, admin: Principal, monkeypatch: pytest.MonkeyPatch,
                                               checks_itself: bool) -> None:
    """Three flushes, the second holding a value the bank has (the plain INSERT fails, ON CONFLICT redoes it and
    the third), then the bank deleted: the foreign key still takes every imported entry with it."""
    if not checks_itself:  # what a role without the right to set session_replication_role gets
        monkeypatch.setattr(banks, "_checks_bank_itself", lambda driver: False)
    monkeypatch.setattr(banks, "IMPORT_CHUNK", 10)
    monkeypatch.setattr(banks, "IMPORT_FLUSH_LINES", 10)
    banks.create_bank(pg, "TERRORIST_CONTENT", actor=admin)
    banks.create_bank(pg, "OTHER", actor=admin)
    banks.import_csv(pg, "OTHER", io.StringIO(_body(range(5))), actor=admin)
    banks.add_entry(pg, "TERRORIST_CONTENT", banks.NewEntry.parse("pdq", f"{15:064x}", "tco"), actor=admin)
    result = banks.import_csv(pg, "TERRORIST_CONTENT", io.StringIO(_body(range(30), range(25, 30))), actor=admin)
    assert (result.lines, result.added, result.duplicates) == (35, 29, 6)
    with pg.write() as session:  # no service deletes a bank; the cascade is the foreign key's
        session.execute(delete(Bank).where(Bank.name == "TERRORIST_CONTENT"))
    with pg.read() as session:
        assert session.scalar(select(func.count()).select_from(BankEntry)) == 5
