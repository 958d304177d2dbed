"""The one event shape: the writer appends typed payloads, a retried write is the same event, reads validate."""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import threading
import time

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import String, create_engine, distinct, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bastion.core.db import Database
from bastion.core.events import SUBJECT_LENGTH, EventLog, NewEvent, history, move_mark, payload, record, record_many
from bastion.minors.events import Contact, Denied, EventKind
from bastion.minors.models import MinorEvent, MinorsMark

AT = dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC)


class _Base(DeclarativeBase):
    pass


class ThingEvent(EventLog, _Base):
    __tablename__ = "thing_events"


class NotedEvent(EventLog, _Base):
    """An event table with a column of its own, which ``record_many`` would not write."""

    __tablename__ = "noted_events"
    note: Mapped[str] = mapped_column(String(20), default="")


class ThingKind(enum.StrEnum):
    MADE = "thing.made"


class Made(BaseModel):
    size: int
    until: dt.datetime


@pytest.fixture
def session() -> Session:
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    return Session(engine)


def test_a_payload_is_written_as_json_and_read_back_as_its_model(session: Session) -> None:
    record(session, ThingEvent, subject="thing:1", kind=ThingKind.MADE, actor="test", at=AT,
           data=Made(size=3, until=AT))
    session.commit()
    (event,) = history(session, ThingEvent, "thing:1")
    assert (event.kind, event.data) == ("thing.made", {"size": 3, "until": "2026-12-06T10:00:00Z"})
    assert payload(event, Made) == Made(size=3, until=AT)


def test_a_retried_write_with_the_same_external_id_is_the_same_event(session: Session) -> None:
    first = record(session, ThingEvent, subject="thing:1", kind=ThingKind.MADE, actor="a", at=AT,
                   data=Made(size=1, until=AT), external_id="req-1")
    session.flush()
    again = record(session, ThingEvent, subject="thing:1", kind=ThingKind.MADE, actor="a", at=AT,
                   data=Made(size=1, until=AT), external_id="req-1")
    assert again.id == first.id and len(history(session, ThingEvent, "thing:1")) == 1


def test_a_payload_that_changed_shape_fails_at_the_read(session: Session) -> None:
    event = ThingEvent(subject="thing:2", kind="thing.made", actor="a", at=AT, data={"size": "big"})
    with pytest.raises(ValidationError):
        payload(event, Made)


def test_many_events_are_one_insert_in_order_and_read_back_like_one(session: Session) -> None:
    record(session, ThingEvent, subject="thing:1", kind=ThingKind.MADE, actor="a", at=AT,
           data=Made(size=0, until=AT))
    session.flush()
    record_many(session, ThingEvent, [NewEvent("thing:1", ThingKind.MADE, "b", AT, Made(size=i, until=AT))
                                      for i in range(1, 4)])
    record_many(session, ThingEvent, [])
    events = history(session, ThingEvent, "thing:1")
    assert [payload(e, Made).size for e in events] == [0, 1, 2, 3]
    assert [e.actor for e in events] == ["a", "b", "b", "b"] and events[-1].at == AT
    session.rollback()  # in the caller's transaction: rolled back with it
    assert history(session, ThingEvent, "thing:1") == []


def test_a_table_with_a_column_the_batch_would_not_write_is_refused(session: Session) -> None:
    """``record_many`` writes the event's five columns by name: a table with another is refused, not given NULLs."""
    with pytest.raises(TypeError, match=r"noted_events has columns record_many does not write: \['note'\]"):
        record_many(session, NotedEvent, [NewEvent("s", ThingKind.MADE, "a", AT, None)])
    assert session.scalar(select(func.count()).select_from(NotedEvent)) == 0


def test_many_events_go_in_after_what_the_session_holds_and_read_back_alike_on_each_database(db: Database) -> None:
    """On the suite's database (SQLite or PostgreSQL): an unflushed ``record`` before goes in first, payloads come
    back as written (text beyond ASCII, no payload), and a time given in another zone is stored as its UTC instant."""
    paris = dt.timezone(dt.timedelta(hours=1))
    with db.write() as session:
        record(session, MinorEvent, subject="account:1", kind=EventKind.SETTING_CHANGED, actor="a", at=AT,
               data=None)
        record_many(session, MinorEvent, [
            NewEvent("account:1", EventKind.DENIED, "b", AT.astimezone(paris), Denied(
                action="dm", target="Zoë «2»", actor_band="adult", target_band="13-15", rule="r\"1\"")),
            NewEvent("account:1", EventKind.CASE_RAISED, "c", AT, None)])
    with db.read() as session:
        events = history(session, MinorEvent, "account:1")
        assert [(e.kind, e.actor, e.at) for e in events] == [
            ("setting.changed", "a", AT), ("interaction.denied", "b", AT), ("case.raised", "c", AT)]
        assert payload(events[1], Denied).target == "Zoë «2»" and payload(events[1], Denied).rule == 'r"1"'
        assert events[0].data == events[2].data == {}
        # stored alike, not only read back alike: SQLite compares the stored text
        assert session.scalar(select(func.count(distinct(MinorEvent.at)))) == 1
        assert len(session.scalars(select(MinorEvent.id).where(MinorEvent.at == AT)).all()) == 3
        assert len(session.scalars(select(MinorEvent.id).where(MinorEvent.at < AT)).all()) == 0


