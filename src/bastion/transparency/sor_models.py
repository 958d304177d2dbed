"""Tables of the statements' submission to the DSA Transparency Database: one row per statement, and its history.

``sor_submissions`` is the statements' own outbox: a row is written in the transaction that issues the statement
(``moderation.kernel.Moderation.on_statement``) or by the backfill, and deliverers lease up to 100 due rows at a
time, so one request carries a batch while each statement keeps its own state, attempts and errors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog


class SorSubmission(Base):
    """Where one statement of reasons stands with the Transparency Database (``sor_states.SubmissionState``)."""

    __tablename__ = "sor_submissions"
    __table_args__ = (Index("ix_sor_submissions_due", "state", "next_attempt_at"),)

    #: The statement's ``puid``: also the database's key, so a repeat is answered ``existing`` and never doubled.
    puid: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    #: Requests that carried it and ended in a transient failure or a crash (not batches refused for others).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Lease generation: bumped at every claim, so a deliverer whose lease passed to another writes nothing.
    lease: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: The database's errors for this statement when it was refused (field -> messages); kept for people to see.
    errors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Short reason of the last transient failure (network, 5xx, auth): never a body or a token.
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: The database's ``uuid`` once accepted ("" when it answered ``existing`` without one).
    uuid: Mapped[str] = mapped_column(String(64), default="")
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SorEvent(EventLog, Base):
    """A statement's submission history: queued, accepted, already known, refused (subject ``sor:<puid>``)."""

    __tablename__ = "sor_events"
    __table_args__ = (Index("ix_sor_events_subject", "subject"),)
