"""StopNCII end to end against the fake on loopback: pages by token, withdrawn hashes deleted (which pytx's own
conversion misses), keys checked, restricted bank only, feedback as StopNCII's CSP feedback."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox.services import Routes, deliver_due
from bastion.exchanges import services
from bastion.exchanges.interfaces import ExchangeKind, FetchFailed, Opinion
from bastion.exchanges.services import ExchangeMessage
from bastion.exchanges.tasks import FeedbackSender
from bastion.matching import services as banks
from bastion.matching.models import BankEntry
from tests.factories.exchanges import NCII_FEEDBACK_KEY, NCII_FETCH_KEY, NCII_SUBSCRIPTION, FakeStopNcii
from tests.factories.exchanges import stop_ncii as stop_ncii

ENV = {"NCII_KEYS": f"{NCII_FETCH_KEY},{NCII_SUBSCRIPTION},{NCII_FEEDBACK_KEY}"}
SPECIALIST = Principal("user", 3, "cs", Role.CHILD_SAFETY)
T0 = 1_760_000_000


def pdq(n: int) -> str:
    return hashlib.sha256(f"ncii{n}".encode()).hexdigest()


@pytest.fixture
def ncii(db: Database, admin: Principal, stop_ncii: FakeStopNcii) -> FakeStopNcii:
    banks.create_bank(db, "NCII", actor=admin, restricted=True)
    services.add_exchange(db, services.NewExchange("stopncii", ExchangeKind.STOP_NCII, "NCII",
                                                   settings={"base_url": stop_ncii.url}, credentials_env="NCII_KEYS"),
                          actor=admin)
    for n in range(1, 6):
        stop_ncii.put(pdq(n), time=T0 + n)
    stop_ncii.put(hashlib.md5(b"video").hexdigest(), time=T0 + 6, kind="VideoMD5")
    return stop_ncii


def held(db: Database) -> dict[tuple[str, str], str]:
    with db.read() as session:
        return {(e.signal_type, e.value): e.category for e in session.scalars(select(BankEntry))}


def test_hashes_are_paged_in_and_withdrawn_ones_leave(db: Database, ncii: FakeStopNcii) -> None:
    first = services.fetch(db, "stopncii", actor=SPECIALIST, env=ENV)
    assert (first.pages, first.records, first.added) == (3, 6, 6)
    assert held(db)[("pdq", pdq(1))] == "ncii" and ("md5", hashlib.md5(b"video").hexdigest()) in held(db)
    ncii.put(pdq(2), time=T0 + 10, status="Withdrawn")
    ncii.put(pdq(3), time=T0 + 11, status="Deleted")
    again = services.fetch(db, "stopncii", actor=SPECIALIST, env=ENV)
    assert again.removed == 2 and ("pdq", pdq(2)) not in held(db) and ("pdq", pdq(3)) not in held(db)
    assert services.list_exchanges(db, Principal("user", 2, "cura", Role.CURATOR), ENV) == []


def test_wrong_keys_are_an_error_that_names_no_key(db: Database, ncii: FakeStopNcii) -> None:
    with pytest.raises(FetchFailed, match="HTTP 401"):
        services.fetch(db, "stopncii", actor=SPECIALIST, env={"NCII_KEYS": f"wrong,{NCII_SUBSCRIPTION}"})
    status = services.exchange_status(db, "stopncii", SPECIALIST, ENV)
    assert status.last_error == "stop_ncii answered HTTP 401" and held(db) == {}


def test_feedback_is_sent_as_csp_feedback(db: Database, ncii: FakeStopNcii) -> None:
    services.fetch(db, "stopncii", actor=SPECIALIST, env=ENV)
    with db.read() as session:
        entry_id = session.scalar(select(BankEntry.id).where(BankEntry.value == pdq(4)))
    assert entry_id is not None
    clock = FrozenClock(dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    services.send_feedback(db, entry_id, Opinion.FALSE_POSITIVE, actor=SPECIALIST, clock=clock)
    report = deliver_due(db, Routes(dict.fromkeys(ExchangeMessage, FeedbackSender(db, ENV))), clock=clock)
    assert report.delivered == 1
    assert ncii.feedback == [{"count": 1, "hashFeedbacks": [{"tags": [], "feedbackValue": "NotBlocked",
                                                             "hashValue": pdq(4)}]}]
