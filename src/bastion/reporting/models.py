"""Reports, their files and their deliveries to each centre.

A report groups one offending account's confirmed material (one report per account, as real teams file them).
Every change of a report or a delivery is an event in ``report_events`` (``reporting/events.py``); the ``state``
columns are its projection. A delivery is the report at one centre: its state, the centre's id, the last error and
the document as sent, so ``bastion reports export`` can show an auditor exactly what left. ``(centre, fingerprint)``
is unique: the same material of the same account is never reported twice to one centre, whatever retries or races
happen.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog


class ChildSafetyReport(Base):
    __tablename__ = "child_safety_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    account_country: Mapped[str] = mapped_column(String(2), default="")
    incident_type: Mapped[str] = mapped_column(String(100))
    #: When the earliest of its files was uploaded.
    incident_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    trigger: Mapped[str] = mapped_column(String(16))
    #: Why this report needs urgent action (imminent risk to a child); empty when it does not.
    urgent_reason: Mapped[str] = mapped_column(Text, default="")
    #: Whether the material was removed or access to it disabled when the report was drafted.
    removed: Mapped[bool] = mapped_column(Boolean, default=True)
    #: sha256 of account, incident type and the sorted media hashes (``services.fingerprint``).
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_by: Mapped[str] = mapped_column(String(200), default="")
    #: Material and data are kept, sealed, until then (``BASTION_REPORTS_PRESERVATION_DAYS``), then purged.
    preserve_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ReportedFile(Base):
    """One piece of material in a report: its hashes, its classification, and the sealed bytes while preserved.

    Bastion never keeps uploads; the bytes come from the platform, checked against the hashes taken at upload.
    A content item is in at most one report (``content_id`` is unique): two drafting rounds racing on
    PostgreSQL cannot put the same material into two reports.
    """

    __tablename__ = "reported_files"
    __table_args__ = (UniqueConstraint("content_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("child_safety_reports.id", ondelete="CASCADE"), index=True)
    content_id: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(String(200))
    #: Why this file was drafted (``Trigger``): NCMEC's ``fileViewedByEsp`` and the EU Centre's kind are per file.
    trigger: Mapped[str] = mapped_column(String(16), default="")
    content_type: Mapped[str] = mapped_column(String(16))
    md5: Mapped[str] = mapped_column(String(32), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="", index=True)
    classification: Mapped[str] = mapped_column(String(2), default="")
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: The name of the file the platform handed in (``PUT .../files/{id}``): NCMEC's ``fileName``.
    file_name: Mapped[str] = mapped_column(String(300), default="")
    #: The name the user uploaded it under, as the platform gave it at intake: NCMEC's ``originalFileName``.
    original_file_name: Mapped[str] = mapped_column(String(300), default="")
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    ncmec_file_id: Mapped[str] = mapped_column(String(100), default="")
    #: The MD5 NCMEC computed on upload; it must equal ``md5``.
    ncmec_md5: Mapped[str] = mapped_column(String(32), default="")
    ncmec_details_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The ``<fileDetails>`` as sent to NCMEC, for the export (what left, not what would be built today).
    ncmec_details: Mapped[str] = mapped_column(Text, default="")
    #: Its bytes were held when the report was sent, so NCMEC must get them (not just the hashes).
    attached: Mapped[bool] = mapped_column(Boolean, default=False)


class ReportedRepeat(Base):
    """Another upload of a file already in a report, by the same account: another incident of the same material.

    It is not a second file (the same bytes are not reported twice) but it is recorded, so the report names every
    time the account uploaded it and the upload is no longer a drafting candidate.
    """

    __tablename__ = "report_repeats"
    __table_args__ = (UniqueConstraint("content_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("child_safety_reports.id", ondelete="CASCADE"), index=True)
    content_id: Mapped[str] = mapped_column(String(200))
    #: The reported file it repeats (its ``content_id``).
    repeat_of: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Recorded after the report was sent: the report as sent does not name it (it is covered by it).
    after_sending: Mapped[bool] = mapped_column(Boolean, default=False)


class ReportDelivery(Base):
    __tablename__ = "report_deliveries"
    __table_args__ = (UniqueConstraint("centre", "fingerprint"), UniqueConstraint("report_id", "centre"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("child_safety_reports.id", ondelete="CASCADE"), index=True)
    centre: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    #: The centre's id of the report (NCMEC's reportId, the EU Centre's reference).
    remote_id: Mapped[str] = mapped_column(String(100), default="")
    #: What the centre said about it (EU Centre: forwarded, duplicate, unfounded), and why.
    centre_status: Mapped[str] = mapped_column(String(32), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    #: The document as sent (NCMEC XML, EU Centre JSON), for audits and the authorities' questions.
    document: Mapped[str] = mapped_column(Text, default="")
    #: The ``Bastion-Ed25519`` signature header the document was last sent with (EU Centre: Art. 13(b)).
    signature: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ReportEvent(EventLog, Base):
    """A report's history (``subject`` is the report id): drafted, revised, sent, and each centre's delivery."""

    __tablename__ = "report_events"
    __table_args__ = (Index("ix_report_events_subject", "subject", "id"),)
