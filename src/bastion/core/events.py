"""One event shape for every domain's append-only log, and one writer.

Every stateful subject (a content item, an order at the contact point, an order at the hub, a child-safety report,
an outbox delivery) keeps its history as rows of the same shape: on which ``subject``, which ``kind`` (a ``StrEnum``
value), by which ``actor``, ``at`` what time, with a typed payload in ``data``, and an optional ``external_id`` that
makes a retried write a no-op (Ozone's ``moderation_event``). Transparency counts all of them with one query shape.

A domain declares its table with ``class OrderEvent(EventLog, Base): __tablename__ = "order_events"``, its kinds as a
``StrEnum``, its payloads as pydantic models, and writes only through ``record``. Reads go through ``payload``, which
validates the stored JSON against the model, so a changed payload fails loudly at the read, not silently downstream.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    CursorResult,
    Dialect,
    Integer,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from bastion.core.db import UTCDateTime, dialect_insert, is_sqlite

#: The widest subject: a kind prefix (``content:``, ``account:``) and an id of up to 200 characters.
SUBJECT_LENGTH = 260


class EventLog:
    """The columns every event table shares (a declarative mixin: ``class XEvent(EventLog, Base)``)."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    kind: Mapped[str] = mapped_column(String(48))
    actor: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    @declared_attr
    def external_id(cls) -> Mapped[str | None]:
        """A retry's key: a second write with the same ``external_id`` is not written again."""
        return mapped_column(String(300), unique=True, nullable=True)


E = TypeVar("E", bound=EventLog)
P = TypeVar("P", bound=BaseModel)


