"""Minors' state: the append-only event log (the truth) and the projections kept in step with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog, LogMark


class MinorEvent(EventLog, Base):
    """Ages recorded and contested, denied interactions, contacts, settings, family links, cases."""

    __tablename__ = "minor_events"
    __table_args__ = (Index("ix_minor_events_subject", "subject", "kind", "at"),)


class MinorsMark(LogMark, Base):
    """How far the grooming watch has read the event log (``interactions.watch_grooming``): one row, ``grooming``."""

    __tablename__ = "minor_marks"


class AgeRecord(Base):
    """What the platform last told Bastion of an account's age, and the band the stated rule gives it."""

    __tablename__ = "minor_ages"
    #: Read by id for every account of every interaction check: on SQLite the rows live in the key's B-tree, so a
    #: look-up searches one B-tree, not the key's and then the rowid's (migration 0037).
    __table_args__ = ({"sqlite_with_rowid": False},)

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    basis: Mapped[str] = mapped_column(String(16))
    years: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(100), default="")
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    band: Mapped[str] = mapped_column(String(16))
    #: When the platform learnt it (declared, estimated, verified).
    observed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AccountSettings(Base):
    """A minor's settings as they stand after every recorded change (each change is also an event)."""

    __tablename__ = "minor_settings"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class FamilyLink(Base):
    """A parent's account paired with a teen's: pending (code shown to the parent), linked, or unlinked."""

    __tablename__ = "family_links"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    parent_id: Mapped[str] = mapped_column(String(200), index=True)
    teen_id: Mapped[str | None] = mapped_column(String(200), index=True, nullable=True)
    #: SHA-256 of the pairing code; the code itself is shown once and never stored.
    code_digest: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    code_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16))
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class MinorsCase(Base):
    """Work for a human about an account: an under-13 account to remove, or grooming signals to review."""

    __tablename__ = "minor_cases"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    #: The attempts that raised it (grooming), or the age that flagged it (under 13).
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The statement of reasons drafted for the account holder (DSA Art. 17), Transparency Database fields.
    statement: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: The statement's ``puid`` once issued: set when a specialist confirms the removal (a restriction decided, so
    #: its statement goes to the DSA Transparency Database); ``None`` while drafted, and for dismissed cases.
    statement_puid: Mapped[str | None] = mapped_column(String(100), nullable=True, unique=True)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
