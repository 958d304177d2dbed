"""Banks of known content and the change log that keeps every process's indexes in step with them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime


class Bank(Base):
    """A named list of known content, e.g. ``TERRORIST_CONTENT`` or ``CSAM_KNOWN``."""

    __tablename__ = "banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Child sexual abuse material: only admins and child-safety specialists see or change its entries.
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Also match flipped and rotated copies (PDQ's dihedral hashes).
    dihedral: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Per signal type, the distance at or under which an entry matches; absent types use their default.
    thresholds: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class BankEntry(Base):
    __tablename__ = "bank_entries"
    __table_args__ = (
        UniqueConstraint("bank_id", "signal_type", "value_digest", name="uq_bank_entries_value"),
        Index("ix_bank_entries_type_enabled", "signal_type", "enabled", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    #: SHA-256 of the value, its 32 bytes: a short unique key even for long values (a video's frame list); bytes,
    #: not hex, so the unique index compares half as much, byte-wise (no collation), on every insert.
    value_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    category: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ChangeOp(enum.StrEnum):
    """What a change-log row asks an index to do. Values are storage keys."""

    ADD = "add"  # entry_id became live
    REMOVE = "remove"  # entry_id is gone or disabled
    ADD_RANGE = "add_range"  # a bulk import: every entry of bank_id with entry_id <= id <= last_entry_id
    BANK = "bank"  # bank_id's settings changed (enabled, thresholds, dihedral)


class BankChange(Base):
    """The bank change log. Its ids only grow, so each process remembers the last one it applied."""

    __tablename__ = "bank_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    op: Mapped[str] = mapped_column(String(16))
    bank_id: Mapped[int] = mapped_column(Integer)
    signal_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EntryOrigin(Base):
    """Where an entry came from outside Bastion: the exchange (by its configured name) and the exchange's own record
    id. An entry may have several (two records, or two exchanges, sharing a hash); it goes when its last origin
    does, if an exchange added it. Kept here, beside the entries, so every domain that shows a match (the review
    console, child-safety reports) can name its origin without importing the exchanges."""

    __tablename__ = "bank_entry_origins"
    __table_args__ = (
        UniqueConstraint("entry_id", "exchange", "record", name="uq_bank_entry_origins"),
        Index("ix_bank_entry_origins_record", "exchange", "record"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("bank_entries.id", ondelete="CASCADE"), index=True)
    exchange: Mapped[str] = mapped_column(String(64))
    #: The exchange's id of the record (ThreatExchange: ``HASH_PDQ:<hash>``; NCMEC: ``<esp id>-<entry id>``).
    record: Mapped[str] = mapped_column(String(300))
    #: What feedback needs to name the record at the exchange (ThreatExchange's descriptor ids), as the exchange
    #: gave it.
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
