"""Researchers' releases: a closed month's answers cut once, kept, and read back the same; the worker releases the
oldest closed month first and leaves an open one alone."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.testing.transparency import Scenario
from bastion.transparency import metrics, releases, rollups
from bastion.transparency.models import Release
from tests.transparency.test_metrics import briefing

K = 10
JANUARY, FEBRUARY, MARCH = dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)


def _write(db: Database, scenario: Scenario) -> None:
    with db.write() as session:
        scenario.flush(session)
    rollups.catch_up(db)


def _months(db: Database) -> list[dt.date]:
    with db.read() as session:
        return list(session.scalars(select(Release.month).where(Release.min_cell == K).order_by(Release.month)))


def test_a_release_is_the_periods_suppressed_answers_kept_and_read_back(db: Database) -> None:
    scenario = Scenario()
    briefing(scenario, clean=100)  # January 2026
    _write(db, scenario)
    clock = FrozenClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC))
    with db.read() as session:
        direct = metrics.suppress_period(rollups.cells(session, JANUARY, dt.date(2026, 1, 31)), K)
    assert any(f.actioned is None for groups in direct.values() for f in groups)  # something is hidden
    assert releases.answers(db, JANUARY, K, clock) == direct  # made now
    assert _months(db) == [JANUARY]
    more = Scenario()  # an event written later with a January date changes no answer already released
    more.upload("late", dt.datetime(2026, 1, 20, tzinfo=dt.UTC))
    _write(db, more)
    assert releases.answers(db, JANUARY, K, clock) == direct  # read back, not cut again


def test_the_worker_releases_closed_months_oldest_first_and_leaves_an_open_one(db: Database) -> None:
    scenario = Scenario()
    for month in (JANUARY, FEBRUARY, MARCH):
        for i in range(12):
            scenario.upload(f"{month:%m}-{i}", dt.datetime.combine(month, dt.time(9), tzinfo=dt.UTC) +
                            dt.timedelta(days=i))
    _write(db, scenario)
    clock = FrozenClock(dt.datetime(2026, 3, 20, tzinfo=dt.UTC))  # March is still running
    assert releases.release_next(db, K, clock) is True and _months(db) == [JANUARY]
    assert releases.release_next(db, K, clock) is True and _months(db) == [JANUARY, FEBRUARY]
    assert releases.release_next(db, K, clock) is False and _months(db) == [JANUARY, FEBRUARY]
    clock.advance(days=12)  # April 1st: March is over and counted
    assert releases.release_next(db, K, clock) is True and _months(db) == [JANUARY, FEBRUARY, MARCH]
    with db.read() as session:
        march = metrics.suppress_period(rollups.cells(session, MARCH, dt.date(2026, 3, 31)), K)
    assert releases.answers(db, MARCH, K, clock) == march
    assert march[None][0].uploads == 12


def test_a_month_with_events_not_yet_counted_is_not_released(db: Database) -> None:
    scenario = Scenario()
    scenario.upload("jan", dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    _write(db, scenario)
    late = Scenario()
    late.upload("jan-late", dt.datetime(2026, 1, 30, tzinfo=dt.UTC))
    with db.write() as session:  # written, not yet counted by the worker
        late.flush(session)
    clock = FrozenClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    assert releases.release_next(db, K, clock) is False and _months(db) == []
    rollups.catch_up(db)
    assert releases.release_next(db, K, clock) is True and _months(db) == [JANUARY]
