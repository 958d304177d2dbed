"""The roll-ups give the same cells, hence the same figures, as the direct count from the logs: in small batches
that split a content's events, as events keep coming, after a round that failed half-way, and run twice."""

from __future__ import annotations

import datetime as dt

import pytest

from bastion.core.db import Database
from bastion.testing.transparency import Scenario
from bastion.transparency import metrics, rollups
from bastion.transparency.metrics import Dimension
from tests.transparency.test_metrics import T0, briefing

PERIODS = [(dt.date(2026, 1, 1), dt.date(2026, 1, 31)), (T0.date(), T0.date()),
           (T0.date() + dt.timedelta(days=1), T0.date() + dt.timedelta(days=3)),
           (dt.date(2025, 1, 1), dt.date(2025, 2, 1))]


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
                cut = rollups.cells(session, start, end, metrics.kept_for(by))  # what the API reads
                assert metrics.figures(cut, by) == metrics.figures(direct, by), by


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
