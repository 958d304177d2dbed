"""The roll-ups give the same cells, hence the same figures, as the direct count from the logs: in small batches
that split a content's events, as events keep coming, after a round that failed half-way, and run twice; read from
the monthly cuts for whole months and the daily cuts or rows for the other days alike; and an event that cannot be
read is skipped and recorded, never halting the count."""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
from pathlib import Path
from typing import Any

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bastion.core.db import Database
from bastion.moderation.events import EventKind
from bastion.moderation.models import ModerationEvent
from bastion.orders.events import OrderEventKind
from bastion.orders.models import OrderEvent
from bastion.reporting.events import ReportEventKind
from bastion.reporting.models import ReportEvent
from bastion.testing.transparency import Scenario
from bastion.transparency import metrics, rollups
from bastion.transparency.metrics import Dimension
from bastion.transparency.models import Cut, DayCut, Quarantined, Rollup
from tests.transparency.test_metrics import HOUR, T0, briefing

PERIODS = [(dt.date(2026, 1, 1), dt.date(2026, 1, 31)), (T0.date(), T0.date()),
           (T0.date() + dt.timedelta(days=1), T0.date() + dt.timedelta(days=3)),
           (dt.date(2025, 1, 1), dt.date(2025, 2, 1)),
           # a year of whole months; whole months with days on both sides; days of two months, no whole one
           (dt.date(2026, 1, 1), dt.date(2026, 12, 31)), (dt.date(2025, 11, 20), dt.date(2026, 2, 3)),
           (dt.date(2025, 12, 30), dt.date(2026, 1, 6)),
           # a rolling 30 days (the console's default period) across two months
           (dt.date(2025, 12, 18), dt.date(2026, 1, 16))]


def assert_same(db: Database) -> None:
    with db.read() as session:
        facts = list(metrics.all_facts(session))
        for start, end in PERIODS:
            direct: dict[metrics.Cell, metrics.Tally] = {}
            metrics.add(direct, (f for f in facts if start <= f.at.date() <= end))
            direct = metrics.undated(direct)
            rolled = rollups.cells(session, start, end)
            assert rolled == direct, (start, end)
            for by in [None, *Dimension]:
                cut = rollups.cells(session, start, end, metrics.kept_for(by))  # what the report reads
                assert metrics.figures(cut, by) == metrics.figures(direct, by), by
                cut = rollups.grouped(session, start, end, by)  # what the API reads
                if by not in (Dimension.SOURCE, Dimension.PATH):  # histograms summed over sources
                    assert cut == rollups.over_sources(metrics.project(direct, metrics.kept_for(by))), (start, end, by)
                assert metrics.figures(cut, by) == metrics.figures(direct, by), by
            for keep, durations in rollups.CUTS.items():  # every cut kept monthly, as the dashboard reads it
                expected = {c: t for c, t in metrics.project(direct, keep).items()
                            if durations or c.bucket == metrics.NO_DURATION}
                assert rollups.cells(session, start, end, keep, durations=durations) == expected, (start, end, keep)
                assert rollups.cells(session, start, end, keep, durations=durations, sources=False) == \
                    rollups.over_sources(expected), (start, end, keep)
                actions = {c: t for c, t in expected.items() if c.metric == metrics.Metric.ACTION.value}
                assert rollups.cells(session, start, end, keep, (metrics.Metric.ACTION.value,),
                                     durations=False) == actions
            assert_actions_by(session, direct, start, end)


def assert_actions_by(session: Session, direct: metrics.Cells, start: dt.date, end: dt.date) -> None:
    """The dashboard's grouped counts (``rollups.actions_by``) are the direct count's actions and proactive ones, for
    every grouping it draws, alone and beside Member States, with and without a category filter."""
    others = ("category", "territory", "content_type", "language", "source", "path")
    groupings = [("country",), *((c,) for c in others), *(("country", c) for c in others)]
    for columns in groupings:
        for category in ("", "csam", "hate_speech"):
            expected: dict[tuple[object, ...], tuple[int, int]] = {}
            for cell, tally in direct.items():
                if cell.metric == metrics.Metric.ACTION.value and (not category or cell.category == category):
                    key = tuple(getattr(cell, c) for c in columns)
                    a, p = expected.get(key, (0, 0))
                    expected[key] = (a + tally.count, p + (tally.count if cell.proactive else 0))
            found = rollups.actions_by(session, start, end, columns, category)
            assert found == expected, (start, end, columns, category)


