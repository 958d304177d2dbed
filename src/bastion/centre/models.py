"""What the Centre keeps: every report received, and which report first brought each piece of material.

``centre_material`` has one row per media hash: the first report to insert it owns it, so two providers racing
with the same material still produce exactly one forwarded report (the loser's insert fails and it is a duplicate).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime


class CentreReport(Base):
    __tablename__ = "centre_reports"
    __table_args__ = (UniqueConstraint("provider", "provider_reference"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    provider: Mapped[str] = mapped_column(String(200))
    provider_reference: Mapped[str] = mapped_column(String(100))
    #: NCMEC's reportId when the provider also reported there (Art. 13(h)).
    ncmec_report_id: Mapped[str] = mapped_column(String(100), default="", index=True)
    member_state: Mapped[str] = mapped_column(String(8))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    #: forwarded, duplicate or unfounded.
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    duplicate_of: Mapped[str] = mapped_column(String(36), default="")
    #: Which law-enforcement authority it was forwarded to (a Member State code, or EUROPOL).
    forwarded_to: Mapped[str] = mapped_column(String(16), default="")
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CentreMaterial(Base):
    __tablename__ = "centre_material"

    media_hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36))
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
