"""The outbox table: one row per message to the outside world, written in the transaction that decided to send it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime


class DeliveryState(enum.StrEnum):
    """Where a message is in its life. Values are storage keys: never rename them."""

    PENDING = "pending"  # waiting for next_attempt_at
    DELIVERING = "delivering"  # claimed by a deliverer until locked_until; reclaimable after that (it crashed)
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # permanent failure or out of attempts; needs a person


class OutboxMessage(Base):
    """A message to deliver at least once. The receiver drops repeats by ``idempotency_key``."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: What the message says, e.g. ``moderation.action``; sent as the ``Bastion-Event`` header.
    kind: Mapped[str] = mapped_column(String(64))
    #: Where it goes (a URL).
    destination: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING.value)
    #: Due messages are claimed highest first (``kinds.Priority``: an urgent forward before the backlog).
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Attempts started so far (counted at claim, so a message that crashes its deliverer still runs out).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: End of the current deliverer's lease while ``delivering``.
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Short reason of the last failure: never the payload, a response body or a secret.
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
