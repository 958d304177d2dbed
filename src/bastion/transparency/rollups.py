"""The roll-ups: each log's new facts added to per-day cells by a worker that follows the log's ids.

A round reads, for each log, the events after its high-water mark (``models.Mark``), adds their facts to the cells
(``models.Rollup``, an upsert that increments) and moves the mark, all in one transaction: a crash before the commit
leaves both as they were, and the next round counts the same events once. The mark row is locked for the round
(``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so two workers never count an event twice.

Events younger than ``settle`` are left for a later round: on PostgreSQL a transaction that took a lower id may
commit after one with a higher id, and the mark must not pass it. Moderation's writes are short (no network call in
a transaction, STYLE.md 7), so a few seconds suffice.

Figures for a period are then one ``GROUP BY`` over the period's cells (``cells``): no event is read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bastion.core.db import Database, is_sqlite
from bastion.transparency.metrics import (
    CELL_COLUMNS,
    COUNT_COLUMNS,
    DIMENSION_COLUMNS,
    HISTOGRAM_COLUMNS,
    LOGS,
    NO_DURATION,
    READERS,
    Cell,
    CellsFor,
    Metric,
    Tally,
    add,
    histogram,
)
from bastion.transparency.models import Mark, Rollup

#: Events this young are left for the next round (seconds).
SETTLE_SECONDS = 10.0
BATCH = 5000


def roll_up(db: Database, *, now: dt.datetime | None = None, settle: float = SETTLE_SECONDS,
            batch: int = BATCH) -> bool:
    """One round over every log; returns whether a log gave a full batch (more is waiting). ``now``: the time the
    settling is measured from (``None``: count everything written, as tests and the CLI's ``--catch-up`` do)."""
    until = now - dt.timedelta(seconds=settle) if now is not None else None
    more = False
    for log in LOGS:
        with db.write() as session:
            after = _locked_mark(db, session, log)
            facts, last = READERS[log](session, after=after, limit=batch, until=until)
            if last == after:
                continue
            cells: dict[Cell, Tally] = {}
            add(cells, facts)
            _increment(db, session, cells)
            mark = session.get(Mark, log)
            assert mark is not None
            mark.last_id = last
            more = more or last - after >= batch
    return more


def catch_up(db: Database, *, batch: int = BATCH) -> None:
    """Round after round until every written event is counted."""
    while roll_up(db, batch=batch):
        pass


def _locked_mark(db: Database, session: Session, log: str) -> int:
    dialect: Any = sqlite if is_sqlite(db.engine) else postgresql
    session.execute(dialect.insert(Mark).values(log=log, last_id=0).on_conflict_do_nothing(index_elements=["log"]))
    return int(session.scalar(select(Mark.last_id).where(Mark.log == log).with_for_update()) or 0)


def _increment(db: Database, session: Session, cells: dict[Cell, Tally]) -> None:
    if not cells:
        return
    dialect: Any = sqlite if is_sqlite(db.engine) else postgresql
    rows = [{**{c: getattr(cell, c) for c in CELL_COLUMNS}, "count": t.count, "items": t.items}
            for cell, t in cells.items()]
    for start in range(0, len(rows), 1000):
        statement = dialect.insert(Rollup).values(rows[start:start + 1000])
        excluded = statement.excluded
        session.execute(statement.on_conflict_do_update(
            index_elements=list(CELL_COLUMNS),
            set_={"count": Rollup.count + excluded["count"], "items": Rollup.items + excluded["items"]}))


def cells(session: Session, start: dt.date, end: dt.date, keep: tuple[str, ...] | None = None,
          only: tuple[str, ...] = (), *, durations: bool = True) -> dict[Cell, Tally]:
    """The period's cells summed over its days (``day`` set to ``date.min``), from the roll-ups alone.

    ``keep``: a cut (``metrics.project``) keeping these dimension columns (``metrics.kept_for``), summed in the
    database in two queries (counts without durations; duration histograms), so a dashboard's query returns a few
    hundred rows, not every cell of the month. ``None``: every cell as stored. ``only``: these metrics alone.
    ``durations``: with a cut, read the duration histograms too (``False``: counts alone, one query)."""
    def query(names: list[str], *where: Any) -> Any:
        keys = [getattr(Rollup, c) for c in names]
        statement = select(*keys, func.sum(Rollup.count), func.sum(Rollup.items)).where(
            Rollup.day >= start, Rollup.day <= end, *where)
        if only:
            statement = statement.where(Rollup.metric.in_(only))
        return session.execute(statement.group_by(*keys))

    out: dict[Cell, Tally] = {}
    if keep is None:
        names = [c for c in CELL_COLUMNS if c != "day"]
        for row in query(names):
            *key, count, items = row
            out[Cell(dt.date.min, *key)] = Tally(int(count), int(items))
        return out
    kept = [c for c in DIMENSION_COLUMNS if c in keep]
    blank: dict[str, Any] = dict.fromkeys(DIMENSION_COLUMNS, "")
    blank.update(action="", before_view=False, bucket=NO_DURATION)
    names = [*COUNT_COLUMNS, *kept]
    for row in query(names):
        *key, count, items = row
        out[Cell(**{**blank, "day": dt.date.min, **dict(zip(names, key, strict=True))})] = Tally(int(count),
                                                                                                 int(items))
    if not durations:
        return out
    names = [*HISTOGRAM_COLUMNS, *kept]
    for row in query(names, Rollup.bucket != NO_DURATION):
        *key, count, _ = row
        values = dict(zip(names, key, strict=True))
        values["metric"] = histogram(values["metric"])
        out[Cell(**{**blank, "day": dt.date.min, **values})] = Tally(int(count), 0)
    return out


def cells_for(session: Session, start: dt.date, end: dt.date) -> CellsFor:
    """What ``reports.dsa_report`` reads: the period's cells keeping the dimensions it asks for."""
    def read(keep: tuple[str, ...], only: tuple[str, ...] = ()) -> dict[Cell, Tally]:
        return cells(session, start, end, keep, only)

    return read


def marks(session: Session) -> dict[str, int]:
    """Each log's high-water mark (for /status and the dashboard: how far the counting has come)."""
    return {m.log: m.last_id for m in session.scalars(select(Mark))}



def daily_actions(session: Session, start: dt.date, end: dt.date) -> dict[tuple[dt.date, str], tuple[int, int]]:
    """Actions and proactive actions on each day of the period, per category (the dashboard's series over time, and
    the categories its filter offers): one ``GROUP BY`` of the roll-ups by day, which they are kept by."""
    statement = select(Rollup.day, Rollup.category, Rollup.proactive, func.sum(Rollup.count)).where(
        Rollup.day >= start, Rollup.day <= end, Rollup.metric == Metric.ACTION.value)
    out: dict[tuple[dt.date, str], tuple[int, int]] = {}
    for day, category, proactive, count in session.execute(
            statement.group_by(Rollup.day, Rollup.category, Rollup.proactive)):
        actioned, proactive_count = out.get((day, category), (0, 0))
        out[day, category] = (actioned + int(count), proactive_count + (int(count) if proactive else 0))
    return out
