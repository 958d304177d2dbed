"""What the Centre keeps: every report received (signed), which report first brought each piece of material, the
material already reported per suspect, and the providers' public keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, LargeBinary, String, Text, UniqueConstraint
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
    #: Art. 13(b): the provider's ``Bastion-Ed25519`` signature, its key, and the exact bytes it signed.
    signature: Mapped[str] = mapped_column(String(400), default="")
    key_id: Mapped[str] = mapped_column(String(16), default="")
    signed_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CentreMaterial(Base):
    """Which report first brought each piece of material, from any provider: how much of a report was known."""

    __tablename__ = "centre_material"

    media_hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36))
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SuspectMaterial(Base):
    """Material one provider already reported for one suspect (the accounts a report names).

    The same material from another suspect, or from another provider, is another lead and is forwarded; only the
    same suspect's material from the same provider again is a duplicate. One row per (suspect, hash): two copies
    of the same report racing still forward once.
    """

    __tablename__ = "centre_suspect_material"

    suspect: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36))
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ProviderKey(Base):
    """A provider's Ed25519 public key: reports signed by it are the provider's (Art. 13(b))."""

    __tablename__ = "centre_provider_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: The provider's name at the Centre (its API token's name).
    provider: Mapped[str] = mapped_column(String(200), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
