"""Researchers' releases: each closed calendar month's answers and dashboard, suppressed once and kept.

A researcher reads one calendar month at a time, once it is over and counted (``api``): its figures no longer change.
Cutting its answers (``metrics.suppress_period``: every grouping under one hiding pattern) is the dear part of a
researcher's query, seconds for a month of tens of thousands of cells, and would give the same numbers every time.
So it is done once per month and threshold, with the researcher's dashboard for each grouping drawn from it, kept
in ``transparency_releases``, and read from there: made by the worker soon after a month closes (``release_next``)
or by the first query that finds none (``release``). Everything a researcher sees of a month then comes from one
snapshot: a later change to its roll-ups (a recount) cannot make two views of it differ. A statistics office works
the same way: a month's tables are released once, not recomputed per reader.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.clock import Clock
from bastion.core.db import Database, dialect_insert
from bastion.core.events import SETTLE_SECONDS
from bastion.transparency import dashboard, metrics, rollups
from bastion.transparency.dashboard import Chart, Filters
from bastion.transparency.metrics import Dimension, Figures
from bastion.transparency.models import Release, Rollup

#: The shape of what a release holds: raised when ``Figures``, the charts or the suppression change, so that older
#: releases are made again rather than read in a shape that no longer validates.
RELEASE_VERSION = 1

Answers = dict[Dimension | None, list[Figures]]


@dataclass(frozen=True)
class Released:
    """A month as researchers see it: the API's answer for each grouping, and the dashboard's charts for each."""

    answers: Answers
    charts: dict[Dimension, list[Chart]]


def month_end(first: dt.date) -> dt.date:
    """The last day of the month that starts on ``first``."""
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def closed(session: Session, end: dt.date, now: dt.datetime) -> bool:
    """Whether a period ending on ``end`` is over and counted: its last day ended, and the followers' settling time
    after it (``SETTLE_SECONDS``: PostgreSQL may commit an event dated before midnight a little later), and no event
    dated on or before it waits past a log's mark. Its figures will then not change."""
    over = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return now >= over + dt.timedelta(seconds=SETTLE_SECONDS) and rollups.counted_through(session, end)


def is_kept(session: Session, month: dt.date, k: int) -> bool:
    """Whether the month has a release at threshold ``k`` (its key alone read)."""
    return session.scalar(select(Release.month).where(Release.month == month, Release.min_cell == k,
                                                      Release.version == RELEASE_VERSION)) is not None


def kept(session: Session, month: dt.date, k: int) -> Released | None:
    """The month's release at threshold ``k`` when one is kept."""
    found = session.get(Release, (month, k, RELEASE_VERSION))
    return None if found is None else _read(found.answers, found.charts)


def release(db: Database, month: dt.date, k: int, clock: Clock) -> Released:
    """The month's release at threshold ``k`` (``month``: its first day; the caller has checked it is closed or
    kept): read when kept, else made and kept now (a month with no roll-ups is made and not kept: nothing to cut)."""
    with db.read() as session:
        found = kept(session, month, k)
        if found is not None:
            return found
        made = _make(session, month, k)
        if session.scalar(select(Rollup.id).where(Rollup.day >= month, Rollup.day <= month_end(month)).limit(1)) \
                is None:
            return made
    return _keep(db, month, k, made, clock)


def release_next(db: Database, k: int, clock: Clock) -> bool:
    """The worker's round: release the oldest closed month with roll-ups that has none at ``k`` yet (one a round:
    a month costs seconds of CPU). Returns whether one was made (more may wait)."""
    now = clock.now()
    this_month = now.date().replace(day=1)
    with db.read() as session:
        days = session.scalars(select(Rollup.day).where(Rollup.day < this_month).group_by(Rollup.day))
        months = sorted({day.replace(day=1) for day in days})
        released = set(session.scalars(select(Release.month).where(Release.min_cell == k,
                                                                   Release.version == RELEASE_VERSION)))
        waiting = [month for month in months if month not in released]
        if not waiting or not closed(session, month_end(waiting[0]), now):
            return False
        made = _make(session, waiting[0], k)
    _keep(db, waiting[0], k, made, clock)
    return True


def _make(session: Session, month: dt.date, k: int) -> Released:
    """Cut the month's answers, then draw each grouping's dashboard from them and the month's roll-ups."""
    end = month_end(month)
    answers = metrics.suppress_period(rollups.cells(session, month, end), k)
    return Released(answers, {by: dashboard.build(session, Filters(month, end, by), k, answers).charts
                              for by in dashboard.GROUPINGS})


def _keep(db: Database, month: dt.date, k: int, made: Released, clock: Clock) -> Released:
    """Store a release unless another process stored it first, and return the one stored: whichever was first is
    what every researcher gets."""
    row = {"month": month, "min_cell": k, "version": RELEASE_VERSION, "made_at": clock.now(),
           "answers": {"" if by is None else by.value: [f.model_dump(mode="json") for f in groups]
                       for by, groups in made.answers.items()},
           "charts": {by.value: [dataclasses.asdict(c) for c in charts] for by, charts in made.charts.items()}}
    with db.write() as session:
        session.execute(dialect_insert(db.engine, Release).values(**row).on_conflict_do_nothing(
            index_elements=["month", "min_cell", "version"]))
        stored = kept(session, month, k)
    assert stored is not None
    return stored


def _read(answers: dict[str, Any], charts: dict[str, Any]) -> Released:
    return Released(
        {Dimension(by) if by else None: [Figures.model_validate(f) for f in groups] for by, groups in answers.items()},
        {Dimension(by): [Chart(c["name"], c["title"], tuple(c["columns"]), [tuple(r) for r in c["rows"]], c["bar"],
                               c["note"]) for c in drawn] for by, drawn in charts.items()})

