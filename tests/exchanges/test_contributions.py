"""Sharing new hashes with exchanges (a crisis's confirmed perpetrator content) against the fake ThreatExchange on
loopback: only exchanges that take them, never child sexual abuse material, keys that cover the body, a 5xx
retried and a 4xx kept; and the rules on exchange settings and feedback keys met on the way."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import func, select, update

from bastion.core.auth.services import Principal
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import OutboxConflict, Routes, body_key, deliver_due, enqueue
from bastion.exchanges import services
from bastion.exchanges.interfaces import (
    ContributionOutcome,
    ExchangeKind,
    ExchangeNotFound,
    InvalidExchange,
    Opinion,
)
from bastion.exchanges.models import Exchange
from bastion.exchanges.services import CrisisSharing, ExchangeMessage
from bastion.exchanges.tasks import ContributionSender, ExchangeSender, FeedbackSender
from bastion.matching import services as banks
from bastion.matching.models import Bank, BankEntry, EntryOrigin
from tests.factories.exchanges import TE_GROUP, TE_TOKEN, FakeNcmec, FakeThreatExchange

ENV = {"TEST_TE_TOKEN": TE_TOKEN}
CLOCK_START = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
T0 = 1_760_000_000


def pdq(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def add_te(db: Database, admin: Principal, fake: FakeThreatExchange, name: str = "te", bank: str = "TERROR",
           restricted: bool = False) -> None:
    banks.create_bank(db, bank, actor=admin, restricted=restricted)
    services.add_exchange(db, services.NewExchange(
        name, ExchangeKind.THREATEXCHANGE, bank,
        settings={"privacy_group": str(TE_GROUP), "base_url": fake.url},
        credentials_env="TEST_TE_TOKEN"), actor=admin)


def banked(db: Database, admin: Principal, values: list[tuple[str, str]], bank: str = "CRISIS_ECP_1") -> list[int]:
    """The crisis bank holding ``values`` (what a sender checks is still banked before each try)."""
    with db.write() as session:
        if session.scalar(select(Bank).where(Bank.name == bank)) is None:
            banks.create_bank_in(db, session, bank, actor=admin)
    return [banks.add_entry(db, bank, banks.NewEntry.parse(t, v, category="terrorist_content"), actor=admin).id
            for t, v in values]


def queue(db: Database, names: list[str], hashes: list[tuple[str, str, str, bool]],
          tags: tuple[str, ...] = ("crisis:ECP-1", "terrorist_content")) -> list[str]:
    with db.write() as session:
        return CrisisSharing(FrozenClock(CLOCK_START)).queue(
            session, subject="crisis:1", names=names, hashes=hashes, tags=list(tags), description="ECP-1 perpetrator")


def messages(db: Database) -> list[OutboxMessage]:
    with db.read() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.mark.parametrize("url", ["https://user:secret@graph.example/v26.0", "http://token@graph.example",
                                 "https://:pw@graph.example/"])
def test_a_base_url_with_credentials_is_refused(db: Database, admin: Principal, url: str) -> None:
    banks.create_bank(db, "TERROR", actor=admin)
    with pytest.raises(InvalidExchange, match="may not carry credentials") as refused:
        services.add_exchange(db, services.NewExchange(
            "te", ExchangeKind.THREATEXCHANGE, "TERROR", settings={"privacy_group": "1", "base_url": url}),
            actor=admin)
    assert "secret" not in str(refused.value) and "pw" not in str(refused.value)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Exchange)) == 0


def test_a_stored_base_url_with_credentials_sends_nothing(db: Database, admin: Principal,
                                                           threatexchange: FakeThreatExchange) -> None:
    add_te(db, admin, threatexchange)
    with db.write() as session:  # written before the rule
        session.execute(update(Exchange).values(settings={"privacy_group": TE_GROUP,
                                                          "base_url": "https://u:p@graph.example"}))
    with pytest.raises(InvalidExchange, match="may not carry credentials"):
        services.fetch(db, "te", actor=services.SYSTEM, env=ENV)
    assert threatexchange.script.calls == []


def test_the_feedback_key_covers_the_body(db: Database, admin: Principal,
                                          threatexchange: FakeThreatExchange) -> None:
    add_te(db, admin, threatexchange)
    threatexchange.put(1, pdq(1), time=T0 + 1)
    services.fetch(db, "te", actor=services.SYSTEM, env=ENV)
    with db.read() as session:
        entry_id = session.scalar(select(BankEntry.id))
    assert entry_id is not None
    clock = FrozenClock(CLOCK_START)
    services.send_feedback(db, entry_id, Opinion.TRUE_POSITIVE, actor=admin, clock=clock)
    services.send_feedback(db, entry_id, Opinion.TRUE_POSITIVE, actor=admin, clock=clock)  # the same body: one
    assert len(messages(db)) == 1
    with db.write() as session:  # the record's descriptors changed since: the opinion goes to the new ones too
        session.execute(update(EntryOrigin).values(detail="10,11"))
    services.send_feedback(db, entry_id, Opinion.TRUE_POSITIVE, actor=admin, clock=clock)
    found = messages(db)
    assert [m.payload["detail"] for m in found] == ["10", "10,11"]
    assert len({m.idempotency_key for m in found}) == 2


def test_the_same_key_with_another_body_is_a_conflict(db: Database) -> None:
    clock = FrozenClock(CLOCK_START)
    body = {"exchange": "te", "value": "a"}
    key = body_key("exchange-contribution:te:crisis:1", body)
    assert key == body_key("exchange-contribution:te:crisis:1", {"value": "a", "exchange": "te"})  # canonical
    assert key != body_key("exchange-contribution:te:crisis:1", {"exchange": "te", "value": "b"})
    assert len(body_key("x" * 300, body)) <= 200
    with db.write() as session:
        first = enqueue(session, kind=ExchangeMessage.CONTRIBUTION, destination="exchange:te", payload=body,
                        idempotency_key="k", clock=clock, strict=True)
        again = enqueue(session, kind=ExchangeMessage.CONTRIBUTION, destination="exchange:te", payload=dict(body),
                        idempotency_key="k", clock=clock, strict=True)
        assert again is first
        with pytest.raises(OutboxConflict):
            enqueue(session, kind=ExchangeMessage.CONTRIBUTION, destination="exchange:te",
                    payload={**body, "value": "b"}, idempotency_key="k", clock=clock, strict=True)
    assert len(messages(db)) == 1


def test_only_exchanges_that_take_shared_hashes_may_be_named(db: Database, admin: Principal,
                                                             threatexchange: FakeThreatExchange,
                                                             ncmec_hashes: FakeNcmec) -> None:
    add_te(db, admin, threatexchange)
    banks.create_bank(db, "HASHLIST", actor=admin)
    services.add_exchange(db, services.NewExchange("tat", ExchangeKind.TAT, "HASHLIST"), actor=admin)
    banks.create_bank(db, "CSAM_NCMEC", actor=admin, restricted=True)
    services.add_exchange(db, services.NewExchange("ncmec", ExchangeKind.NCMEC, "CSAM_NCMEC",
                                                   settings={"base_url": ncmec_hashes.url}), actor=admin)
    add_te(db, admin, threatexchange, name="te-child", bank="CHILD_TE", restricted=True)
    sharing = CrisisSharing()
    with db.read() as session:
        assert sharing.check_targets(session, ["te", " te "]) == ["te"]
        with pytest.raises(InvalidExchange, match="takes no shared hashes"):
            sharing.check_targets(session, ["tat"])
        with pytest.raises(ExchangeNotFound) as restricted:
            sharing.check_targets(session, ["ncmec"])
        with pytest.raises(ExchangeNotFound):
            sharing.check_targets(session, ["te", "te-child"])  # a ThreatExchange group feeding a restricted bank
        with pytest.raises(ExchangeNotFound) as missing:
            sharing.check_targets(session, ["nope"])
    # a child-safety exchange is answered as one that does not exist
    assert str(restricted.value).replace("ncmec", "X") == str(missing.value).replace("nope", "X")


def test_child_abuse_material_is_never_queued(db: Database, admin: Principal,
                                              threatexchange: FakeThreatExchange) -> None:
    add_te(db, admin, threatexchange)
    said = queue(db, ["te"], [("pdq", pdq(1), "terrorist_content", False), ("pdq", pdq(2), "csam", False),
                              ("pdq", pdq(3), "terrorist_content", True), ("video_pdq", "x", "terrorist_content",
                                                                           False)])
    assert said == ["te: video_pdq not taken", "te: 1 queued, 2 withheld (restricted)"]
    assert [m.payload["value"] for m in messages(db)] == [pdq(1)]
    assert queue(db, ["te"], [("pdq", pdq(4), "terrorist_content", False)], tags=("crisis:X", "csam")) == \
        ["te: 0 queued, 1 withheld (restricted)"]
    assert queue(db, ["te"], [("pdq", pdq(1), "terrorist_content", False)]) == ["te: 1 queued"]  # a repeat
    assert len(messages(db)) == 1


def test_a_shared_hash_is_retried_after_a_5xx_and_a_4xx_is_kept(db: Database, admin: Principal,
                                                                threatexchange: FakeThreatExchange) -> None:
    add_te(db, admin, threatexchange)
    told: list[ContributionOutcome] = []
    sender = ContributionSender(db, ENV, on_outcome=told.append)
    routes = Routes(dict.fromkeys(ExchangeMessage, ExchangeSender(FeedbackSender(db, ENV), sender)))
    clock = FrozenClock(CLOCK_START)
    banked(db, admin, [("pdq", pdq(1)), ("md5", "a" * 32)])
    queue(db, ["te"], [("pdq", pdq(1), "terrorist_content", False), ("md5", "a" * 32, "terrorist_content", False)])
    threatexchange.script.fail = [503, 400]
    first = deliver_due(db, routes, clock=clock, limit=10, lease_seconds=30)
    assert (first.delivered, first.retrying, first.dead) == (0, 1, 1)
    assert [(o.signal_type, o.error, o.http_status) for o in told] == \
        [("md5", "ThreatExchange answered HTTP 400", 400)]
    clock.advance(seconds=60)
    second = deliver_due(db, routes, clock=clock, limit=10, lease_seconds=30)
    assert second.delivered == 1
    assert told[1].accepted_id == "9000001" and told[1].subject == "crisis:1" and told[1].value == pdq(1)
    upload = threatexchange.uploads[0]
    assert (upload["indicator"], upload["type"], upload["status"], upload["privacy_members"], upload["tags"]) == \
        (pdq(1), "HASH_PDQ", "MALICIOUS", str(TE_GROUP), "crisis:ECP-1,terrorist_content")
    assert all(TE_TOKEN not in (o.error or "") for o in told)


def test_an_exchange_that_became_restricted_receives_nothing(db: Database, admin: Principal,
                                                             threatexchange: FakeThreatExchange) -> None:
    add_te(db, admin, threatexchange)
    queue(db, ["te"], [("pdq", pdq(1), "terrorist_content", False)])
    with db.write() as session:
        session.execute(update(Bank).values(restricted=True))
    told: list[ContributionOutcome] = []
    routes = Routes(dict.fromkeys(ExchangeMessage, ExchangeSender(FeedbackSender(db, ENV),
                                                                  ContributionSender(db, ENV, on_outcome=told.append))))
    report = deliver_due(db, routes, clock=FrozenClock(CLOCK_START), limit=10, lease_seconds=30)
    assert report.dead == 1 and threatexchange.uploads == [] and threatexchange.script.calls == []
    assert told[0].error == "exchange te takes no shared hashes"


@pytest.mark.parametrize("change", ["restricted bank", "csam category", "taken out"])
def test_a_queued_hash_is_checked_again_before_each_try(db: Database, admin: Principal,
                                                         threatexchange: FakeThreatExchange, change: str) -> None:
    add_te(db, admin, threatexchange)
    [entry_id] = banked(db, admin, [("pdq", pdq(7))])
    queue(db, ["te"], [("pdq", pdq(7), "terrorist_content", False)])
    with db.write() as session:  # after it was queued, before it was sent
        if change == "restricted bank":
            session.execute(update(Bank).where(Bank.name == "CRISIS_ECP_1").values(restricted=True))
        elif change == "csam category":
            session.execute(update(BankEntry).where(BankEntry.id == entry_id).values(category="csam"))
        else:
            session.execute(update(BankEntry).where(BankEntry.id == entry_id).values(enabled=False))
    told: list[ContributionOutcome] = []
    routes = Routes(dict.fromkeys(ExchangeMessage, ExchangeSender(FeedbackSender(db, ENV),
                                                                  ContributionSender(db, ENV, on_outcome=told.append))))
    report = deliver_due(db, routes, clock=FrozenClock(CLOCK_START), limit=10, lease_seconds=30)
    assert report.dead == 1 and threatexchange.uploads == [] and threatexchange.script.calls == []
    assert told[0].error.startswith("withheld:")
