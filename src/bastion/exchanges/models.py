"""An exchange's settings and where its fetch stands (the checkpoint, moved in the same commit as the entries)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime


class Exchange(Base):
    """One configured exchange feeding one bank. The credentials are never stored: ``credentials_env`` names the
    environment variable the fetching process reads them from."""

    __tablename__ = "exchanges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: ``ExchangeKind``: python-threatexchange's API name.
    kind: Mapped[str] = mapped_column(String(32))
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"), index=True)
    #: Bastion's names of the signal types taken; the others are skipped.
    signal_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Only records with one of these tags (ThreatExchange) or classifications (NCMEC); empty: all.
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The category entries get; empty: the record's first tag that passed.
    entry_category: Mapped[str] = mapped_column(String(64), default="")
    #: Kind-specific settings: ``privacy_group`` (ThreatExchange), ``environment`` and ``only_esp_ids`` (NCMEC),
    #: ``base_url`` (a test environment).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    credentials_env: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Seconds between scheduled fetches.
    interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    #: The exchange's checkpoint as JSON (null: never fetched); ``version`` counts its moves, so two fetchers of
    #: one exchange cannot both apply a page.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    checkpoint_version: Mapped[int] = mapped_column(Integer, default=0)
    last_fetch_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    records_fetched: Mapped[int] = mapped_column(BigInteger, default=0)
    entries_added: Mapped[int] = mapped_column(BigInteger, default=0)
    entries_removed: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class ExchangeCursor(Base):
    """How far a background round has read a log: ``decisions`` is the last moderation event turned into feedback."""

    __tablename__ = "exchange_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
