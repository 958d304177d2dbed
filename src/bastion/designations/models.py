"""Designated entities, proposed changes of their category, and the event log of both."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog


class DesignationEvent(EventLog, Base):
    """Entities designated, changes proposed, confirmed or rejected (kinds: ``events.DesignationKind``)."""

    __tablename__ = "designation_events"
    __table_args__ = (Index("ix_designation_events_subject", "subject", "id"),)


class DesignatedEntity(Base):
    """An organisation on a designation list, and what links content to it (banks, keywords)."""

    __tablename__ = "designated_entities"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Words that link a text to the entity (matched as whole words, case-insensitive); aliases count too.
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Who designated it (``UN Security Council``, ``EU Council``...) and when.
    designating_body: Mapped[str] = mapped_column(String(200))
    designated_on: Mapped[dt.date] = mapped_column(Date)
    #: The policy category its content falls under (``moderation.policy.Category``); changed only by a confirmed
    #: ``DesignationChange``.
    category: Mapped[str] = mapped_column(String(64))
    #: Names of the banks whose entries are the entity's material.
    banks: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Taken off the list (the designating body revoked it): its links no longer make content designated.
    delisted_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class DesignationChange(Base):
    """A change of an entity (its category, its links, or delisting it): proposed with its preview, then confirmed
    by another person (applied) or rejected."""

    __tablename__ = "designation_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entity_id: Mapped[int] = mapped_column(BigInteger, index=True)
    #: What it would do (``events.ChangeKind``): a new category, new links, or delisting.
    kind: Mapped[str] = mapped_column(String(16), default="category", server_default="category")
    #: What a ``links`` or ``delist`` change applies once confirmed: the links after the edit, or the date and note.
    proposal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    #: The entity's category when proposed; a ``links`` or ``delist`` change keeps it (``to_category`` equal).
    from_category: Mapped[str] = mapped_column(String(64))
    to_category: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    #: What the change would do, as shown to the person who confirms it: open cases to move, past decisions it
    #: would alter, bank entries to recategorise.
    preview: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: What it did, once confirmed.
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    proposed_by: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
