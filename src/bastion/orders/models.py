"""The contact point's tables: registered keys, seen nonces, received orders and their append-only event log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog


class TrustedKey(Base):
    """A public key this platform accepts orders from: a hub's, or a competent authority's."""

    __tablename__ = "order_trusted_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: ``hub`` or ``authority`` (``orders/services.py: SenderRole``).
    role: Mapped[str] = mapped_column(String(16))
    #: The authority's Member State; empty for a hub.
    member_state: Mapped[str] = mapped_column(String(2), default="")
    public_key: Mapped[str] = mapped_column(String(64))
    #: Where answers (Annex II and III) to orders from this sender go.
    answer_url: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SeenNonce(Base):
    """Nonces of accepted signatures, kept for the signature window: a second use is a replay."""

    __tablename__ = "signed_nonces"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class ReceivedOrder(Base):
    """A removal order or referral as received, and where it stands (a projection of its events)."""

    __tablename__ = "received_orders"
    __table_args__ = (Index("ix_received_orders_state_deadline", "state", "deadline_at"),)

    #: The order reference the sender gave; a repeat with the same reference is the same order.
    reference: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    provider_reference: Mapped[str] = mapped_column(String(64), unique=True)
    sender_key: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    body_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(24))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: When the one-hour clock last (re)started: receipt, or the clarification after an Annex III.
    clock_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    deadline_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    content_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Identification added by clarifications (after an Annex III), kept apart: ``body`` stays what was received.
    clarified: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    action: Mapped[str] = mapped_column(String(16), default="")
    action_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: How many escalation steps have been sent for the running clock.
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    answer_url: Mapped[str] = mapped_column(String(2000), default="")
    #: When the content provider may be told of the removal (Art. 11): at once, or when non-disclosure ends.
    notify_provider_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    provider_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OrderEvent(EventLog, Base):
    """Every step of every order, never updated (``orders/events.py``): the Art. 7 transparency numbers are counted
    from these. ``subject`` is the order's reference."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_subject", "subject", "id"),)


class PreservedContent(Base):
    """Removed content and its data, kept sealed (AES-GCM, the media key) for review and complaints (TCO Art. 6).

    ``sealed`` is emptied when ``keep_until`` passes; the row stays as the record of the purge.
    """

    __tablename__ = "preserved_content"
    __table_args__ = (UniqueConstraint("order_reference", "content_id", name="uq_preserved_content_order_item"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_reference: Mapped[str] = mapped_column(String(120))
    content_id: Mapped[str] = mapped_column(String(200))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    preserved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    keep_until: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
