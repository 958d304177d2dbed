"""Transparency's roll-ups: per-day counts of every fact, kept by a worker that follows the event logs.

The event logs stay the only truth: a roll-up row is a sum of facts read from them, and ``transparency_marks`` says
which events have been counted (one high-water mark per log, moved in the same transaction as the counts).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import LogMark

#: A cell's columns after its day (or month) and metric, in the order of its unique key.
CELL_COLUMNS = ("category", "country", "territory", "content_type", "language", "source", "path", "action",
                "proactive", "before_view", "bucket")


class CellCounts:
    """What a roll-up row and a cut row share: the dimensions of a cell, its duration bucket and its counts."""

    category: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(8))
    territory: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(24))
    path: Mapped[str] = mapped_column(String(24))
    action: Mapped[str] = mapped_column(String(32))
    proactive: Mapped[bool] = mapped_column(Boolean)
    before_view: Mapped[bool] = mapped_column(Boolean)
    #: The upper bound, in seconds, of the duration bucket (``metrics.bucket``); -1 for a fact with no duration.
    bucket: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger)
    #: Items a fact carries (an order's URLs); equal to ``count`` for facts of one item each.
    items: Mapped[int] = mapped_column(BigInteger)


class Rollup(CellCounts, Base):
    """How many facts of one kind, on one day, with the same dimensions and the same duration bucket."""

    __tablename__ = "transparency_rollups"
    __table_args__ = (UniqueConstraint("day", "metric", *CELL_COLUMNS, name="uq_transparency_rollups_cell"),
        # a report's cut of a few metrics (orders) reads their rows alone
        Index("ix_transparency_rollups_metric_day", "metric", "day"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    metric: Mapped[str] = mapped_column(String(24))


class Mark(LogMark, Base):
    """The id of the last event of one log counted into the roll-ups."""

    __tablename__ = "transparency_marks"


class Cut(CellCounts, Base):
    """A month's roll-ups summed over its days and over the dimensions not in ``keep`` (``metrics.project``): what a
    query for whole months reads instead of a month of daily rows, kept by the worker in the same transaction as
    ``Rollup`` (``rollups.CUTS`` names the cuts kept)."""

    __tablename__ = "transparency_cuts"
    __table_args__ = (UniqueConstraint("month", "keep", "metric", *CELL_COLUMNS, name="uq_transparency_cuts_cell"),
        # the counts alone (no duration): a year's cut reads them without walking its histogram rows (migration 0034)
        Index("ix_transparency_cuts_counts", "keep", "month", postgresql_where=text("bucket = -1"),
              sqlite_where=text("bucket = -1")))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: The month's first day.
    month: Mapped[dt.date] = mapped_column(Date)
    #: The dimension columns kept, comma-joined in ``metrics.DIMENSION_COLUMNS`` order ("" : none).
    keep: Mapped[str] = mapped_column(String(64))
    #: A metric, or ``metrics.histogram(metric)`` for its duration histogram.
    metric: Mapped[str] = mapped_column(String(32))


class Quarantined(Base):
    """An event the worker could not read (its payload does not validate): skipped, so counting goes on, and kept
    here for an operator (``/status`` and the dashboard show how many)."""

    __tablename__ = "transparency_quarantined"

    log: Mapped[str] = mapped_column(String(48), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    error: Mapped[str] = mapped_column(String(500))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class DayCut(CellCounts, Base):
    """A day's roll-ups summed over the dimensions not in ``keep``, as ``Cut`` sums a month's (``rollups.DAY_CUTS``
    names the cuts kept): what the days of a period outside its whole months read, a few hundred rows a day
    instead of every cell of it (the console's default period, a rolling 30 days, is such days alone)."""

    __tablename__ = "transparency_day_cuts"
    __table_args__ = (UniqueConstraint("day", "keep", "metric", *CELL_COLUMNS, name="uq_transparency_day_cuts_cell"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    keep: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(32))


class Release(Base):
    """What researchers read of one closed calendar month at one small-cell threshold: every grouping's answer as
    ``metrics.suppress_period`` cut it and the dashboard drawn from it, computed once (``releases``). A closed
    month's figures no longer change, so neither does its release: two researchers, or one asking twice, get the same
    numbers, read and not recomputed."""

    __tablename__ = "transparency_releases"

    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    min_cell: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``releases.RELEASE_VERSION`` when made: a release of another shape is made again, not read.
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Grouping ("" for none, else a ``metrics.Dimension`` value) -> that answer's groups (``Figures`` as JSON).
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Grouping (a ``metrics.Dimension`` value) -> the researcher's dashboard charts (``dashboard.Chart`` as JSON).
    charts: Mapped[dict[str, Any]] = mapped_column(JSON)
    made_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