def record(session: Session, table: type[E], *, subject: str, kind: enum.StrEnum, actor: str, at: dt.datetime,
           data: BaseModel | None = None, external_id: str | None = None) -> E:
    """Append one event in the caller's transaction, or return the one already written under ``external_id``.

    The payload is a pydantic model, stored as its JSON (``mode="json"``: datetimes as ISO 8601 text).
    """
    if external_id is not None:
        existing = session.scalar(select(table).where(table.external_id == external_id))
        if existing is not None:
            return existing
    event = table()  # the mixin declares no constructor; the mapped class's own takes keywords, set them here
    event.subject, event.kind, event.actor, event.at, event.external_id = subject, kind.value, actor, at, external_id
    event.data = data.model_dump(mode="json") if data is not None else {}
    session.add(event)  # flushed with the rest of the transaction, in the order added
    return event


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event for ``record_many``: the columns ``record`` takes, without an ``external_id``."""

    subject: str
    kind: enum.StrEnum
    actor: str
    at: dt.datetime
    data: BaseModel | None = None


def record_many(session: Session, table: type[EventLog], events: Sequence[NewEvent]) -> None:
    """Append many events in the caller's transaction with one statement (no ORM object per row).

    For hot paths that write an event per item of a batch (a feed's denied interactions, an upload's signals): the
    rows commit or roll back with the caller's transaction, like ``record``'s, after whatever the session holds
    unflushed (rows are inserted in the order given; ids grow with it). Each row's ``at`` is written as that
    database's type writes it (SQLite compares the text, so it must be ``record``'s to the character), and its
    payload by pydantic straight to JSON (half the cost of SQLAlchemy's per-row processing of the same values; a
    float that is not finite is written as null, as JSON has no other way). No ``external_id``: a retried batch is a
    new batch.

    SQLite: the driver's ``executemany`` of one INSERT. PostgreSQL: the rows as one JSON array, unpacked by one
    statement; psycopg's ``executemany`` adapted every value of every row in Python and sent each row as a
    statement of its own (``docs/benchmarks.md``, "PostgreSQL: fewer round trips and statements").
    """
    if not events:
        return
    session.flush()
    connection = session.connection()
    sql, process_at = _insert_many(table.__table__, connection.dialect)  # type: ignore[attr-defined]
    payloads = [e.data.model_dump_json() if e.data is not None else "{}" for e in events]
    # A batch's events mostly share one time: each different one is processed once.
    times = {at: process_at(at) for at in {e.at for e in events}}
    if is_sqlite(connection):  # positional parameters, a row each, in the INSERT's order
        connection.exec_driver_sql(sql, [(e.subject, e.kind.value, e.actor, times[e.at], data)
                                         for e, data in zip(events, payloads, strict=True)])
        return
    # PostgreSQL: one JSON array of rows. Each payload goes in as a JSON string (its text, encoded again): PostgreSQL
    # refuses to read a string holding \u0000 out of JSON, and a payload may hold one (an error a remote API sent).
    text = _JSON_TEXT
    texts = {at: text(processed.isoformat()) for at, processed in times.items()}
    array = ",".join(f"[{text(e.subject)},{text(e.kind.value)},{text(e.actor)},{texts[e.at]},{text(data)}]"
                     for e, data in zip(events, payloads, strict=True))
    connection.exec_driver_sql(sql, {"rows": f"[{array}]"})


#: A string as JSON, its text beyond ASCII kept as it is (``json.dumps`` with an option builds an encoder per call).
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False).encode
_InsertMany = tuple[str, Callable[[dt.datetime], Any]]
#: The columns ``record_many`` writes, in its INSERT's order (``id`` is the database's; no ``external_id``).
_WRITTEN = ("subject", "kind", "actor", "at", "data")
#: ``_insert_many``'s by table and kind of database (not by dialect object: each engine has its own).
_INSERTS: dict[tuple[str, str, str], _InsertMany] = {}


def _insert_many(table: Table, dialect: Dialect) -> _InsertMany:
    """The driver's INSERT of an event's columns (subject, kind, actor, at, data), and ``at``'s processor: the
    dialect's own type's, whose text SQLite stores (``UTCDateTime``'s alone would leave the datetime to the driver,
    which writes another text), and which refuses a naive time on both."""
    key = (table.name, dialect.name, dialect.driver)
    found = _INSERTS.get(key)
    if found is None:
        process = table.c.at.type.dialect_impl(dialect).bind_processor(dialect)
        process_at = process if process is not None else (lambda at: at)
        others = set(table.c.keys()) - {"id", "external_id", *_WRITTEN}
        if others:  # a column this INSERT would leave to its default, unseen
            raise TypeError(f"{table.name} has columns record_many does not write: {sorted(others)}")
        quote = dialect.identifier_preparer.quote
        columns = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
                   f"({', '.join(quote(c) for c in _WRITTEN)})")
        if dialect.name == "postgresql":
            # The array read once (jsonb), each row's fields taken from it. Strings are assigned uncast, so an
            # over-long one is refused as by any INSERT (a cast would cut it); the payload's text is cast to the
            # column's type as the driver's parameter was. WITH ORDINALITY and ORDER BY: the rows, and so their ids,
            # in the order given.
            sql = (f"{columns} SELECT r->>0, r->>1, r->>2, (r->>3)::{table.c.at.type.compile(dialect=dialect)}, "
                   f"(r->>4)::{table.c.data.type.compile(dialect=dialect)} "
                   "FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS given(r, n) ORDER BY n")
        else:
            sql = f"{columns} VALUES (?, ?, ?, ?, ?)"
        found = _INSERTS[key] = (sql, process_at)
    return found


#: How young an event may be before a follower of its log on PostgreSQL takes it in (seconds): a transaction that
#: took a lower id may commit after one with a higher id, and a mark must not pass it. SQLite has one writer at a
#: time, so its ids commit in order. One rule for every follower (the roll-ups, the grooming watch, releases).
SETTLE_SECONDS = 10.0


class LogMark:
    """How far a follower of an event log has read it: the id of the last event it took in, one row per log it
    follows (a declarative mixin: ``class Mark(LogMark, Base)``). The follower moves it in the transaction that
    writes what it made of the events, so a crash between the two loses or doubles nothing."""

    log: Mapped[str] = mapped_column(String(48), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)


def locked_mark(session: Session, table: type[LogMark], log: str) -> int:
    """``log``'s mark in ``table`` (0 when it has none yet), locked to the end of the caller's write transaction
    (``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so two followers never take in an event twice."""
    session.execute(dialect_insert(session.get_bind(), table).values(log=log, last_id=0)
                    .on_conflict_do_nothing(index_elements=["log"]))
    column: Any = table.last_id
    return int(session.scalar(select(column).where(table.log == log).with_for_update()) or 0)


def move_mark(session: Session, table: type[LogMark], log: str, after: int, last: int) -> bool:
    """Move ``log``'s mark in ``table`` from ``after`` (0: it has none yet) to ``last`` in the caller's write
    transaction, where it is still at ``after``; ``False`` where another follower moved it meanwhile (that one took
    these events in). A compare-and-set in one statement, for a follower that read its events before its write
    transaction: the row stays held to the end of that transaction (PostgreSQL's row lock; SQLite's one writer), but
    a transaction that has nothing else to write is this one statement, not a locked read, a check and a write
    (``locked_mark``)."""
    column: Any = table.last_id
    moved = session.execute(update(table).where(table.log == log, column == after).values(last_id=last)
                            .execution_options(synchronize_session=False))
    assert isinstance(moved, CursorResult)
    if moved.rowcount or after:
        return bool(moved.rowcount)
    first = session.execute(dialect_insert(session.get_bind(), table).values(log=log, last_id=last)
                            .on_conflict_do_nothing(index_elements=["log"]).returning(table.log))
    return first.first() is not None  # (an INSERT's rowcount is not told on PostgreSQL: what it returned is)


def payload(event: EventLog, model: type[P]) -> P:
    """An event's data read back as its payload model (validated: a payload that changed shape fails here)."""
    return model.model_validate(event.data)


def history(session: Session, table: type[E], subject: str) -> list[E]:
    """A subject's events, oldest first."""
    return list(session.scalars(select(table).where(table.subject == subject).order_by(table.id)))