def test_a_large_batch_of_events_takes_ids_in_the_order_given_on_each_database(db: Database) -> None:
    """PostgreSQL inserts a batch from one JSON array: its ids must still follow the order given."""
    targets = [f"t{(i * 7919) % 500}" for i in range(500)]  # not sorted, so sorting cannot pass for ordering
    with db.write() as session:
        record_many(session, MinorEvent, [
            NewEvent(f"account:{target}", EventKind.CONTACT, "p", AT, Contact(action="dm", target=target,
                                                                               target_band="13-15"))
            for target in targets])
    with db.read() as session:
        rows = session.execute(select(MinorEvent.subject).order_by(MinorEvent.id)).scalars().all()
    assert rows == [f"account:{target}" for target in targets]


def test_a_payload_holding_any_character_is_stored_whole_on_each_database(db: Database) -> None:
    """A payload's strings may hold anything a remote answer sends: NUL (which PostgreSQL will not read out of JSON
    as text), controls, quotes, backslashes, an escape's look-alike, text beyond ASCII."""
    odd = 'a\x00b\x01\t"q" \\ \\u0000 Zoë «2» 😀'
    with db.write() as session:
        record_many(session, MinorEvent, [
            NewEvent("account:1", EventKind.DENIED, "b", AT, Denied(action="dm", target=odd, actor_band="adult",
                                                                   target_band="13-15", rule=odd)),
            NewEvent("account:1", EventKind.CASE_RAISED, "c", AT, None)])
    with db.read() as session:
        events = history(session, MinorEvent, "account:1")
    assert payload(events[0], Denied).target == payload(events[0], Denied).rule == odd
    assert events[1].data == {}


def test_a_batch_refuses_what_one_event_is_refused_on_each_database(db: Database) -> None:
    """An over-long subject: refused by ``record_many`` where ``record`` is refused (PostgreSQL; SQLite does not
    check a length), never cut short. A naive time: refused by both everywhere. Nothing of the batch is written."""
    long = "account:" + "x" * SUBJECT_LENGTH

    def one() -> None:
        with db.write() as session:
            record(session, MinorEvent, subject=long, kind=EventKind.CASE_RAISED, actor="a", at=AT, data=None)

    def many(at: dt.datetime = AT) -> None:
        with db.write() as session:
            record_many(session, MinorEvent, [NewEvent("account:1", EventKind.CASE_RAISED, "a", at, None),
                                              NewEvent(long, EventKind.CASE_RAISED, "a", at, None)])

    refused = []
    for write in (one, many):
        try:
            write()
            refused.append(False)
        except DBAPIError:
            refused.append(True)
    assert refused[0] == refused[1] == (db.engine.dialect.name == "postgresql")
    with db.read() as session:
        stored = session.scalars(select(MinorEvent.subject).order_by(MinorEvent.id)).all()
    assert stored == ([] if refused[0] else [long, "account:1", long])  # whole, where it is stored
    with pytest.raises(ValueError, match="naive"):
        many(AT.replace(tzinfo=None))


def test_a_mark_moves_only_from_where_its_follower_read_it(db: Database) -> None:
    """``move_mark`` on the suite's database: the first move makes the row; a follower that read the mark before
    another moved it is refused and changes nothing (it would take the same events in twice)."""
    with db.write() as session:
        assert move_mark(session, MinorsMark, "test-log", 0, 10)
    with db.write() as session:
        assert not move_mark(session, MinorsMark, "test-log", 0, 12)  # read before the first move: too late
        assert move_mark(session, MinorsMark, "test-log", 10, 20)
        assert not move_mark(session, MinorsMark, "test-log", 10, 30)  # the same round twice
    with db.write() as session:
        assert move_mark(session, MinorsMark, "other-log", 0, 5)  # each log its own row
    with db.read() as session:
        assert dict(session.execute(select(MinorsMark.log, MinorsMark.last_id)).all()) == {
            "test-log": 20, "other-log": 5}


@pytest.mark.parametrize("first_commits", [True, False])
def test_two_rounds_moving_one_mark_at_once_take_its_events_in_once(db: Database, first_commits: bool) -> None:
    """Two rounds that both read the mark at 10 write at once: the second waits for the first's transaction, and is
    refused where the first committed, let through where it rolled back (on SQLite and on PostgreSQL)."""
    with db.write() as session:
        assert move_mark(session, MinorsMark, "race", 0, 10)
    inside = threading.Event()

    def first_round() -> None:
        with contextlib.suppress(RuntimeError), db.write() as session:
            assert move_mark(session, MinorsMark, "race", 10, 20)
            inside.set()
            time.sleep(0.3)  # the second round's write comes now, and waits
            if not first_commits:
                raise RuntimeError("the round died before its commit")

    thread = threading.Thread(target=first_round)
    thread.start()
    assert inside.wait(10)
    with db.write() as session:
        second = move_mark(session, MinorsMark, "race", 10, 30)
    thread.join()
    assert second is not first_commits
    with db.read() as session:
        mark = session.get(MinorsMark, "race")
    assert mark is not None and mark.last_id == (20 if first_commits else 30)
