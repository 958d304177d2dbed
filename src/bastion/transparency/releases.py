"""Researchers' releases: each closed calendar month's answers, suppressed once and kept.

A researcher reads one calendar month at a time, once it is over and counted (``api``): its figures no longer change.
Cutting its answers (``metrics.suppress_period``: every grouping under one hiding pattern) is the dear part of a
researcher's query, seconds for a month of tens of thousands of cells, and would give the same numbers every time.
So it is done once per month and threshold, kept in ``transparency_releases``, and read from there: by the worker
soon after a month closes (``release_next``), or by the first query that finds none (``answers``). A statistics
office works the same way: a month's tables are released once, not recomputed per reader.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bastion.core.clock import Clock
from bastion.core.db import Database, is_sqlite
from bastion.transparency import metrics, rollups
from bastion.transparency.metrics import Dimension, Figures
from bastion.transparency.models import Release, Rollup

Answers = dict[Dimension | None, list[Figures]]


def month_end(first: dt.date) -> dt.date:
    """The last day of the month that starts on ``first``."""
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def closed(session: Session, end: dt.date, today: dt.date) -> bool:
    """Whether a period ending on ``end`` is over and every event of it is counted: its figures will not change."""
    return end < today and rollups.counted_through(session, end)


def answers(db: Database, month: dt.date, k: int, clock: Clock) -> Answers:
    """The month's release at threshold ``k`` (``month``: its first day; the caller has checked it is closed):
    read when kept, else made and kept now."""
    with db.read() as session:
        found = session.get(Release, (month, k))
        if found is not None:
            return _read(found.answers)
        made = metrics.suppress_period(rollups.cells(session, month, month_end(month)), k)
    _keep(db, month, k, made, clock)
    return made


def release_next(db: Database, k: int, clock: Clock) -> bool:
    """The worker's round: release the oldest closed month with roll-ups that has none at ``k`` yet (one a round:
    a month costs seconds of CPU). Returns whether one was made (more may wait)."""
    today = clock.now().date()
    with db.read() as session:
        first_day = session.scalar(select(func.min(Rollup.day)))
        if first_day is None:
            return False
        released = set(session.scalars(select(Release.month).where(Release.min_cell == k)))
        month = first_day.replace(day=1)
        while month < today.replace(day=1) and (month in released or not _has_rows(session, month)):
            month = month_end(month) + dt.timedelta(days=1)
        if month >= today.replace(day=1) or not closed(session, month_end(month), today):
            return False
        made = metrics.suppress_period(rollups.cells(session, month, month_end(month)), k)
    _keep(db, month, k, made, clock)
    return True


def _has_rows(session: Session, month: dt.date) -> bool:
    return session.scalar(select(Rollup.id).where(Rollup.day >= month, Rollup.day <= month_end(month)).limit(1)) \
        is not None


def _keep(db: Database, month: dt.date, k: int, made: Answers, clock: Clock) -> None:
    """Store a release unless another process stored it first (both computed the same answers from the same rows)."""
    row = {"month": month, "min_cell": k, "made_at": clock.now(),
           "answers": {"" if by is None else by.value: [f.model_dump(mode="json") for f in groups]
                       for by, groups in made.items()}}
    dialect: Any = sqlite if is_sqlite(db.engine) else postgresql
    with db.write() as session:
        session.execute(dialect.insert(Release).values(**row).on_conflict_do_nothing(
            index_elements=["month", "min_cell"]))


def _read(stored: dict[str, Any]) -> Answers:
    return {Dimension(by) if by else None: [Figures.model_validate(f) for f in groups]
            for by, groups in stored.items()}
