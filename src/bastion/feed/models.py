"""Crisis state: the append-only crisis event log (the truth) and the crisis rows kept in step with it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog


class CrisisEvent(EventLog, Base):
    """Activation, rules, material banked, perpetrator content, notes, threats reported, deactivation
    (kinds: ``crisis.CrisisEventKind``; subject ``crisis:<id>``)."""

    __tablename__ = "crisis_events"
    __table_args__ = (Index("ix_crisis_events_subject", "subject", "id"),)


class Crisis(Base):
    """A crisis and its rules, as its events left it (``crisis.next_state`` moves ``state``)."""

    __tablename__ = "crises"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: The protocol it was declared under (``crisis.Protocol``) and its reference there.
    protocol: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(200))
    #: The GIFCT Content Incident Protocol's level, or the internal severity; empty when the protocol has none.
    level: Mapped[str] = mapped_column(String(32), default="")
    title: Mapped[str] = mapped_column(Text, default="")
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The bank its known material and confirmed perpetrator content go into.
    bank: Mapped[str] = mapped_column(String(100))
    exclude_live: Mapped[bool] = mapped_column(Boolean, default=True)
    review_threshold_factor: Mapped[float] = mapped_column(Float, default=0.8)
    severity_boost: Mapped[int] = mapped_column(Integer, default=1)
    #: Bank the media of every removal a moderator confirms in the crisis categories while it is active.
    bank_confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The exchanges its confirmed perpetrator content is shared with (names; empty: none), set by an admin.
    share_with: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    #: The last moderation event the crisis looked at for confirmed removals (``crisis.bank_confirmed_removals``).
    decisions_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16))
    activated_by: Mapped[str] = mapped_column(String(200))
    activated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    deactivated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
