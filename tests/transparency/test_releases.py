"""Researchers' releases: a closed month's answers cut once, kept, and read back the same; the worker releases the
oldest closed month first and leaves an open one alone."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.events import SETTLE_SECONDS
from bastion.testing.transparency import Scenario
from bastion.transparency import dashboard, metrics, releases, rollups
from bastion.transparency.dashboard import Filters
from bastion.transparency.metrics import Dimension
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
    made = releases.release(db, JANUARY, K, clock)
    assert made.answers == direct and _months(db) == [JANUARY]
    with db.read() as session:  # the dashboard of each grouping, drawn from those answers
        drawn = dashboard.build(session, Filters(JANUARY, dt.date(2026, 1, 31), Dimension.SOURCE), K, direct)
    assert made.charts[Dimension.SOURCE] == drawn.charts and set(made.charts) == set(dashboard.GROUPINGS)
    more = Scenario()  # a recount or a late event in January changes nothing a researcher sees of it
    more.upload("late", dt.datetime(2026, 1, 20, tzinfo=dt.UTC))
    _write(db, more)
    assert releases.release(db, JANUARY, K, clock) == made  # read back, not cut again


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
    clock.advance(days=12, hours=1)  # April 1st: March is over and counted
    assert releases.release_next(db, K, clock) is True and _months(db) == [JANUARY, FEBRUARY, MARCH]
    with db.read() as session:
        march = metrics.suppress_period(rollups.cells(session, MARCH, dt.date(2026, 3, 31)), K)
    assert releases.release(db, MARCH, K, clock).answers == march
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


def test_the_first_keeper_wins_and_everyone_reads_its_release(db: Database) -> None:
    """Two processes make January's release; the second stores nothing and returns the first's (had the roll-ups
    changed between them, a researcher could otherwise see two versions of one month)."""
    scenario = Scenario()
    for i in range(12):
        scenario.upload(f"jan-{i}", dt.datetime(2026, 1, 3, i, tzinfo=dt.UTC))
    _write(db, scenario)
    clock = FrozenClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    first = releases.release(db, JANUARY, K, clock)
    more = Scenario()
    more.upload("jan-late", dt.datetime(2026, 1, 4, tzinfo=dt.UTC))
    _write(db, more)
    with db.read() as session:
        second = releases._make(session, JANUARY, K)
    assert second.answers[None][0].uploads == 13 != first.answers[None][0].uploads
    assert releases._keep(db, JANUARY, K, second, clock) == first


def test_a_month_is_closed_only_after_the_settling_time_past_its_end(db: Database) -> None:
    end = dt.date(2026, 1, 31)
    midnight = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    with db.read() as session:
        assert not releases.closed(session, end, midnight)
        assert not releases.closed(session, end, midnight + dt.timedelta(seconds=SETTLE_SECONDS - 1))
        assert releases.closed(session, end, midnight + dt.timedelta(seconds=SETTLE_SECONDS))
