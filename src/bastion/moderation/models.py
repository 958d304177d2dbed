"""Moderation state: the append-only event log (the truth) and the projections kept in step with it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog


class ModerationEvent(EventLog, Base):
    """Who did what to which subject (``content:<id>`` or ``account:<id>``), when and why. Never updated, never
    deleted. Written with ``core.events.record`` (kinds: ``events.EventKind``; payloads: the models in ``events``)."""

    __tablename__ = "moderation_events"
    __table_args__ = (Index("ix_moderation_events_subject", "subject", "id"),)


class ContentItem(Base):
    """An upload as the platform registered it, and its current status (a projection of its events)."""

    __tablename__ = "content_items"

    content_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    #: The uploader's age in years, as the platform knows it.
    uploader_age: Mapped[float] = mapped_column(Float)
    account_country: Mapped[str] = mapped_column(String(2))
    content_type: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    #: The name the user uploaded the file under, when the platform gives it (NCMEC's ``originalFileName``).
    file_name: Mapped[str] = mapped_column(String(300), default="")
    signals: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    verdict: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    #: Restrictions in force (age_restrict, demote, ...), for the platform and the statement of reasons.
    restrictions: Mapped[list[str]] = mapped_column(JSON, default=list)
    category: Mapped[str] = mapped_column(String(64), default="")
    #: Where the content is disabled (ISO 3166-1 alpha-2), while ``disable_in_territories`` is among the restrictions;
    #: stale otherwise (whatever lifts restrictions need not clear it: readers check the restriction first).
    territories: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    #: A livestream (or its recording): a crisis may keep those from some countries out of feeds (``feed/``).
    live: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    shares: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Account(Base):
    """An uploader's standing: strikes and suspension (a projection of account events)."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    strikes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    suspended_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StatementOfReasons(Base):
    """What the uploader is told about a restriction (DSA Art. 17), with the Transparency Database fields."""

    __tablename__ = "statements_of_reasons"

    puid: Mapped[str] = mapped_column(String(100), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(200), index=True)
    account_id: Mapped[str] = mapped_column(String(200))
    decided_by: Mapped[str] = mapped_column(String(200))
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Appeal(Base):
    """A complaint against a decision (DSA Art. 20), decided by another moderator."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(200), index=True)
    statement_puid: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="open")
    case_id: Mapped[int] = mapped_column(BigInteger)
    filed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MediaPreview(Base):
    """What a reviewer sees of held or blocked media: a small JPEG (a frame sheet for video), sealed at rest.

    The original upload is never kept; the platform holds it. Sealed with ``core.sealing`` so a database dump shows
    no image, and the content id is bound to the blob.
    """

    __tablename__ = "media_previews"

    content_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
