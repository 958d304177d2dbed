"""Tech Against Terrorism's hash list end to end against the fake TCAP on loopback: login for a token, pages after
a checkpoint, deletions, categories by ideology, a refused login."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.exchanges import services
from bastion.exchanges.interfaces import ExchangeKind, FetchFailed, InvalidExchange, Opinion
from bastion.matching import services as banks
from bastion.matching.models import BankEntry
from tests.factories.exchanges import TAT_PASSWORD, TAT_USER, FakeTat
from tests.factories.exchanges import tat as tat

ENV = {"TAT": f"{TAT_USER}:{TAT_PASSWORD}"}


def pdq(n: int) -> str:
    return hashlib.sha256(f"tat{n}".encode()).hexdigest()


@pytest.fixture
def tcap(db: Database, admin: Principal, tat: FakeTat) -> FakeTat:
    banks.create_bank(db, "TERROR", actor=admin)
    services.add_exchange(db, services.NewExchange("tcap", ExchangeKind.TAT, "TERROR", categories=("islamist",),
                                                   settings={"base_url": tat.url}, credentials_env="TAT"),
                          actor=admin)
    for n in range(1, 5):
        tat.put(n, pdq(n), updated=1_760_000_000.5 + n)
    tat.put(5, pdq(5), updated=1_760_000_006.5, ideology="far-right")  # not a category this exchange takes
    tat.put(6, hashlib.md5(b"clip").hexdigest(), updated=1_760_000_007.5, algorithm="MD5")
    return tat


def held(db: Database) -> dict[tuple[str, str], str]:
    with db.read() as session:
        return {(e.signal_type, e.value): e.category for e in session.scalars(select(BankEntry))}


def test_the_list_is_paged_in_after_its_checkpoint_and_deletions_leave(db: Database, admin: Principal,
                                                                         tcap: FakeTat) -> None:
    first = services.fetch(db, "tcap", actor=admin, env=ENV)
    assert (first.pages, first.records, first.added) == (3, 6, 5)
    assert held(db)[("pdq", pdq(1))] == "terrorist_content" and ("pdq", pdq(5)) not in held(db)
    assert services.exchange_status(db, "tcap", admin, ENV).settings["base_url"] == tcap.url
    tcap.put(2, pdq(2), updated=1_760_000_010.5, deleted=True)
    tcap.put(7, pdq(7), updated=1_760_000_011.5)
    tcap.script.calls.clear()
    again = services.fetch(db, "tcap", actor=admin, env=ENV)
    assert (again.records, again.added, again.removed) == (2, 1, 1)  # only what came after the checkpoint
    assert any("after=1760000007.5%2C6" in call for call in tcap.script.calls)
    assert ("pdq", pdq(2)) not in held(db) and ("pdq", pdq(7)) in held(db)


def test_a_refused_login_is_an_error_without_the_password(db: Database, admin: Principal, tcap: FakeTat) -> None:
    with pytest.raises(FetchFailed, match="HTTP 400"):
        services.fetch(db, "tcap", actor=admin, env={"TAT": f"{TAT_USER}:wrong-secret"})
    assert "wrong-secret" not in services.exchange_status(db, "tcap", admin, ENV).last_error
    assert held(db) == {}


def test_tat_takes_no_feedback(db: Database, admin: Principal, tcap: FakeTat) -> None:
    services.fetch(db, "tcap", actor=admin, env=ENV)
    with db.read() as session:
        entry_id = session.scalar(select(BankEntry.id).where(BankEntry.value == pdq(1)))
    assert entry_id is not None
    with pytest.raises(InvalidExchange, match="tcap take no true_positive feedback"):
        services.send_feedback(db, entry_id, Opinion.TRUE_POSITIVE, actor=admin)