def test_the_roll_ups_equal_the_direct_count(db: Database) -> None:
    scenario = Scenario()
    briefing(scenario, clean=500)
    with db.write() as session:
        scenario.flush(session)
    rollups.catch_up(db, batch=37)  # batches end inside a content's events
    assert_same(db)
    with db.read() as session:
        [f] = metrics.figures(rollups.cells(session, dt.date(2026, 1, 1), dt.date(2026, 1, 31)))
    assert (f.uploads, f.actioned, f.proactive, f.notices, f.appeals_reversed) == (1500, 1000, 971, 29, 2)

    rollups.catch_up(db)  # nothing new: nothing counted twice
    assert_same(db)
    more = Scenario()  # events keep coming: a later round counts only them
    more.appeal("held-0", T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=2, hours=5), upheld=False)
    more.block_at_upload("late", T0 + dt.timedelta(days=2), category="hate_speech", matched=False)
    more.order("ORD-3", T0 + dt.timedelta(days=2), member_state="AT", urls=2, executed_after=dt.timedelta(hours=2))
    with db.write() as session:
        more.flush(session)
    rollups.catch_up(db, batch=5)
    assert_same(db)
    with db.read() as session:
        assert rollups.marks(session)["order_events"] > 0


def test_a_round_that_fails_counts_nothing_of_its_log(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = Scenario()
    briefing(scenario, clean=50)
    with db.write() as session:
        scenario.flush(session)

    def broken(session: object, **kwargs: object) -> tuple[list[metrics.Fact], int]:
        metrics.order_facts(session, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("the worker died after reading")

    monkeypatch.setitem(metrics.READERS, "order_events", broken)
    with pytest.raises(RuntimeError):
        rollups.roll_up(db)
    with db.read() as session:
        assert rollups.marks(session).get("order_events", 0) == 0
        assert not any(c.metric.startswith("order") for c in rollups.cells(session, dt.date(2026, 1, 1),
                                                                             dt.date(2026, 1, 31)))
    monkeypatch.undo()
    rollups.catch_up(db)
    assert_same(db)


def test_events_still_settling_wait_for_the_next_round(db: Database) -> None:
    scenario = Scenario()
    scenario.block_at_upload("old", T0, category="csam")
    scenario.block_at_upload("new", T0 + dt.timedelta(seconds=30), category="csam")
    with db.write() as session:
        scenario.flush(session)
    rollups.roll_up(db, now=T0 + dt.timedelta(seconds=35), settle=10)
    with db.read() as session:
        [f] = metrics.figures(rollups.cells(session, T0.date(), T0.date()))
    assert (f.uploads, f.actioned) == (1, 1)
    rollups.roll_up(db, now=T0 + dt.timedelta(seconds=45), settle=10)
    assert_same(db)


def test_periods_split_into_whole_months_and_the_days_around_them() -> None:
    d = dt.date
    assert rollups.split(d(2026, 1, 1), d(2026, 1, 31)) == ([d(2026, 1, 1)], [])
    assert rollups.split(d(2025, 11, 20), d(2026, 2, 3)) == (
        [d(2025, 12, 1), d(2026, 1, 1)], [(d(2025, 11, 20), d(2025, 11, 30)), (d(2026, 2, 1), d(2026, 2, 3))])
    assert rollups.split(d(2026, 1, 5), d(2026, 1, 30)) == ([], [(d(2026, 1, 5), d(2026, 1, 30))])
    assert rollups.split(d(2024, 2, 1), d(2024, 2, 29)) == ([d(2024, 2, 1)], [])
    assert rollups.split(d(9999, 12, 1), d(9999, 12, 31)) == ([d(9999, 12, 1)], [])


def test_the_cuts_summed_again_from_the_daily_rows_are_the_workers(db: Database) -> None:
    """``rebuild_cuts`` and the fills of migrations 0024 (monthly cuts) and 0026 (daily cuts), in SQL for roll-ups
    counted before them, give the worker's rows."""
    scenario = Scenario()
    briefing(scenario, clean=100)
    scenario.order("ORD-9", T0 + dt.timedelta(days=40), member_state="AT", urls=3, executed_after=HOUR)
    with db.write() as session:
        scenario.flush(session)
    rollups.catch_up(db, batch=41)
    kept, daily = _cut_table(db), _cut_table(db, DayCut)
    assert {row[0] for row in kept} == {dt.date(2026, 1, 1), dt.date(2026, 2, 1)}
    with db.read() as session:  # a day's cut for every day counted
        assert {row[0] for row in daily} == set(session.scalars(select(Rollup.day)))
    rollups.rebuild_cuts(db)
    assert (_cut_table(db), _cut_table(db, DayCut)) == (kept, daily)

    migration = _migration("0024_transparency_cuts.py")
    assert migration.CUTS == rollups.CUTS  # a cut added later needs a migration of its own to fill its months
    with db.engine.begin() as connection:
        connection.execute(delete(Cut))
        with Operations.context(MigrationContext.configure(connection)):
            migration._fill()
    assert _cut_table(db) == kept

    days = _migration("0026_transparency_day_cuts.py")
    assert days.DAY_CUTS == rollups.DAY_CUTS
    with db.engine.begin() as connection:
        connection.execute(delete(DayCut))
        with Operations.context(MigrationContext.configure(connection)):
            days._fill()
    assert _cut_table(db, DayCut) == daily


def _migration(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, Path(rollups.__file__).parents[1] / "migrations" / "versions"
                                                  / name)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


def _cut_table(db: Database, table: type[Cut] | type[DayCut] = Cut) -> list[tuple[Any, ...]]:
    with db.read() as session:
        return sorted(tuple(r) for r in session.execute(select(*[c for c in table.__table__.c if c.name != "id"])))


def _malformed(db: Database, table: type[Any], subject: str, kind: str, at: dt.datetime) -> int:
    with db.write() as session:
        row = table(subject=subject, kind=kind, actor="system", at=at, data={}, external_id=None)
        session.add(row)
        session.flush()
        return int(row.id)


def test_a_malformed_event_is_skipped_and_recorded_and_counting_goes_on(db: Database,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """An event with an empty payload (one of each log) neither halts the worker nor changes any other figure; the
    events after it are counted; the mark moves past it; it is logged with its id and counted for /status."""
    scenario = Scenario()
    briefing(scenario, clean=50)
    with db.write() as session:
        scenario.flush(session)
    rollups.catch_up(db)
    period = (dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    with db.read() as session:
        before = {by: metrics.figures(rollups.cells(session, *period, metrics.kept_for(by)), by)
                  for by in [None, *Dimension]}

    bad = [_malformed(db, ModerationEvent, "content:held-0", EventKind.ACTIONS_APPLIED.value, T0 + HOUR),
           _malformed(db, OrderEvent, "ORD-1", OrderEventKind.EXECUTED.value, T0 + HOUR),
           _malformed(db, ReportEvent, "report:9", ReportEventKind.SENT.value, T0 + HOUR)]
    with caplog.at_level(logging.WARNING, logger="bastion.transparency.rollups"):
        rollups.catch_up(db, batch=3)
    with db.read() as session:
        after = {by: metrics.figures(rollups.cells(session, *period, metrics.kept_for(by)), by)
                 for by in [None, *Dimension]}
        assert rollups.quarantined(session) == {"moderation_events": 1, "order_events": 1, "report_events": 1}
        assert {q.event_id for q in session.scalars(select(Quarantined))} == set(bad)
        assert rollups.marks(session)["order_events"] == bad[1]
    assert after == before
    assert all(f"event {i} skipped" in caplog.text for i in bad)

    later = Scenario()  # what comes after a bad event is counted, in the same round as it
    _malformed(db, ModerationEvent, "content:held-1", EventKind.ACTIONS_APPLIED.value, T0 + HOUR)
    later.block_at_upload("after-the-bad-one", T0 + dt.timedelta(days=1), category="hate_speech")
    with db.write() as session:
        later.flush(session)
    rollups.roll_up(db)
    with db.read() as session:
        [f] = metrics.figures(rollups.cells(session, *period, ()))
        assert rollups.quarantined(session)["moderation_events"] == 2
    [was] = before[None]
    assert (f.uploads, f.actioned) == (was.uploads + 1, was.actioned + 1)
    rollups.catch_up(db)  # counted once, skipped once
    assert_same(db)
    assert rollups.status(db)["quarantined"]["moderation_events"] == 2
