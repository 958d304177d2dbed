"""The roll-ups: each log's new facts added to per-day cells by a worker that follows the log's ids.

A round reads, for each log, the events after its high-water mark (``models.Mark``), adds their facts to the cells
(``models.Rollup``, an upsert that increments) and moves the mark, all in one transaction: a crash before the commit
leaves both as they were, and the next round counts the same events once. The mark row is locked for the round
(``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so two workers never count an event twice.

Events younger than ``settle`` are left for a later round: on PostgreSQL a transaction that took a lower id may
commit after one with a higher id, and the mark must not pass it. Moderation's writes are short (no network call in
a transaction, STYLE.md 7), so a few seconds suffice.

Figures for a period are then one ``GROUP BY`` over the period's cells (``cells``): no event is read. A dashboard
asks for a cut (a few dimensions kept, the rest summed away); for whole calendar months the worker also keeps the
common cuts ready (``models.Cut``, ``CUTS``), in the same transaction as the daily rows, so such a month is read from
a few thousand rows instead of every cell of each of its days; and per day the cuts whose rows are few
(``models.DayCut``, ``DAY_CUTS``: the totals, and each dimension's counts), which the days of a partial month read.

An event whose payload does not validate is skipped and recorded (``models.Quarantined``, a warning with its id):
the mark moves past it and counting goes on, and the direct count skips it too (``metrics.read``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, case, column, delete, func, literal_column, or_, select, table
from sqlalchemy.orm import Session

from bastion.core.db import Database, UTCDateTime, dialect_insert
from bastion.core.events import SETTLE_SECONDS, locked_mark
from bastion.transparency.metrics import (
    CELL_COLUMNS,
    COUNT_COLUMNS,
    DIMENSION_COLUMNS,
    HISTOGRAM_COLUMNS,
    LOGS,
    NO_DURATION,
    Cell,
    CellsFor,
    Dimension,
    Metric,
    Tally,
    add,
    histogram,
    kept_for,
    project,
    read,
)
from bastion.transparency.models import Cut, DayCut, Mark, Quarantined, Rollup

log = logging.getLogger(__name__)

BATCH = 5000
#: The cuts kept per month (dimension columns kept, in ``DIMENSION_COLUMNS`` order), and whether with their duration
#: histograms: every grouping of the API (``metrics.kept_for``), and the dashboard's actions by Member State and one
#: more dimension (counts alone: it draws no duration per group). Any other cut is summed from the daily rows.
#: Adding one needs its months filled (as migration 0024 does).
CUTS: dict[tuple[str, ...], bool] = {
    (): True, **{(d,): True for d in DIMENSION_COLUMNS},
    **{tuple(c for c in DIMENSION_COLUMNS if c in ("country", d)): False
       for d in DIMENSION_COLUMNS if d != "country"}}
#: The cuts kept per day (``models.DayCut``), for the days of a period outside its whole months: the totals with
#: their duration histograms, and each dimension alone with counts (the dashboard's grouped charts and its series
#: per category). A day's cut keeping a dimension's durations, or two dimensions, is nearly as many rows as the
#: day's cells: those read the daily rows. Adding one needs its days filled (as migration 0026 does).
DAY_CUTS: dict[tuple[str, ...], bool] = {(): True, **{(d,): False for d in DIMENSION_COLUMNS}}


def roll_up(db: Database, *, now: dt.datetime | None = None, settle: float = SETTLE_SECONDS,
            batch: int = BATCH) -> bool:
    """One round over every log; returns whether a log gave a full batch (more is waiting). ``now``: the time the
    settling is measured from (``None``: count everything written, as tests and the CLI's ``--catch-up`` do)."""
    until = now - dt.timedelta(seconds=settle) if now is not None else None
    more = False
    for name in LOGS:
        with db.write() as session:
            after = locked_mark(session, Mark, name)
            found = read(session, name, after=after, limit=batch, until=until)
            if found.last == after:
                continue
            cells: dict[Cell, Tally] = {}
            add(cells, found.facts)
            _increment(db, session, cells)
            _quarantine(db, session, name, found.skipped, now)
            mark = session.get(Mark, name)
            assert mark is not None
            mark.last_id = found.last
            more = more or found.last - after >= batch
    return more


def catch_up(db: Database, *, batch: int = BATCH) -> None:
    """Round after round until every written event is counted."""
    while roll_up(db, batch=batch):
        pass


def _increment(db: Database, session: Session, cells: dict[Cell, Tally]) -> None:
    """The daily rows and the monthly and daily cuts, all incremented (one transaction: they never disagree)."""
    if not cells:
        return
    rows = [{**{c: getattr(cell, c) for c in CELL_COLUMNS}, "count": t.count, "items": t.items}
            for cell, t in cells.items()]
    _upsert(db, session, Rollup, list(CELL_COLUMNS), rows)
    _upsert(db, session, Cut, ["month", "keep", *CUT_COLUMNS], cut_rows(cells))
    _upsert(db, session, DayCut, ["day", "keep", *CUT_COLUMNS], cut_rows(cells, daily=True))


#: A cut row's cell columns (its month and keep besides).
CUT_COLUMNS = tuple(c for c in CELL_COLUMNS if c != "day")


def cut_rows(cells: Mapping[Cell, Tally], *, daily: bool = False) -> list[dict[str, Any]]:
    """The rows of ``CUTS`` that dated ``cells`` add to, per month (``metrics.project`` of each month's cells); with
    ``daily``, those of ``DAY_CUTS``, per day."""
    spans: dict[dt.date, dict[Cell, Tally]] = {}
    for cell, tally in cells.items():
        spans.setdefault(cell.day if daily else cell.day.replace(day=1), {})[cell] = tally
    rows: list[dict[str, Any]] = []
    for span, found in spans.items():
        for keep, durations in (DAY_CUTS if daily else CUTS).items():
            for cell, t in project(found, keep).items():
                if durations or cell.bucket == NO_DURATION:
                    rows.append({"day" if daily else "month": span, "keep": ",".join(keep),
                                 **{c: getattr(cell, c) for c in CUT_COLUMNS}, "count": t.count, "items": t.items})
    return rows


def _upsert(db: Database, session: Session, table: type[Rollup] | type[Cut] | type[DayCut], key: list[str],
            rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` to the table's counts: one statement run for every row (compiled once; a multi-row ``VALUES``
    would be compiled again for each batch, which cost more than the writing)."""
    if not rows:
        return
    columns = table.__table__.c
    statement = dialect_insert(db.engine, table.__table__)
    excluded = statement.excluded
    session.connection().execute(statement.on_conflict_do_update(
        index_elements=key, set_={"count": columns["count"] + excluded["count"],
                                  "items": columns["items"] + excluded["items"]}), rows)


def _quarantine(db: Database, session: Session, name: str, skipped: Iterable[tuple[int, str]],
                now: dt.datetime | None) -> None:
    for event_id, error in skipped:
        log.warning("transparency: %s event %d skipped, its payload does not validate: %s", name, event_id, error)
        session.execute(dialect_insert(db.engine, Quarantined).values(
            log=name, event_id=event_id, error=error[:500], at=now or dt.datetime.now(dt.UTC)
        ).on_conflict_do_nothing(index_elements=["log", "event_id"]))


def rebuild_cuts(db: Database) -> None:
    """Every month's and day's cuts summed again from the daily rows (for rows written without the worker: the
    benchmark's)."""
    with db.write() as session:
        session.execute(delete(Cut))
        session.execute(delete(DayCut))
        days = sorted(d for (d,) in session.execute(select(Rollup.day).distinct()))
        for month in sorted({d.replace(day=1) for d in days}):
            last = _month_end(month)
            dated = {Cell(month, *key[1:]): t for key, t in cells(session, month, last).items()}
            _upsert(db, session, Cut, ["month", "keep", *CUT_COLUMNS], cut_rows(dated))
        for day in days:
            dated = {Cell(day, *key[1:]): t for key, t in cells(session, day, day).items()}
            _upsert(db, session, DayCut, ["day", "keep", *CUT_COLUMNS], cut_rows(dated, daily=True))


def _month_end(month: dt.date) -> dt.date:
    if month.month == 12:  # and no overflow past 9999-12-31
        return month.replace(day=31)
    return month.replace(month=month.month + 1, day=1) - dt.timedelta(days=1)


def split(start: dt.date, end: dt.date) -> tuple[list[dt.date], list[tuple[dt.date, dt.date]]]:
    """The whole calendar months within ``start`` to ``end`` (their first days), and the runs of days left over (at
    most one before them and one after)."""
    months: list[dt.date] = []
    days: list[tuple[dt.date, dt.date]] = []
    month = start
    if start.day != 1:
        head = _month_end(start)
        if head >= end:
            return [], [(start, end)]
        days.append((start, head))
        month = head + dt.timedelta(days=1)
    while True:  # never a day past ``end``: no overflow at 9999-12-31
        last = _month_end(month)
        if last > end:
            days.append((month, end))
            break
        months.append(month)
        if last == end:
            break
        month = last + dt.timedelta(days=1)
    return months, days


def cells(session: Session, start: dt.date, end: dt.date, keep: tuple[str, ...] | None = None,
          only: tuple[str, ...] = (), *, durations: bool = True, sources: bool = True) -> dict[Cell, Tally]:
    """The period's cells summed over its days (``day`` set to ``date.min``), from the roll-ups alone.

    ``keep``: a cut (``metrics.project``) keeping these dimension columns (``metrics.kept_for``), so a dashboard's
    query returns a few hundred rows, not every cell of the month: its whole months read from the monthly cuts where
    ``CUTS`` keeps it, the other days from the daily cuts where ``DAY_CUTS`` keeps it (their counts alone where it
    keeps no durations), else summed from the daily rows in the database (counts without durations; duration
    histograms). ``None``: every cell as
    stored. ``only``: these metrics alone. ``durations``: with a cut, read the duration histograms too (``False``:
    counts alone). ``sources``: the histograms kept by source and path, as ``metrics.project`` makes them (the
    report's durations of trusted flaggers' notices); ``False``: summed over both (``over_sources``), all that
    ``metrics.figures`` reads of them: a grouped period's histograms are the most rows of its cut (a bucket for each
    source in each group), and summing them in the database is what a year by Member State spent its time on."""
    if keep is None:
        out: dict[Cell, Tally] = {}
        names = [c for c in CELL_COLUMNS if c != "day"]
        for row in _summed(session, [(start, end)], names, only):
            *key, count, items = row
            out[Cell(dt.date.min, *key)] = Tally(int(count), int(items))
        return out
    kept = tuple(c for c in DIMENSION_COLUMNS if c in keep)
    months: list[dt.date] = []
    days = [(start, end)]
    if kept in CUTS and (CUTS[kept] or not durations):
        months, days = split(start, end)
    out = _from_cuts(session, Cut, [Cut.month.in_(months)], kept, only, durations, sources,
                     summed=len(months) > 1) if months else {}
    if not days:
        return out
    if kept in DAY_CUTS:  # its counts, and its histograms where it keeps them (else from the daily rows)
        runs = [and_(DayCut.day >= first, DayCut.day <= last) for first, last in days]
        with_durations = durations and DAY_CUTS[kept]
        _merge(out, _from_cuts(session, DayCut, [or_(*runs)], kept, only, with_durations, sources,
                               summed=days[0][0] != days[-1][1]))
        if with_durations or not durations:
            return out
    else:
        _merge(out, _from_daily_rows(session, days, [*COUNT_COLUMNS, *kept], only))
    if durations:
        _merge(out, _from_daily_rows(session, days, [*(HISTOGRAM_COLUMNS if sources else BUCKET_COLUMNS), *kept],
                                     only, histograms=True))
    return out


def _merge(into: dict[Cell, Tally], cells: Mapping[Cell, Tally]) -> None:
    for cell, tally in cells.items():
        was = into.get(cell)
        into[cell] = Tally(tally.count + was.count, tally.items + was.items) if was else tally


def _from_daily_rows(session: Session, days: list[tuple[dt.date, dt.date]], names: list[str],
                     only: tuple[str, ...], *, histograms: bool = False) -> dict[Cell, Tally]:
    """The daily rows of these runs of days summed by the columns ``names`` (the others blank): their counts, or
    with ``histograms`` their duration histograms under ``metrics.histogram(metric)``, as a cut holds them."""
    keys = [(Rollup.metric + histogram("")).label("metric") if histograms and c == "metric" else getattr(Rollup, c)
            for c in names]
    statement = select(*keys, func.sum(Rollup.count), literal_column("0") if histograms else func.sum(Rollup.items)
                       ).where(or_(*(and_(Rollup.day >= first, Rollup.day <= last) for first, last in days)))
    if histograms:
        statement = statement.where(Rollup.bucket != NO_DURATION)
    if only:
        statement = statement.where(Rollup.metric.in_(only))
    return _built(session, statement.group_by(*(getattr(Rollup, c) for c in names)), names)


def _summed(session: Session, days: list[tuple[dt.date, dt.date]], names: list[str], only: tuple[str, ...],
            *where: Any) -> Any:
    """The daily rows of these runs of days, summed by the columns ``names``."""
    keys = [getattr(Rollup, c) for c in names]
    statement = select(*keys, func.sum(Rollup.count), func.sum(Rollup.items)).where(
        or_(*(and_(Rollup.day >= first, Rollup.day <= last) for first, last in days)), *where)
    if only:
        statement = statement.where(Rollup.metric.in_(only))
    return session.execute(statement.group_by(*keys))


def _from_cuts(session: Session, table: type[Cut] | type[DayCut], period: list[Any], kept: tuple[str, ...],
               only: tuple[str, ...], durations: bool, sources: bool, *, summed: bool) -> dict[Cell, Tally]:
    """The cut ``kept`` of the months or days ``period`` selects, from the monthly or daily cuts: one span's rows as
    stored, several ``summed`` in the database by the columns a cut may hold (the others are blank in every row of
    it); with ``sources`` false, the histogram rows summed over source and path (``cells``)."""
    where = [*period, table.keep == ",".join(kept)]
    if only:
        where.append(table.metric.in_([*only, *(histogram(m) for m in only)] if durations else only))
    counts = [*COUNT_COLUMNS, "bucket", *kept]
    if sources or not durations:
        if not durations:
            where.append(table.bucket == NO_DURATION)
        return _cut_rows(session, table, counts, where, summed=summed)
    out = _cut_rows(session, table, counts, [*where, table.bucket == NO_DURATION], summed=summed)
    out.update(_cut_rows(session, table, [*BUCKET_COLUMNS, *kept], [*where, table.bucket != NO_DURATION],
                         summed=True))
    return out


def _cut_rows(session: Session, table: type[Cut] | type[DayCut], names: list[str], where: list[Any], *,
              summed: bool) -> dict[Cell, Tally]:
    """Cut rows by the columns ``names`` (the others blank): as stored, or ``summed`` in the database."""
    keys = [getattr(table, c) for c in names]
    count, items = table.__table__.c["count"], table.__table__.c["items"]
    if summed:
        statement = select(*keys, func.sum(count), func.sum(items)).where(*where).group_by(*keys)
    else:
        statement = select(*keys, count, items).where(*where)
    return _built(session, statement, names)


def _built(session: Session, statement: Any, names: list[str]) -> dict[Cell, Tally]:
    """The cells of a query's rows: the columns ``names``, then the count and the items; the other columns blank."""
    # built by position from a template: a month by Member State is some 15,000 rows, and building each cell from
    # keyword arguments cost more than the query
    template: list[Any] = [dt.date.min, *("" for _ in CUT_COLUMNS)]
    template[CELL_COLUMNS.index("before_view")] = False
    template[CELL_COLUMNS.index("proactive")] = False
    template[CELL_COLUMNS.index("bucket")] = NO_DURATION
    at = [CELL_COLUMNS.index(c) for c in names]
    out: dict[Cell, Tally] = {}
    for row in session.connection().execute(statement):
        values = template.copy()
        for i, value in zip(at, row, strict=False):
            values[i] = value
        out[Cell._make(values)] = Tally(int(row[-2]), int(row[-1]))
    return out


#: The columns of a histogram summed over source and path (``cells`` with ``sources`` false).
BUCKET_COLUMNS = ("metric", "proactive", "bucket")


def over_sources(cut: Mapping[Cell, Tally]) -> dict[Cell, Tally]:
    """A cut's histogram cells summed over source and path (what ``cells`` reads with ``sources`` false)."""
    out: dict[Cell, Tally] = {}
    for cell, tally in cut.items():
        key = cell._replace(source="", path="") if cell.bucket != NO_DURATION else cell
        was = out.get(key)
        out[key] = Tally(tally.count + was.count, tally.items + was.items) if was else tally
    return out


def grouped(session: Session, start: dt.date, end: dt.date, by: Dimension | None) -> dict[Cell, Tally]:
    """What ``metrics.figures`` grouped ``by`` needs of the period (the API's answer): the cut ``metrics.kept_for``,
    its histograms summed over sources unless the groups are sources or paths."""
    return cells(session, start, end, kept_for(by), sources=by in (Dimension.SOURCE, Dimension.PATH))


def cells_for(session: Session, start: dt.date, end: dt.date) -> CellsFor:
    """What ``reports.dsa_report`` reads: the period's cells keeping the dimensions it asks for."""
    def read(keep: tuple[str, ...], only: tuple[str, ...] = ()) -> dict[Cell, Tally]:
        return cells(session, start, end, keep, only)

    return read


def marks(session: Session) -> dict[str, int]:
    """Each log's high-water mark (for /status and the dashboard: how far the counting has come)."""
    return {m.log: m.last_id for m in session.scalars(select(Mark))}


def counted_through(session: Session, day: dt.date) -> bool:
    """Whether every event written so far that is dated on or before ``day`` is counted: no log holds one past its
    mark (the backlog past a mark is short, so each look is a few index entries)."""
    done = marks(session)
    before = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    for name in LOGS:
        log = table(name, column("id"), column("at", UTCDateTime()))
        waiting = select(log.c.id).where(log.c.id > done.get(name, 0), log.c.at < before).limit(1)
        if session.scalar(waiting) is not None:
            return False
    return True


def quarantined(session: Session) -> dict[str, int]:
    """How many events of each log were skipped as unreadable (``Quarantined``; for /status and the dashboard)."""
    return {name: int(n) for name, n in session.execute(
        select(Quarantined.log, func.count()).group_by(Quarantined.log))}


def status(db: Database) -> dict[str, Any]:
    """The ``/status`` fields: how far each log is counted, and how many events were skipped as unreadable."""
    try:
        with db.read() as session:
            return {"counted_up_to": marks(session), "quarantined": quarantined(session)}
    except Exception:  # /status answers even when the database does not
        return {"counted_up_to": {}, "quarantined": {}}


def daily_actions(session: Session, start: dt.date, end: dt.date) -> dict[tuple[dt.date, str], tuple[int, int]]:
    """Actions and proactive actions on each day of the period, per category (the dashboard's series over time, and
    the categories its filter offers): one ``GROUP BY`` of the daily cut by category (``DAY_CUTS``: a few hundred
    rows a day, not every cell of it; the daily rows when it is not kept)."""
    table: type[Rollup] | type[DayCut] = DayCut if ("category",) in DAY_CUTS else Rollup
    statement = select(table.day, table.category, table.proactive, func.sum(table.__table__.c["count"])).where(
        table.day >= start, table.day <= end, table.metric == Metric.ACTION.value)
    if table is DayCut:
        statement = statement.where(DayCut.keep == "category")
    out: dict[tuple[dt.date, str], tuple[int, int]] = {}
    for day, category, proactive, count in session.execute(
            statement.group_by(table.day, table.category, table.proactive)):
        actioned, proactive_count = out.get((day, category), (0, 0))
        out[day, category] = (actioned + int(count), proactive_count + (int(count) if proactive else 0))
    return out


def actions_by(session: Session, start: dt.date, end: dt.date, columns: tuple[str, ...], category: str = ""
               ) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Actions and proactive actions in the period per value of ``columns`` (a cell's dimension, source or path
    columns), of one category when ``category`` is given: the dashboard's grouped charts, which draw nothing else.

    Summed in the database down to those few hundred rows (not a cut with every count column, which for a category
    and a Member State is nearly as many rows as the days it sums): whole months from a monthly cut that keeps
    the dimensions asked for, where ``CUTS`` has one, the other days from the daily cut that does (``DAY_CUTS``: one
    dimension, or none) or else from the daily rows."""
    dimensions = {c for c in columns if c in DIMENSION_COLUMNS} | ({"category"} if category else set())
    kept = tuple(c for c in DIMENSION_COLUMNS if c in dimensions)
    months, days = split(start, end) if kept in CUTS else ([], [(start, end)])
    out: dict[tuple[Any, ...], tuple[int, int]] = {}

    def add(table: type[Rollup] | type[Cut] | type[DayCut], *where: Any) -> None:
        keys = [getattr(table, c) for c in columns]
        count = table.__table__.c["count"]
        statement = select(*keys, func.sum(count), func.sum(case((table.proactive, count), else_=0))).where(
            table.metric == Metric.ACTION.value, *where)
        if category:
            statement = statement.where(table.category == category)
        for *key, actioned, proactive in session.execute(statement.group_by(*keys)):
            was = out.get(tuple(key), (0, 0))
            out[tuple(key)] = (was[0] + int(actioned), was[1] + int(proactive or 0))

    if months:
        add(Cut, Cut.month.in_(months), Cut.keep == ",".join(kept))
    if days and kept in DAY_CUTS:
        add(DayCut, or_(*(and_(DayCut.day >= first, DayCut.day <= last) for first, last in days)),
            DayCut.keep == ",".join(kept))
    elif days:
        add(Rollup, or_(*(and_(Rollup.day >= first, Rollup.day <= last) for first, last in days)))
    return out
