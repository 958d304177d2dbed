"""NCMEC hash sharing end to end against the fake on loopback: time ranges, XML pages, deleted entries, Basic auth,
restricted banks only, nothing shown outside child-safety roles, feedback as NCMEC's votes."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox.services import Routes, deliver_due
from bastion.exchanges import services
from bastion.exchanges.interfaces import ExchangeKind, ExchangeNotFound, FetchFailed, InvalidExchange, Opinion
from bastion.exchanges.services import ExchangeMessage
from bastion.exchanges.tasks import FeedbackSender
from bastion.matching import services as banks
from bastion.matching.models import BankEntry
from tests.factories.exchanges import NCMEC_PASSWORD, NCMEC_USER, FakeNcmec, NcmecEntry

ENV = {"TEST_NCMEC": f"{NCMEC_USER}:{NCMEC_PASSWORD}"}
CURATOR = Principal("user", 2, "cura", Role.CURATOR)
SPECIALIST = Principal("user", 3, "cs", Role.CHILD_SAFETY)


def pdq(n: int) -> str:
    return hashlib.sha256(f"pdq{n}".encode()).hexdigest()


def md5(n: int) -> str:
    return hashlib.md5(f"md5{n}".encode()).hexdigest()


@pytest.fixture
def ncmec(db: Database, admin: Principal, ncmec_hashes: FakeNcmec) -> FakeNcmec:
    banks.create_bank(db, "CSAM_NCMEC", actor=admin, restricted=True)
    services.add_exchange(db, services.NewExchange(
        "ncmec", ExchangeKind.NCMEC, "CSAM_NCMEC", settings={"base_url": ncmec_hashes.url, "environment": "NGO"},
        credentials_env="TEST_NCMEC"), actor=admin)
    now = int(time.time())
    for n in range(1, 6):  # the last three in one second: no range holds them in one page of 2
        at = now - 4000 + 500 * min(n, 3)
        ncmec_hashes.entries.append(NcmecEntry(str(n), 42, at, {"pdq": pdq(n), "md5": md5(n)},
                                               classification="A1" if n % 2 else "B2"))
    return ncmec_hashes


def fetch(db: Database) -> services.FetchResult:
    return services.fetch(db, "ncmec", actor=SPECIALIST, env=ENV)


def held(db: Database) -> dict[tuple[str, str], str]:
    with db.read() as session:
        return {(e.signal_type, e.value): e.category for e in session.scalars(select(BankEntry))}


def test_every_entry_in_every_range_is_banked_with_its_classification(db: Database, ncmec: FakeNcmec) -> None:
    result = fetch(db)
    assert result.complete and result.records == 5 and result.added == 10
    expected = {("pdq", pdq(n)): "csam-A1" if n % 2 else "csam-B2" for n in range(1, 6)}
    expected.update({("md5", md5(n)): "csam-A1" if n % 2 else "csam-B2" for n in range(1, 6)})
    assert held(db) == expected
    assert any("start=2" in call for call in ncmec.script.calls)  # a range of more than a page: paging.next followed
    with db.read() as session:
        origins = banks.origins_of(session, session.scalars(select(BankEntry.id)).all())
    assert {o.record for found in origins.values() for o in found} == {f"42-{n}" for n in range(1, 6)}
    status = services.exchange_status(db, "ncmec", SPECIALIST, ENV)
    assert status.restricted and status.fetched and status.entries == 10 and status.last_error == ""


def test_an_error_in_mid_range_resumes_from_the_page_it_stopped_at(db: Database, ncmec: FakeNcmec) -> None:
    ncmec.script.fail_on = {"start=2": 403}  # the second page of the crowded range
    with pytest.raises(FetchFailed, match="HTTP 403"):
        fetch(db)
    status = services.exchange_status(db, "ncmec", SPECIALIST, ENV)
    assert status.last_error == "ncmec answered HTTP 403" and status.fetched  # mid-range: a paging checkpoint
    first = dict(held(db))
    assert 0 < len(first) < 10
    ncmec.script.calls.clear()
    fetch(db)
    assert "start=2" in ncmec.script.calls[0]  # resumed at the page it had not applied
    assert len(held(db)) == 10


def test_deleted_entries_leave_the_bank_on_the_next_fetch(db: Database, ncmec: FakeNcmec) -> None:
    fetch(db)
    started = int(time.time())
    while int(time.time()) < started + 2:  # the next range starts where the last one ended (now - 5 s)
        time.sleep(0.1)
    later = int(time.time()) - 6
    ncmec.entries.append(NcmecEntry("1", 42, later, {}, deleted=True))
    ncmec.entries.append(NcmecEntry("9", 42, later, {"pdq": pdq(9)}))
    result = fetch(db)
    assert (result.added, result.removed) == (1, 2)
    assert ("pdq", pdq(1)) not in held(db) and ("md5", md5(1)) not in held(db) and ("pdq", pdq(9)) in held(db)


def test_wrong_credentials_are_an_error_that_names_no_credentials(db: Database, ncmec: FakeNcmec) -> None:
    with pytest.raises(FetchFailed, match="HTTP 401"):
        services.fetch(db, "ncmec", actor=SPECIALIST, env={"TEST_NCMEC": "esp-user:wrong-pass"})
    status = services.exchange_status(db, "ncmec", SPECIALIST, ENV)
    assert status.last_error == "ncmec answered HTTP 401" and "wrong-pass" not in status.last_error
    assert held(db) == {}


def test_an_ncmec_exchange_is_nothing_outside_child_safety(db: Database, ncmec: FakeNcmec) -> None:
    assert services.list_exchanges(db, CURATOR, ENV) == []
    with pytest.raises(ExchangeNotFound, match="no exchange named 'ncmec'"):
        services.exchange_status(db, "ncmec", CURATOR, ENV)
    with pytest.raises(ExchangeNotFound):
        services.fetch(db, "ncmec", actor=CURATOR, env=ENV)
    assert [s.name for s in services.list_exchanges(db, SPECIALIST, ENV)] == ["ncmec"]


def test_ncmec_feeds_only_a_restricted_bank(db: Database, admin: Principal, ncmec: FakeNcmec) -> None:
    banks.create_bank(db, "OPEN", actor=admin)
    with pytest.raises(InvalidExchange, match="restricted bank only"):
        services.add_exchange(db, services.NewExchange("ncmec2", ExchangeKind.NCMEC, "OPEN"), actor=admin)


def test_feedback_votes_through_the_outbox_and_seen_is_refused(db: Database, ncmec: FakeNcmec) -> None:
    fetch(db)
    with db.read() as session:
        entry_id = session.scalar(select(BankEntry.id).where(BankEntry.value == pdq(3)))
    assert entry_id is not None
    with pytest.raises(InvalidExchange, match="take no seen feedback"):
        services.send_feedback(db, entry_id, Opinion.SEEN, actor=SPECIALIST)
    with pytest.raises(ExchangeNotFound):  # a curator may not even learn the entry exists
        services.send_feedback(db, entry_id, Opinion.TRUE_POSITIVE, actor=CURATOR)
    clock = FrozenClock(dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    assert services.send_feedback(db, entry_id, Opinion.TRUE_POSITIVE, actor=SPECIALIST, clock=clock) == ["ncmec"]
    report = deliver_due(db, Routes(dict.fromkeys(ExchangeMessage, FeedbackSender(db, ENV))), clock=clock, limit=10,
                         lease_seconds=30)
    assert report.delivered == 1
    [(path, body)] = ncmec.feedback
    assert path == "/npo/v2/entries/42/3/PDQ/feedback"
    assert b"<affirmative" in body
