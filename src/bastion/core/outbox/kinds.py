"""Message kinds and the table that says who delivers each one.

A domain declares the messages it sends as a ``MessageKind`` (a ``StrEnum``: the values are storage keys and the
``Bastion-Event`` header, never renamed); ``enqueue`` takes nothing else. Each app declares, in one ``Routes``
table, the sender of every kind it delivers: a ``WebhookSender`` with the HMAC secret, one with this end's Ed25519
key for the TCO wire, or a domain's own (``ReportSender``). The table is checked when it is built (only declared
kinds, every member of an enum it names) and against the database when the outbox starts (no undelivered message of
a kind nobody here delivers), so a kind is never matched by a string prefix at run time.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from sqlalchemy import select

from bastion.core.db import Database
from bastion.core.errors import DomainError
from bastion.core.outbox.delivery import Claim, SendResult
from bastion.core.outbox.models import DeliveryState, OutboxMessage


class MessageKind(enum.StrEnum):
    """Base of every domain's outbox message kinds (subclass it with members; values at most 64 characters)."""


class Priority(enum.IntEnum):
    """Which due message a deliverer takes first; among equals, the one due longest. Stored as the integer."""

    NORMAL = 0
    URGENT = 10


class UnknownKind(DomainError):
    """A kind nobody declared or nobody here delivers: refused before anything is queued or started."""

    status = 500
    title = "Unknown outbox message kind"


class Sender(Protocol):
    """Delivers one claim. Return a result for every failure you understand; an exception counts as retryable."""

    def send(self, claim: Claim) -> SendResult: ...


@runtime_checkable
class GivesUp(Protocol):
    """A sender that must hear when the outbox gives up on one of its messages for good (out of attempts, refused,
    or its deliverer died on the last attempt), to say so where people look (an order, a report's delivery)."""

    def on_dead(self, claim: Claim, result: SendResult) -> None: ...


class Routes:
    """The declared sender of each message kind: one outbox, one worker, each kind delivered its own way.

    Refused at construction: a kind that is not a ``MessageKind`` member, and an enum whose members are not all
    routed (a kind added to a domain and forgotten here would otherwise only fail when first sent).
    """

    def __init__(self, table: Mapping[MessageKind, Sender]) -> None:
        for kind in table:
            if not isinstance(kind, MessageKind):
                raise UnknownKind(f"outbox route for {kind!r}: not a declared MessageKind")
        for family in {type(kind) for kind in table}:
            missing = sorted(k.value for k in family if k not in table)
            if missing:
                raise UnknownKind(f"{family.__name__} kinds with no sender: {', '.join(missing)}")
        self._table: dict[str, Sender] = {kind.value: sender for kind, sender in table.items()}

    def __repr__(self) -> str:
        return f"Routes({sorted(self._table)})"

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._table)

    def send(self, claim: Claim) -> SendResult:
        sender = self._table.get(claim.kind)
        if sender is None:  # a row written by another app's code, or a kind retired since: a person must look
            return SendResult.give_up(f"no sender here for message kind {claim.kind!r}")
        return sender.send(claim)

    def on_dead(self, claim: Claim, result: SendResult) -> None:
        sender = self._table.get(claim.kind)
        if isinstance(sender, GivesUp):
            sender.on_dead(claim, result)

    def check(self, db: Database) -> None:
        """Refuse to start delivering while the outbox holds undelivered messages of kinds no sender here takes:
        they would die unsent (two apps sharing one database, or a kind retired with messages still queued)."""
        strange = sorted(set(undelivered_kinds(db)) - self._table.keys())
        if strange:
            raise UnknownKind(f"the outbox holds undelivered messages of kinds this app does not deliver: "
                              f"{', '.join(strange)}")


def undelivered_kinds(db: Database) -> Iterable[str]:
    live = (DeliveryState.PENDING.value, DeliveryState.DELIVERING.value)
    with db.read() as session:
        return list(session.scalars(select(OutboxMessage.kind).where(OutboxMessage.state.in_(live)).distinct()))
