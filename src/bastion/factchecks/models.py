"""Fact-checking state: partners and their keys, items sent, ratings received, and the event log of all three."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog


class FactcheckEvent(EventLog, Base):
    """Partners registered, items sent, ratings received (kinds: ``events.FactcheckKind``). Never updated."""

    __tablename__ = "factcheck_events"
    __table_args__ = (Index("ix_factcheck_events_subject", "subject", "id"),)


class FactcheckPartner(Base):
    """A fact-checking partner: where items go, and the Ed25519 key its ratings must be signed with."""

    __tablename__ = "factcheck_partners"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: ``core.signing.key_id`` of ``public_key``: the ``key=`` of the partner's signature header.
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    public_key: Mapped[str] = mapped_column(String(100))
    #: Where items to check are POSTed (through the outbox, signed with this platform's key).
    url: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class FactcheckRequest(Base):
    """An item sent to a partner. A partner may rate only content sent to it."""

    __tablename__ = "factcheck_requests"
    __table_args__ = (Index("ix_factcheck_requests_partner_content", "partner", "content_id"),)

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner: Mapped[str] = mapped_column(String(100))
    content_id: Mapped[str] = mapped_column(String(200))
    sent_by: Mapped[str] = mapped_column(String(200))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class FactcheckRating(Base):
    """A rating as received, with the answer given, so the same rating again gets the same answer."""

    __tablename__ = "factcheck_ratings"
    __table_args__ = (UniqueConstraint("partner", "rating_id", name="uq_factcheck_ratings_partner_rating"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    partner: Mapped[str] = mapped_column(String(100))
    rating_id: Mapped[str] = mapped_column(String(200))
    content_id: Mapped[str] = mapped_column(String(200), index=True)
    rating: Mapped[str] = mapped_column(String(32))
    #: SHA-256 of the exact body received: the same rating id with another body is refused (409).
    body_sha256: Mapped[str] = mapped_column(String(64))
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
