"""Migration 0028: the moderation log counted again, so that events counted before the ``automated_missed`` fact
existed give it too. Its roll-ups and cuts go, its mark goes back to the start, the other logs' stay; the worker's
recount gives exactly the rows a first count gives."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import delete, select

from bastion.core.db import Database
from bastion.moderation.queries import FactKind
from bastion.testing.transparency import Scenario
from bastion.transparency import rollups
from bastion.transparency.metrics import Metric
from bastion.transparency.models import Cut, Mark, Rollup
from tests.transparency.test_metrics import briefing


def _table(db: Database, table: type[Any]) -> list[tuple[Any, ...]]:
    with db.read() as session:
        return sorted(tuple(r) for r in session.execute(select(*[c for c in table.__table__.c if c.name != "id"])))


def test_the_moderation_log_is_counted_again_with_the_misses(db: Database) -> None:
    scenario = Scenario()
    briefing(scenario, clean=100)
    with db.write() as session:
        scenario.flush(session)
    rollups.catch_up(db)
    daily, cuts = _table(db, Rollup), _table(db, Cut)
    assert any(row[1] == Metric.AUTOMATED_MISSED for row in daily)
    orders_before = [row for row in daily if row[1].startswith(("order_", "report_"))]

    spec = importlib.util.spec_from_file_location(
        "recount", Path(rollups.__file__).parents[1] / "migrations" / "versions"
        / "0028_transparency_recount_moderation.py")
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with db.write() as session:  # as counted before the fact existed
        session.execute(delete(Rollup).where(Rollup.metric == Metric.AUTOMATED_MISSED.value))
        session.execute(delete(Cut).where(Cut.metric == Metric.AUTOMATED_MISSED.value))
    assert set(migration.MODERATION_METRICS) == set(FactKind)  # a fact kind added later needs its own recount
    with db.engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
        migration.upgrade()
    with db.read() as session:
        marks = {m.log: m.last_id for m in session.scalars(select(Mark))}
    assert marks["moderation_events"] == 0 and marks["order_events"] > 0
    assert _table(db, Rollup) == orders_before  # the other logs' rows stay
    rollups.catch_up(db)
    assert _table(db, Rollup) == daily and _table(db, Cut) == cuts
