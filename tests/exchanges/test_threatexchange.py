"""ThreatExchange end to end against the fake Graph API on loopback: pages, checkpoints, updates and deletions,
an error page and the resume after it, matchers following, feedback as reactions."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import func, select

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import Routes, deliver_due
from bastion.exchanges import services
from bastion.exchanges.interfaces import ExchangeKind, FetchFailed, InvalidExchange, Opinion
from bastion.exchanges.models import Exchange
from bastion.exchanges.services import ExchangeMessage
from bastion.exchanges.tasks import FeedbackSender
from bastion.hashing.interfaces import HashResult
from bastion.matching import services as banks
from bastion.matching.matcher import Matcher, Query
from bastion.matching.models import BankChange, BankEntry, ChangeOp, EntryOrigin
from tests.factories.exchanges import TE_GROUP, TE_TOKEN, FakeThreatExchange

ENV = {"TEST_TE_TOKEN": TE_TOKEN}
T0 = 1_760_000_000


def pdq(n: int) -> str:
    """Hashes far apart from each other (PDQ matches near values too)."""
    return hashlib.sha256(str(n).encode()).hexdigest()


@pytest.fixture
def te(db: Database, admin: Principal, threatexchange: FakeThreatExchange) -> FakeThreatExchange:
    banks.create_bank(db, "TERROR", actor=admin)
    services.add_exchange(db, services.NewExchange(
        "te", ExchangeKind.THREATEXCHANGE, "TERROR", categories=("terrorism",),
        settings={"privacy_group": str(TE_GROUP), "base_url": threatexchange.url}, credentials_env="TEST_TE_TOKEN"),
        actor=admin)
    for n in range(1, 6):
        threatexchange.put(n, pdq(n), time=T0 + n)
    return threatexchange


def fetch(db: Database, **kwargs: object) -> services.FetchResult:
    return services.fetch(db, "te", actor=services.SYSTEM, env=ENV, **kwargs)  # type: ignore[arg-type]


def entries(db: Database) -> dict[str, str]:
    with db.read() as session:
        return {e.value: e.category for e in session.scalars(select(BankEntry))}


def test_a_fetch_pages_through_every_update_and_commits_the_checkpoint(db: Database, te: FakeThreatExchange) -> None:
    pages: list[int] = []
    result = fetch(db, progress=pages.append)
    assert (result.pages, result.records, result.added, result.complete) == (3, 5, 5, True)
    assert pages == [2, 2, 1]  # the fake's pages of 2, followed through paging.next
    assert entries(db) == {pdq(n): "terrorism" for n in range(1, 6)}
    with db.read() as session:
        exchange = session.scalar(select(Exchange))
        assert exchange is not None and exchange.checkpoint is not None
        assert exchange.checkpoint["update_time"] == T0 + 5
        origins = banks.origins_of(session, session.scalars(select(BankEntry.id)).all())
        assert sorted(o.record for found in origins.values() for o in found) == \
            sorted(f"HASH_PDQ:{pdq(n)}" for n in range(1, 6))
        assert {o.exchange for found in origins.values() for o in found} == {"te"}
        assert set(session.scalars(select(BankEntry.source))) == {"exchange:te"}
    status = services.exchange_status(db, "te", services.SYSTEM, ENV)
    assert (status.records_fetched, status.entries, status.last_error, status.credentials_present) == (5, 5, "", True)


def test_the_next_fetch_starts_at_the_checkpoint_and_applies_updates_and_deletions(
        db: Database, te: FakeThreatExchange) -> None:
    fetch(db)
    matcher = Matcher(db)
    matcher.load()
    assert len(matcher.match([Query(HashResult("pdq", pdq(1)))])) == 1
    te.script.calls.clear()
    te.put(1, pdq(1), time=T0 + 10, delete=True)  # deleted at the exchange
    te.put(2, pdq(2), time=T0 + 11, tags=("spam",))  # re-tagged out of the categories taken
    te.put(3, pdq(3), time=T0 + 12, status="NON_MALICIOUS")  # now judged harmless
    te.put(6, pdq(6), time=T0 + 13)  # new
    result = fetch(db)
    assert (result.records, result.added, result.removed) == (5, 1, 3)  # 5: the checkpoint's own time again
    assert entries(db) == {pdq(n): "terrorism" for n in (4, 5, 6)}
    with db.read() as session:
        ops = list(session.scalars(select(BankChange.op).order_by(BankChange.id)))
        assert ops.count(ChangeOp.REMOVE.value) == 3
        assert session.scalar(select(func.count()).select_from(EntryOrigin)) == 3
    matcher.refresh()  # the change log moved: the matcher follows
    assert matcher.match([Query(HashResult("pdq", pdq(1)))]) == []
    assert len(matcher.match([Query(HashResult("pdq", pdq(6)))])) == 1


def test_an_error_page_keeps_what_was_committed_and_the_next_fetch_resumes(db: Database,
                                                                           te: FakeThreatExchange) -> None:
    te.script.fail = [0, 500]  # the second page answers Graph API's 500
    with pytest.raises(FetchFailed, match="HTTP 500"):
        fetch(db)
    assert sorted(entries(db)) == sorted([pdq(1), pdq(2)])
    status = services.exchange_status(db, "te", services.SYSTEM, ENV)
    assert status.last_error == "fb_threatexchange answered HTTP 500"
    assert TE_TOKEN not in status.last_error and status.progress == T0 + 2
    result = fetch(db)
    assert sorted(entries(db)) == sorted(pdq(n) for n in range(1, 6))
    assert result.added == 3
    with db.read() as session:  # nothing twice
        assert session.scalar(select(func.count()).select_from(EntryOrigin)) == 5
        assert session.scalar(select(func.count()).select_from(BankEntry)) == 5
    assert services.exchange_status(db, "te", services.SYSTEM, ENV).last_error == ""


def test_a_lost_checkpoint_replays_without_duplicates(db: Database, te: FakeThreatExchange) -> None:
    """Replaying pages already applied (a crash after the commit, before the caller heard) changes nothing."""
    fetch(db)
    with db.write() as session:
        exchange = session.scalar(select(Exchange))
        assert exchange is not None
        exchange.checkpoint = None
    again = fetch(db)
    assert (again.records, again.added, again.removed) == (5, 0, 0)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(EntryOrigin)) == 5


def test_a_page_limit_stops_early_and_says_so(db: Database, te: FakeThreatExchange) -> None:
    first = fetch(db, max_pages=1)
    assert (first.pages, first.complete) == (1, False)
    rest = fetch(db)
    assert rest.complete and sorted(entries(db)) == sorted(pdq(n) for n in range(1, 6))


def test_a_bad_token_is_an_error_without_the_token(db: Database, te: FakeThreatExchange) -> None:
    other = "9999999999|zyxwvutsrqponmlkjihgfedcba"
    with pytest.raises(FetchFailed) as raised:
        services.fetch(db, "te", actor=services.SYSTEM, env={"TEST_TE_TOKEN": other})
    assert str(raised.value) == "fb_threatexchange answered HTTP 400"
    assert other not in services.exchange_status(db, "te", services.SYSTEM, ENV).last_error
    with pytest.raises(InvalidExchange, match="TEST_TE_TOKEN"):
        services.fetch(db, "te", actor=services.SYSTEM, env={})
    assert "TEST_TE_TOKEN" in services.exchange_status(db, "te", services.SYSTEM, {}).last_error  # says why
    with pytest.raises(InvalidExchange, match="not an app access token"):
        services.fetch(db, "te", actor=services.SYSTEM, env={"TEST_TE_TOKEN": "not-a-token"})
    assert entries(db) == {}


def test_an_entry_banked_by_hand_is_linked_not_duplicated_and_never_removed_by_the_exchange(
        db: Database, admin: Principal, te: FakeThreatExchange) -> None:
    banks.add_entry(db, "TERROR", banks.NewEntry.parse("pdq", pdq(1), "terrorism", "curator"), actor=admin)
    assert fetch(db).added == 4
    te.put(1, pdq(1), time=T0 + 20, delete=True)
    assert fetch(db).removed == 0
    assert pdq(1) in entries(db)


def test_feedback_is_posted_as_reactions_through_the_outbox(db: Database, te: FakeThreatExchange) -> None:
    fetch(db)
    with db.read() as session:
        entry_id = session.scalar(select(BankEntry.id).where(BankEntry.value == pdq(2)))
    assert entry_id is not None
    clock = FrozenClock(dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    assert services.send_feedback(db, entry_id, Opinion.TRUE_POSITIVE, actor=services.SYSTEM, clock=clock) == ["te"]
    services.send_feedback(db, entry_id, Opinion.TRUE_POSITIVE, actor=services.SYSTEM, clock=clock)  # same key
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    report = deliver_due(db, Routes(dict.fromkeys(ExchangeMessage, FeedbackSender(db, ENV))), clock=clock, limit=10,
                         lease_seconds=30)
    assert report.delivered == 1
    assert te.reactions == [("20", "HELPFUL")]


def test_feedback_on_an_entry_from_no_exchange_is_refused(db: Database, admin: Principal,
                                                          te: FakeThreatExchange) -> None:
    entry = banks.add_entry(db, "TERROR", banks.NewEntry.parse("pdq", pdq(9)), actor=admin)
    with pytest.raises(InvalidExchange, match="came from no exchange"):
        services.send_feedback(db, entry.id, Opinion.SEEN, actor=admin)


def test_two_fetchers_of_one_exchange_never_both_apply_a_page(db: Database, te: FakeThreatExchange) -> None:
    from bastion.exchanges.interfaces import FetchRaced

    stepped = False

    def race(n: int) -> None:
        nonlocal stepped
        if not stepped:  # another fetcher moves the checkpoint while this one is between pages
            stepped = True
            with db.write() as session:
                exchange = session.scalar(select(Exchange))
                assert exchange is not None
                exchange.checkpoint_version += 1

    with pytest.raises(FetchRaced):
        fetch(db, progress=race)
    assert len(entries(db)) == 2


def test_an_open_exchange_is_listed_for_curators(db: Database, te: FakeThreatExchange) -> None:
    curator = Principal("user", 1, "cura", Role.CURATOR)
    assert [s.name for s in services.list_exchanges(db, curator, ENV)] == ["te"]


def test_the_schedule_fetches_what_is_due_and_records_failures(db: Database, te: FakeThreatExchange) -> None:
    clock = FrozenClock(dt.datetime.fromtimestamp(T0 + 100, dt.UTC))
    assert services.due(db, clock.now().timestamp()) == ["te"]  # never fetched
    assert services.tick(db, clock, ENV) is False  # fetched to the end: nothing more waiting
    assert len(entries(db)) == 5
    assert services.due(db, clock.now().timestamp()) == []
    clock.advance(seconds=3600)  # the default interval
    te.script.fail = [500]
    assert services.tick(db, clock, ENV) is False  # a failure is the exchange's, never the worker's
    status = services.exchange_status(db, "te", services.SYSTEM, ENV)
    assert status.last_error == "fb_threatexchange answered HTTP 500"
    assert status.last_fetch_at == clock.now().isoformat()
    services.set_enabled(db, "te", False, actor=services.SYSTEM)
    clock.advance(seconds=7200)
    assert services.due(db, clock.now().timestamp()) == []


def test_new_filters_with_a_refetch_apply_to_what_was_fetched_already(db: Database, te: FakeThreatExchange) -> None:
    fetch(db)
    te.put(6, pdq(6), time=T0 + 6, tags=("spam",))
    services.update_exchange(db, "te", actor=services.SYSTEM, categories=["spam"], refetch=True)
    status = services.exchange_status(db, "te", services.SYSTEM, ENV)
    assert (status.categories, status.fetched) == (["spam"], False)
    result = fetch(db)
    assert (result.records, result.added, result.removed) == (6, 1, 5)
    assert entries(db) == {pdq(6): "spam"}
    with pytest.raises(InvalidExchange, match="interval_seconds is at least 60"):
        services.update_exchange(db, "te", actor=services.SYSTEM, interval_seconds=5)


def test_a_record_retagged_as_child_abuse_material_leaves_the_open_bank(db: Database, admin: Principal,
                                                                       threatexchange: FakeThreatExchange) -> None:
    banks.create_bank(db, "OPEN", actor=admin)
    services.add_exchange(db, services.NewExchange(
        "te", ExchangeKind.THREATEXCHANGE, "OPEN", categories=("terrorism", "csam"),
        settings={"privacy_group": str(TE_GROUP), "base_url": threatexchange.url}, credentials_env="TEST_TE_TOKEN"),
        actor=admin)
    threatexchange.put(1, pdq(1), time=T0 + 1)
    threatexchange.put(2, pdq(2), time=T0 + 2, tags=("csam",))  # never enters an open bank
    fetch(db)
    assert entries(db) == {pdq(1): "terrorism"}
    threatexchange.put(1, pdq(1), time=T0 + 3, tags=("csam",))  # re-tagged: it leaves, it is not recategorised
    assert fetch(db).removed == 1
    assert entries(db) == {}
