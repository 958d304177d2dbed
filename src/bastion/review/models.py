from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime


class CaseState(enum.StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DECIDED = "decided"


class CaseReason(enum.StrEnum):
    """Why a case was opened. Values are storage keys."""

    UPLOAD = "upload"  # the policy held an upload for review
    NOTICE = "notice"  # a user or trusted flagger reported it (DSA Art. 16)
    VIEWS = "views"  # its views crossed a threshold of the policy
    APPEAL = "appeal"  # the uploader contests a decision


class Case(Base):
    """One piece of work for a human. Its state changes only through ``review.services``."""

    __tablename__ = "review_cases"
    __table_args__ = (Index("ix_review_cases_queue_state", "queue", "state", "rank_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(200), index=True)
    queue: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    severity: Mapped[int] = mapped_column(Integer)
    #: Views when the case was opened or last raised: more reach, sooner review.
    reach: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16), default=CaseState.OPEN.value)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Order of claiming: the deadline brought forward by severity and reach (``review.services.rank_at``).
    rank_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claim_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: An appeal must go to someone other than the moderator who decided first.
    excluded_reviewer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Sent up to senior moderators (child-safety specialists in a restricted queue): only they may claim it.
    escalated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    escalation_note: Mapped[str | None] = mapped_column(String(2000), nullable=True)
