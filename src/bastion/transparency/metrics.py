"""The transparency figures, counted from the event logs and nothing else (issue 10).

Every event of the moderation, order and child-safety report logs becomes zero or more ``Fact``s (moderation's are
judged by ``moderation/queries.py: moderation_facts``; orders' and reports' here). A fact falls into one ``Cell``:
its day, its metric, its dimensions and the bucket of the duration it measures. Figures (``Figures``) are computed
from cells only, so the same function serves the direct computation (``direct_cells``: read the logs for a period
now) and the roll-ups (``rollups.cells``: the sums a worker kept): the two agree by construction, and a test holds
them to it.

Durations are counted in fixed buckets (``bucket``): a median, p90 or p99 is the upper bound of the bucket that
holds it (nearest rank), exact to the minute under two hours, ten minutes under two days, the hour under sixty days,
then the day. One and 24 hours are bucket bounds, so "within 1 h" and "within 24 h" are exact.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol, TypeVar, cast

import numpy
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import column, func, select, table
from sqlalchemy.orm import Session

from bastion.core import events as event_log
from bastion.core.events import EventLog
from bastion.moderation import queries
from bastion.orders.events import Executed, OrderEventKind, Received, Unable
from bastion.orders.models import OrderEvent
from bastion.reporting.events import RepeatRecorded, ReportEventKind, Sent
from bastion.reporting.models import ReportEvent


class Metric(enum.StrEnum):
    """What a fact counts. Values are storage keys of the roll-ups: never rename."""

    UPLOAD = "upload"
    ACTION = "action"
    NOTICE = "notice"
    NOTICE_HANDLED = "notice_handled"
    NOTICE_ACTIONED = "notice_actioned"
    APPEAL_FILED = "appeal_filed"
    APPEAL_DECIDED = "appeal_decided"
    SUSPENSION = "suspension"
    REVERSAL = "reversal"
    ORDER_RECEIVED = "order_received"
    ORDER_EXECUTED = "order_executed"
    ORDER_UNABLE = "order_unable"  # an Annex III answer
    REPORT_SENT = "report_sent"  # a child-safety report sent to one centre (``action``: the centre)
    REPORT_DUPLICATE_AVOIDED = "report_duplicate"  # a reported file uploaded again, not reported twice
    AUTOMATED_MISSED = "automated_missed"  # an action on content the upload policy let through (``reinstated``: undone)


class Dimension(enum.StrEnum):
    """What figures may be grouped by (``?by=``)."""

    CATEGORY = "category"
    KEYWORD = "keyword"  # the DSA keyword of the category (``moderation.statements.GROUNDS``)
    COUNTRY = "country"  # the uploader's Member State; for orders, the issuing Member State
    TERRITORY = "territory"  # the territorial scope of the action ("" : everywhere)
    CONTENT_TYPE = "content_type"
    LANGUAGE = "language"
    SOURCE = "source"
    PATH = "path"


#: The logs the figures are counted from: the roll-up worker keeps one high-water mark for each.
LOGS = ("moderation_events", "order_events", "report_events")

#: Bucket bound for facts with no duration.
NO_DURATION = -1


def bucket(seconds: float | None) -> int:
    """The upper bound, in whole seconds, of the fixed bucket a duration falls in (see the module's docstring)."""
    if seconds is None:
        return NO_DURATION
    if seconds <= 0:
        return 0
    for limit, step in ((2 * 3600, 60), (48 * 3600, 600), (60 * 86400, 3600)):
        if seconds <= limit:
            return math.ceil(seconds / step) * step
    return math.ceil(seconds / 86400) * 86400


@dataclass(frozen=True)
class Fact:
    """One counted fact, from one event (an event may give several). ``items``: how many items it carries (the URLs
    of an order), 1 otherwise."""

    log: str
    event_id: int
    metric: Metric
    at: dt.datetime
    category: str = ""
    country: str = ""
    territory: str = ""
    content_type: str = ""
    language: str = ""
    source: str = ""
    path: str = ""
    action: str = ""
    proactive: bool = False
    before_view: bool = False
    seconds: float | None = None
    items: int = 1


class Cell(NamedTuple):
    """Where facts are summed: the roll-up table's key (a named tuple: a report builds a hundred thousand)."""

    day: dt.date
    metric: str
    category: str
    country: str
    territory: str
    content_type: str
    language: str
    source: str
    path: str
    action: str
    proactive: bool
    before_view: bool
    bucket: int

    @classmethod
    def of(cls, fact: Fact) -> Cell:
        return cls(fact.at.date(), fact.metric.value, fact.category, fact.country, fact.territory, fact.content_type,
                   fact.language, fact.source, fact.path, fact.action, fact.proactive, fact.before_view,
                   bucket(fact.seconds))


#: The cell's key columns, in the roll-up table's order.
CELL_COLUMNS = Cell._fields


@dataclass(frozen=True)
class Tally:
    count: int
    items: int


Cells = Mapping[Cell, Tally]


def add(into: dict[Cell, Tally], facts: Iterable[Fact]) -> None:
    for fact in facts:
        cell = Cell.of(fact)
        was = into.get(cell)
        into[cell] = Tally(1 + (was.count if was else 0), fact.items + (was.items if was else 0))


# --- facts from each log ------------------------------------------------------------------------------------------


def moderation_facts(session: Session, *, after: int, limit: int, until: dt.datetime | None = None
                     ) -> tuple[list[Fact], int]:
    found, last = queries.moderation_facts(session, after=after, limit=limit, until=until)
    return [Fact("moderation_events", f.event_id, Metric(f.kind.value), f.at, f.category, f.country, f.territory,
                 f.content_type, f.language, f.source, f.path, f.action, f.proactive, f.before_view, f.seconds)
            for f in found], last


#: An order is counted under terrorist content: TCO removal orders are the only orders Bastion receives.
ORDER_CATEGORY = "terrorist_content"


def order_facts(session: Session, *, after: int, limit: int, until: dt.datetime | None = None
                ) -> tuple[list[Fact], int]:
    """Orders received (with their URLs as items), executed (with the time from receipt), and Annex III answers."""
    events = _settled(list(session.scalars(select(OrderEvent).where(OrderEvent.id > after).order_by(OrderEvent.id)
                                           .limit(limit))), until)
    if not events:
        return [], after
    states: dict[str, str] = {}
    subjects = sorted({e.subject for e in events})
    for start in range(0, len(subjects), 500):
        for event in session.scalars(select(OrderEvent).where(
                OrderEvent.subject.in_(subjects[start:start + 500]),
                OrderEvent.kind == OrderEventKind.RECEIVED.value)):
            states[event.subject] = event_log.payload(event, Received).issuing_member_state
    facts: list[Fact] = []
    for event in events:
        country = states.get(event.subject, "")
        common = Fact("order_events", event.id, Metric.ORDER_RECEIVED, event.at, category=ORDER_CATEGORY,
                      country=country, source=queries.Source.AUTHORITY_ORDER.value)
        if event.kind == OrderEventKind.RECEIVED.value:
            facts.append(replace(common, items=event_log.payload(event, Received).urls))
        elif event.kind == OrderEventKind.EXECUTED.value:
            executed = event_log.payload(event, Executed)
            facts.append(replace(common, metric=Metric.ORDER_EXECUTED, action=executed.action.value,
                                 seconds=executed.seconds_since_receipt,
                                 items=sum(1 for c in executed.content if c.acted)))
        elif event.kind == OrderEventKind.UNABLE.value:
            facts.append(replace(common, metric=Metric.ORDER_UNABLE,
                                 action=event_log.payload(event, Unable).reason.value))
    return facts, events[-1].id


def report_facts(session: Session, *, after: int, limit: int, until: dt.datetime | None = None
                 ) -> tuple[list[Fact], int]:
    """Child-safety reports sent, one fact per centre (``ncmec``, ``eu_centre``), and duplicates avoided: each
    repeat upload of a reported file recorded with its report instead of reported again (``action``: ``draft``
    when the report still to be sent names it, ``sent`` when the report already sent covers it)."""
    events = _settled(list(session.scalars(select(ReportEvent).where(ReportEvent.id > after)
                                           .order_by(ReportEvent.id).limit(limit))), until)
    if not events:
        return [], after
    facts: list[Fact] = []
    for e in events:
        if e.kind == ReportEventKind.SENT.value:
            facts.extend(Fact("report_events", e.id, Metric.REPORT_SENT, e.at, category="csam", action=centre)
                         for centre in event_log.payload(e, Sent).centres)
        elif e.kind == ReportEventKind.REPEAT_RECORDED.value:
            after_sending = event_log.payload(e, RepeatRecorded).after_sending
            facts.append(Fact("report_events", e.id, Metric.REPORT_DUPLICATE_AVOIDED, e.at, category="csam",
                              action="sent" if after_sending else "draft"))
    return facts, events[-1].id


E = TypeVar("E", bound=EventLog)


def _settled(events: list[E], until: dt.datetime | None) -> list[E]:
    """The events before the first written at or after ``until`` (see ``queries.moderation_facts``)."""
    return events if until is None else list(itertools.takewhile(lambda e: e.at < until, events))


class Reader(Protocol):
    def __call__(self, session: Session, *, after: int, limit: int, until: dt.datetime | None = None
                 ) -> tuple[list[Fact], int]: ...


READERS: dict[str, Reader] = {"moderation_events": moderation_facts, "order_events": order_facts,
                              "report_events": report_facts}


class Read(NamedTuple):
    """A batch of one log's facts: ``last``, the last event id read; ``skipped``, the events that could not be read
    (their id and why), each counted as nothing."""

    facts: list[Fact]
    last: int
    skipped: list[tuple[int, str]]


def read(session: Session, log: str, *, after: int, limit: int, until: dt.datetime | None = None) -> Read:
    """Up to ``limit`` events of ``log`` after ``after`` as facts, skipping each event that cannot be judged.

    An event cannot be judged when a payload its facts need does not validate (its own, or an earlier event's of the
    same subject): the reader raises ``ValidationError``, and a binary search over the batch's length finds the first
    event whose reading fails (reading the first n events fails from some n on, whatever the batch: an event's facts
    depend on it and its subject's earlier events alone). That event is skipped and reading goes on after it, so the
    roll-ups and the direct count skip the same events. Any other error is raised: a round that fails counts
    nothing."""
    reader = READERS[log]
    facts: list[Fact] = []
    skipped: list[tuple[int, str]] = []
    while True:
        try:
            found, last = reader(session, after=after, limit=limit, until=until)
            return Read(facts + found, last, skipped)
        except ValidationError as failed:
            error = failed
        good, bad = 0, limit  # the first ``good`` events read; the first ``bad`` do not
        done: tuple[list[Fact], int] = ([], after)
        while bad - good > 1:
            middle = (good + bad) // 2
            try:
                done, good = reader(session, after=after, limit=middle, until=until), middle
            except ValidationError as failed:
                error, bad = failed, middle
        facts += done[0]
        culprit = _next_id(session, log, done[1])
        skipped.append((culprit, f"{error.title}: {error.error_count()} error(s): "
                                 + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                             for e in error.errors()[:5])))
        after, limit = culprit, limit - bad
        if limit <= 0:
            return Read(facts, after, skipped)


def _next_id(session: Session, log: str, after: int) -> int:
    """The id of the log's first event after ``after`` (the logs are tables of that name, each with an ``id``)."""
    found = session.scalar(select(func.min(column("id"))).select_from(table(log, column("id")))
                           .where(column("id") > after))
    assert found is not None, (log, after)  # a reader failed on an event that is there
    return int(found)


def all_facts(session: Session, *, batch: int = 5000) -> Iterator[Fact]:
    """Every fact of every log, read in batches (the direct computation, and the baseline the roll-ups beat); events
    that cannot be read are skipped, as the roll-up worker skips them (``read``)."""
    for name in LOGS:
        after = 0
        while True:
            facts, last, _ = read(session, name, after=after, limit=batch)
            yield from facts
            if last == after:
                break
            after = last


def direct_cells(session: Session, start: dt.date, end: dt.date) -> dict[Cell, Tally]:
    """Cells for the days ``start`` to ``end`` (inclusive), counted from the logs now: no roll-up involved."""
    cells: dict[Cell, Tally] = {}
    add(cells, (f for f in all_facts(session) if start <= f.at.date() <= end))
    return cells


# --- figures ------------------------------------------------------------------------------------------------------


class Durations(BaseModel):
    """A distribution of durations, in seconds, from the fixed buckets (upper bounds, nearest rank); all ``None``
    when suppressed for a researcher."""

    count: int | None
    median_s: int | None = None
    p90_s: int | None = None
    p99_s: int | None = None
    within_1h: float | None = Field(None, description="share of durations of at most one hour")
    within_24h: float | None = Field(None, description="share of durations of at most 24 hours")

    @classmethod
    def of(cls, buckets: Counter[int]) -> Durations:
        total = sum(n for b, n in buckets.items() if b != NO_DURATION)
        if total == 0:
            return cls(count=0, within_1h=None, within_24h=None)
        ordered = sorted((b, n) for b, n in buckets.items() if b != NO_DURATION)

        def rank(p: float) -> int:
            wanted, seen = math.ceil(p * total), 0
            for b, n in ordered:
                seen += n
                if seen >= wanted:
                    return b
            return ordered[-1][0]

        def within(limit: int) -> float:
            return sum(n for b, n in ordered if b <= limit) / total

        return cls(count=total, median_s=rank(0.5), p90_s=rank(0.9), p99_s=rank(0.99), within_1h=within(3600),
                   within_24h=within(86400))


class Figures(BaseModel):
    """Every figure of issue 10 for one group of a period (all of it when ``group`` is ``""``).

    Shares are fractions (0 to 1) of the count they name; ``None`` where the base is zero, where the figure has
    no meaning for the grouping (uploads carry no category: ``share_of_uploads`` is given only when grouping by
    country, content type or language, or not grouping), or where a count was suppressed for a researcher
    (``suppress``).
    """

    group: str = Field(description="the value of the grouping dimension; '' when not grouped")
    uploads: int | None
    actioned: int | None = Field(description="actions restricting content (one per action event)")
    by_action: dict[str, int | None]
    share_of_uploads: float | None
    proactive: int | None = Field(description="actioned before any notice or order (own initiative)")
    proactive_share: float | None
    proactive_within_24h: float | None = Field(description="share of proactive actions taken within 24 h of upload")
    upload_to_action: Durations
    before_view_share: float | None = Field(description="share of actions on content never published (blocked or "
                                                        "held at upload, no notice, no views threshold)")
    notices: int | None
    notices_trusted: int | None
    notice_to_action: Durations
    notice_to_decision: Durations = Field(description="first decision after a notice; within_24h is the hate-speech "
                                                      "Code of Conduct's 'reviewed within 24 h'")
    appeals_filed: int | None
    appeals_upheld: int | None
    appeals_partly_reversed: int | None
    appeals_reversed: int | None
    appeal_to_decision: Durations
    suspensions: dict[str, int | None]
    orders_received: int | None
    order_items: int | None
    orders_executed: int | None
    orders_executed_within_1h: int | None
    orders_annex_iii: int | None
    order_to_execution: Durations
    reports_sent: dict[str, int | None] = Field(description="child-safety reports sent, by centre")
    reports_duplicates_avoided: int | None = Field(description="uploads of already-reported child sexual abuse "
                                                               "material recorded with their report, not reported "
                                                               "again")
    automated_actions: int | None = Field(description="own-initiative actions decided by automated means alone "
                                                      "(hash match, classifier)")
    automated_reversed: int | None = Field(description="of those, reversed later (appeal or order reinstatement)")
    automated_error_rate: float | None
    automated_precision: float | None
    automated_detected: int | None = Field(description="actions on content automated means caught at upload (hash "
                                                       "match, classifier), decided by them alone or by a person")
    automated_detected_reversed: int | None = Field(description="of those, reversed later")
    automated_missed: int | None = Field(description="actions by a person or an order on content the automated "
                                                     "means let through at upload (verdict allow)")
    automated_missed_reversed: int | None = Field(description="of those, reversed later")
    automated_recall: float | None = Field(description="caught / (caught + missed), reversed actions left out of "
                                                       "both (docs/transparency.md)")
    automated_accuracy: float | None = Field(description="1 - (automated actions reversed + missed) / uploads: the "
                                                         "share of upload verdicts not found wrong")


#: Dimensions uploads carry: ``share_of_uploads`` is computed only for these groupings.
UPLOAD_DIMENSIONS = frozenset({Dimension.COUNTRY, Dimension.CONTENT_TYPE, Dimension.LANGUAGE})


def group_of(cell: Cell, by: Dimension | None) -> str:
    if by is None:
        return ""
    if by is Dimension.KEYWORD:
        return keyword(cell.category)
    return str(getattr(cell, by.value))


def keyword(category: str) -> str:
    """The DSA statement category and keyword a Bastion category is reported under (``CATEGORY/KEYWORD``)."""
    if not category:
        return ""
    statement, kw, _ = queries.dsa_ground(category)
    return f"{statement}/{kw}" if kw else statement


def _share(part: int, whole: int | None) -> float | None:
    return part / whole if whole else None


def figures(cells: Cells, by: Dimension | None = None) -> list[Figures]:
    """The figures of each group (sorted by group), from summed cells."""
    groups: dict[str, dict[Cell, Tally]] = {}
    if by is None or by is Dimension.KEYWORD:
        for cell, tally in cells.items():
            groups.setdefault(group_of(cell, by), {})[cell] = tally
    else:  # ``group_of`` inlined: a year by Member State is some 6,000 cells, most of them histograms
        at = CELL_COLUMNS.index(by.value)
        for cell, tally in cells.items():
            groups.setdefault(str(cell[at]), {})[cell] = tally
    if by is None and not groups:
        groups[""] = {}
    return [_figures(name, group, by) for name, group in sorted(groups.items())]


def _figures(name: str, cells: Mapping[Cell, Tally], by: Dimension | None) -> Figures:
    split: dict[str, list[tuple[Cell, Tally]]] = {}  # one pass; each figure then walks its own metric's cells
    for cell, tally in cells.items():
        split.setdefault(cell.metric, []).append((cell, tally))

    def of(metric: Metric) -> list[tuple[Cell, Tally]]:
        return split.get(metric, [])

    def count(metric: Metric, **match: object) -> int:
        return sum(t.count for c, t in of(metric) if all(getattr(c, k) == v for k, v in match.items()))

    def by_field(metric: Metric, field: str) -> dict[str, int | None]:
        out: Counter[str] = Counter()
        for c, t in of(metric):
            out[getattr(c, field)] += t.count
        return dict(sorted(out.items()))

    def timed(metric: Metric) -> list[tuple[Cell, Tally]]:
        """Cells that carry the metric's durations: its own, and its histogram cells in a cut (``histogram``)."""
        return of(metric) + split.get(histogram(metric), [])

    def durations(metric: Metric, *, proactive: bool | None = None) -> Durations:
        found: Counter[int] = Counter()
        for c, t in timed(metric):
            if proactive is None or c.proactive == proactive:
                found[c.bucket] += t.count
        return Durations.of(found)

    uploads = count(Metric.UPLOAD) if by is None or by in UPLOAD_DIMENSIONS else None
    actioned = count(Metric.ACTION)
    proactive = count(Metric.ACTION, proactive=True)
    own_initiative = queries.OWN_INITIATIVE
    automated_own = sum(t.count for c, t in of(Metric.ACTION)
                        if c.path == queries.Path.AUTOMATED and c.source in own_initiative)
    reversed_own = sum(t.count for c, t in of(Metric.REVERSAL)
                       if c.path == queries.Path.AUTOMATED and c.source in own_initiative)
    executed = durations(Metric.ORDER_EXECUTED)
    detected = sum(t.count for c, t in of(Metric.ACTION) if c.source in AUTOMATED_SOURCES)
    detected_reversed = sum(t.count for c, t in of(Metric.REVERSAL) if c.source in AUTOMATED_SOURCES)
    missed_reversed = count(Metric.AUTOMATED_MISSED, action=REINSTATED)
    missed = count(Metric.AUTOMATED_MISSED, action="")
    return Figures(
        group=name, uploads=uploads, actioned=actioned, by_action=by_field(Metric.ACTION, "action"),
        share_of_uploads=_share(actioned, uploads), proactive=proactive, proactive_share=_share(proactive, actioned),
        proactive_within_24h=durations(Metric.ACTION, proactive=True).within_24h,
        upload_to_action=durations(Metric.ACTION),
        before_view_share=_share(count(Metric.ACTION, before_view=True), actioned),
        notices=count(Metric.NOTICE),
        notices_trusted=count(Metric.NOTICE, source=queries.Source.TRUSTED_FLAGGER),
        notice_to_action=durations(Metric.NOTICE_ACTIONED), notice_to_decision=durations(Metric.NOTICE_HANDLED),
        appeals_filed=count(Metric.APPEAL_FILED), appeals_upheld=count(Metric.APPEAL_DECIDED, action="upheld"),
        appeals_partly_reversed=count(Metric.APPEAL_DECIDED, action="partly_reversed"),
        appeals_reversed=count(Metric.APPEAL_DECIDED, action="reversed"),
        appeal_to_decision=durations(Metric.APPEAL_DECIDED), suspensions=by_field(Metric.SUSPENSION, "action"),
        orders_received=count(Metric.ORDER_RECEIVED),
        order_items=sum(t.items for _, t in of(Metric.ORDER_RECEIVED)),
        orders_executed=executed.count,
        orders_executed_within_1h=sum(t.count for c, t in timed(Metric.ORDER_EXECUTED) if 0 <= c.bucket <= 3600),
        orders_annex_iii=count(Metric.ORDER_UNABLE), order_to_execution=executed,
        reports_sent=by_field(Metric.REPORT_SENT, "action"),
        reports_duplicates_avoided=count(Metric.REPORT_DUPLICATE_AVOIDED), automated_actions=automated_own,
        automated_reversed=reversed_own, automated_error_rate=_share(reversed_own, automated_own),
        automated_precision=1 - reversed_own / automated_own if automated_own else None,
        automated_detected=detected, automated_detected_reversed=detected_reversed, automated_missed=missed,
        automated_missed_reversed=missed_reversed,
        automated_recall=_share(detected - detected_reversed,
                                detected - detected_reversed + missed - missed_reversed),
        automated_accuracy=1 - (reversed_own + missed - missed_reversed) / uploads if uploads else None,
    )


#: The detection sources that are automated means (the upload policy's): an action of theirs was caught by them.
AUTOMATED_SOURCES = frozenset({queries.Source.HASH_MATCH, queries.Source.CLASSIFIER})
#: ``automated_missed``'s action when the missed action is undone.
REINSTATED = "reinstated"


#: The dimensions a figure may be grouped by; every other key column is what every figure needs.
DIMENSION_COLUMNS = ("category", "country", "territory", "content_type", "language")


class CellsFor(Protocol):
    """A period's cells keeping the dimension columns ``keep``, of the metrics ``only`` (all when empty)."""

    def __call__(self, keep: tuple[str, ...], only: tuple[str, ...] = ()) -> Cells: ...


def kept_for(by: Dimension | None) -> tuple[str, ...]:
    """The dimension columns figures grouped ``by`` need (the others may be summed away first, in SQL)."""
    if by is None or by in (Dimension.SOURCE, Dimension.PATH):
        return ()
    return ("category",) if by is Dimension.KEYWORD else (by.value,)


def histogram(metric: str) -> str:
    """The metric name a cut gives its duration cells (see ``project``)."""
    return f"{metric}#h"


#: What a cut keeps besides the dimensions: for counts (every duration summed away), and for durations.
COUNT_COLUMNS = ("metric", "source", "path", "action", "proactive", "before_view")
HISTOGRAM_COLUMNS = ("metric", "source", "path", "proactive", "bucket")


def project(cells: Cells, keep: tuple[str, ...], only: tuple[str, ...] = ()) -> dict[Cell, Tally]:
    """A cut of ``cells`` (of the metrics ``only``, all when empty): summed over their days and the dimensions not in
    ``keep``, in two parts — counts with every duration summed away (``bucket`` -1), and the duration histograms
    under ``histogram(metric)`` with only the source, the path and the proactive flag kept. Without the bucket
    multiplying every cell, a period's cut is a few hundred cells; ``figures`` reads either shape.
    ``rollups.cells`` makes the same cut in SQL."""
    blank: dict[str, Any] = {d: "" for d in DIMENSION_COLUMNS if d not in keep}
    out: dict[Cell, Tally] = {}

    def put(key: Cell, count: int, items: int) -> None:
        was = out.get(key)
        out[key] = Tally(count + (was.count if was else 0), items + (was.items if was else 0))

    for cell, tally in cells.items():
        if only and cell.metric not in only:
            continue
        put(cell._replace(day=dt.date.min, bucket=NO_DURATION, **blank), tally.count, tally.items)
        if cell.bucket != NO_DURATION:
            put(cell._replace(day=dt.date.min, metric=histogram(cell.metric), action="",
                              before_view=False, **blank), tally.count, 0)
    return out


def in_period(cells: Cells, start: dt.date, end: dt.date) -> dict[Cell, Tally]:
    return {c: t for c, t in cells.items() if start <= c.day <= end}


def undated(cells: Cells) -> dict[Cell, Tally]:
    """The same cells summed over their days (what a period's figures need; fewer cells to walk)."""
    out: dict[Cell, Tally] = {}
    for cell, tally in cells.items():
        key = cell._replace(day=dt.date.min)
        was = out.get(key)
        out[key] = Tally(tally.count + (was.count if was else 0), tally.items + (was.items if was else 0))
    return out


# --- what a researcher or regulator sees ------------------------------------------------------------------------


#: The plain counts of ``Figures`` (each one returned number); the dict fields and durations' counts are added per key.
COUNT_FIELDS = ("uploads", "actioned", "proactive", "notices", "notices_trusted", "appeals_filed", "appeals_upheld",
                "appeals_partly_reversed", "appeals_reversed", "orders_received", "order_items", "orders_executed",
                "orders_executed_within_1h", "orders_annex_iii", "automated_actions", "automated_reversed",
                "reports_duplicates_avoided", "automated_detected", "automated_detected_reversed", "automated_missed",
                "automated_missed_reversed")
DICT_FIELDS = ("by_action", "suspensions", "reports_sent")
DURATION_FIELDS = ("upload_to_action", "notice_to_action", "notice_to_decision", "appeal_to_decision",
                   "order_to_execution")

#: A returned count: (group index, field, key) — key is the dict key, ``count`` for durations, ``""`` otherwise.
Key = tuple[int, str, str]


@dataclass(frozen=True)
class Margin:
    """Counts whose sum is known to whoever reads the answer: ``total`` (a returned count), or, when ``None``, a
    figure of another answer (the ungrouped query gives the sum over groups)."""

    total: Key | None
    members: tuple[Key, ...]

    @property
    def keys(self) -> tuple[Key, ...]:
        return self.members if self.total is None else (self.total, *self.members)


def _counts(f: Figures, g: int) -> dict[Key, int]:
    found: dict[Key, int] = {}
    for name in COUNT_FIELDS:
        value = getattr(f, name)
        if value is not None:
            found[(g, name, "")] = value
    for name in DICT_FIELDS:
        for key, value in getattr(f, name).items():
            if value is not None:
                found[(g, name, key)] = value
    for name in DURATION_FIELDS:
        value = getattr(f, name).count
        if value is not None:
            found[(g, name, "count")] = value
    return found


def _row_margins(g: int, keys: Iterable[Key]) -> list[Margin]:
    """Within group ``g`` (its counts ``keys``): the actions by kind add up to ``actioned``, and the durations from
    upload to action count the same actions; appeals upheld, partly reversed and reversed add up to those decided
    (``appeal_to_decision.count``); executions timed are those executed."""
    actions = tuple(sorted(x for x in keys if x[0] == g and x[1] == "by_action"))
    return [Margin((g, "actioned", ""), actions),
            Margin((g, "actioned", ""), ((g, "upload_to_action", "count"),)),
            Margin((g, "appeal_to_decision", "count"), tuple(
                (g, name, "") for name in ("appeals_upheld", "appeals_partly_reversed", "appeals_reversed"))),
            Margin((g, "orders_executed", ""), ((g, "order_to_execution", "count"),))]


def margins(values: Mapping[Key, int], groups: int) -> list[Margin]:
    """Every sum a reader knows of an answer of ``groups`` groups with the counts ``values``: each group's own
    (``_row_margins``) and, across groups, each count adding up to the ungrouped answer's. Sums that need not hold
    exactly (an action without a duration) only make the rule stricter."""
    found = [m for g in range(groups) for m in _row_margins(g, values)]
    if groups > 1:
        columns: dict[tuple[str, str], list[Key]] = {}
        for key in sorted(values):
            columns.setdefault(key[1:], []).append(key)
        found.extend(Margin(None, tuple(keys)) for keys in columns.values())
    return found


def hidden_counts(groups: Sequence[Figures], k: int) -> set[Key]:
    """The counts a researcher must not see: each from 1 to ``k`` - 1 (primary suppression), and complementary ones
    so that none of those can be worked out from what is shown (secondary suppression, docs/transparency.md). The
    sums across groups are the ungrouped answer's counts: known to the reader unless that answer hides them too."""
    values: dict[Key, int] = {}
    for g, f in enumerate(groups):
        values |= _counts(f, g)
    found = margins(values, len(groups))
    if len(groups) > 1:
        totals: dict[Key, int] = {}
        for (_, name, key), n in values.items():
            totals[(0, name, key)] = totals.get((0, name, key), 0) + n
        unknown = {key[1:] for key in _hide(totals, margins(totals, 1), k)}
        found = [m for m in found if m.total is not None or m.members[0][1:] not in unknown]
    return _hide(values, found, k)


def _hide(values: Mapping[Key, int], margins_known: Sequence[Margin], k: int) -> set[Key]:
    """Primary and secondary suppression of ``values`` under the sums ``margins_known``:

    1. a margin never has exactly one hidden count: a non-zero count shown in it (its total included) is hidden with
       it — one whose hiding leaves no other margin with a lone hidden count and nothing to pair it with, then one
       that leaves the fewest margins with a lone hidden count, then the smallest — until every margin has none or
       at least two, and hidden counts whose sum the margin gives (its total known) add up to at least ``k``;
    2. then no hidden count may follow from the margins by arithmetic (``determined``: a linear system): while one
       does, the smallest non-zero count shown in one of its margins is hidden too.

    Don't hide zeros as complements: a zero shown is no disclosure, and hiding it protects nothing."""
    hidden = {key for key, n in values.items() if 0 < n < k}
    found = [Margin(m.total if m.total in values else None, tuple(x for x in m.members if x in values))
             for m in margins_known]
    found = [m for m in found if m.members]
    within: dict[Key, list[Margin]] = {}
    for m in found:
        for x in m.keys:
            within.setdefault(x, []).append(m)

    def stranded(key: Key) -> bool:
        """Hiding ``key`` would leave a margin with it as the one hidden count and nothing shown to hide with it."""
        return any(sum(x in hidden for x in m.keys) == 0
                   and not any(x != key and x not in hidden and values[x] > 0 for x in m.keys)
                   for m in within[key])

    def exposed(m: Margin) -> bool:
        """One hidden count alone in the margin, or hidden counts whose sum (which the margin gives, its total being
        known) is itself a small count."""
        inside = [x for x in m.keys if x in hidden]
        if len(inside) == 1:
            return True
        return (m.total is None or m.total not in hidden) and 0 < sum(values[x] for x in inside) < k

    def lone(key: Key) -> int:
        """How many margins hiding ``key`` would leave with it as their one hidden count (each needs a complement)."""
        return sum(1 for m in within[key] if not any(x in hidden for x in m.keys))

    def complement(margin: Margin) -> Key | None:
        """A non-zero count shown in ``margin`` to hide with it: one that strands no other margin, then one that
        leaves the fewest margins with a lone hidden count, then the smallest."""
        shown = [x for x in margin.keys if x not in hidden and values[x] > 0]
        return min(shown, key=lambda x: (stranded(x), lone(x), values[x], x)) if shown else None

    while True:
        # one at a time, the margin with the fewest counts left to pair with first: each choice changes the next
        singles = [m for m in found if exposed(m) and complement(m) is not None]
        if singles:
            tightest = min(singles, key=lambda m: sum(1 for x in m.keys if x not in hidden and values[x] > 0))
            hidden.add(cast(Key, complement(tightest)))
            continue
        solved = determined(found, hidden)
        if not solved:
            return hidden
        key = min(solved)
        chosen = next((c for m in found if key in m.keys if (c := complement(m)) is not None), None)
        if chosen is None:  # its own margins are all hidden: the smallest count shown beside hidden ones that frees it
            near = sorted({x for m in found if any(y in hidden for y in m.keys) for x in m.keys
                           if x not in hidden and values[x] > 0}, key=lambda x: (values[x], x))
            chosen = next((x for x in near if key not in determined(found, hidden | {x})), near[0] if near else None)
        if chosen is None:
            return hidden  # nothing non-zero is shown beside a hidden count: nothing more to hide
        hidden.add(chosen)


def hide_in_margin(values: Mapping[Key, int], k: int, *, known: bool) -> set[Key]:
    """Suppression of counts adding up to one total (a histogram's bins, a series' days). ``known``: the reader
    sees the total, so ``_hide`` over that one margin; otherwise the total is hidden where it is shown, so the counts
    must not add it up: counts from 1 to ``k`` - 1 hidden, and the smallest non-zero one if none is."""
    if known:
        return _hide(values, [Margin(None, tuple(sorted(values)))], k)
    hidden = {key for key, n in values.items() if 0 < n < k}
    rest = sorted((n, key) for key, n in values.items() if n > 0)
    return hidden if hidden or not rest else {rest[0][1]}


def determined(found: Sequence[Margin], hidden: set[Key]) -> set[Key]:
    """The hidden counts the margins fix. Each margin is a linear equation over its hidden counts (the shown ones are
    constants); a hidden count is fixed exactly when every solution of the homogeneous system leaves it at zero, i.e.
    its coordinate is zero in every vector of the null space (from the SVD: the matrix is of -1, 0 and 1, small)."""
    columns = sorted(hidden)
    if not columns:
        return set()
    index = {key: i for i, key in enumerate(columns)}
    rows: list[list[float]] = []
    for m in found:
        row = [0.0] * len(columns)
        if m.total is not None and m.total in hidden:
            row[index[m.total]] += 1
        for x in m.members:
            if x in hidden:
                row[index[x]] -= 1
        if any(row):
            rows.append(row)
    if not rows:
        return set()
    matrix = numpy.array(rows)
    _, singular, vt = numpy.linalg.svd(matrix)
    rank = int((singular > 1e-9 * max(1.0, float(singular[0]))).sum())
    null = vt[rank:]
    free = numpy.abs(null).max(axis=0) > 1e-9 if len(null) else numpy.zeros(len(columns), dtype=bool)
    return {key for key, moves in zip(columns, free, strict=True) if not moves}


def suppress_all(groups: Sequence[Figures], k: int) -> list[Figures]:
    """The groups of one answer as a researcher sees them: ``hidden_counts`` hidden (``None``), with the shares,
    durations and rates computed from a hidden count (DSA Art. 40: aggregates, never a cell small enough to point
    at a person, nor one that arithmetic on the rest gives back)."""
    hidden = hidden_counts(groups, k)
    return [_suppressed(f, g, hidden) for g, f in enumerate(groups)]


def suppress(f: Figures, k: int) -> Figures:
    """One group on its own (``suppress_all`` of it alone)."""
    [only] = suppress_all([f], k)
    return only


def _suppressed(f: Figures, g: int, hidden: set[Key]) -> Figures:
    def gone(name: str, key: str = "") -> bool:
        return (g, name, key) in hidden

    def count(name: str) -> int | None:
        value: int | None = getattr(f, name)
        return None if gone(name) else value

    def counts(name: str) -> dict[str, int | None]:
        return {a: None if gone(name, a) else n for a, n in getattr(f, name).items()}

    def share(value: float | None, *bases: str) -> float | None:
        return None if any(gone(b) for b in bases) else value

    def durations(name: str) -> Durations:
        """Percentiles and the count, never the shares within 1 h and 24 h: a share times its shown count gives a
        count the period's pattern does not cover (3 of 40 within the hour)."""
        d: Durations = getattr(f, name)
        if gone(name, "count"):
            return Durations(count=None, within_1h=None, within_24h=None)
        return d.model_copy(update={"within_1h": None, "within_24h": None})

    executed = durations("order_to_execution")
    return Figures(
        group=f.group, uploads=count("uploads"), actioned=count("actioned"), by_action=counts("by_action"),
        share_of_uploads=share(f.share_of_uploads, "actioned", "uploads"), proactive=count("proactive"),
        proactive_share=share(f.proactive_share, "proactive", "actioned"),
        proactive_within_24h=None,  # times ``proactive`` it gives a count outside the pattern (as ``durations``)
        upload_to_action=durations("upload_to_action"),
        before_view_share=None,  # likewise, times ``actioned``
        notices=count("notices"), notices_trusted=count("notices_trusted"),
        notice_to_action=durations("notice_to_action"), notice_to_decision=durations("notice_to_decision"),
        appeals_filed=count("appeals_filed"), appeals_upheld=count("appeals_upheld"),
        appeals_partly_reversed=count("appeals_partly_reversed"), appeals_reversed=count("appeals_reversed"),
        appeal_to_decision=durations("appeal_to_decision"), suspensions=counts("suspensions"),
        orders_received=count("orders_received"), order_items=count("order_items"),
        orders_executed=count("orders_executed"), orders_executed_within_1h=count("orders_executed_within_1h"),
        orders_annex_iii=count("orders_annex_iii"), order_to_execution=executed,
        reports_sent=counts("reports_sent"), reports_duplicates_avoided=count("reports_duplicates_avoided"),
        automated_actions=count("automated_actions"), automated_reversed=count("automated_reversed"),
        automated_error_rate=share(f.automated_error_rate, "automated_actions", "automated_reversed"),
        automated_precision=share(f.automated_precision, "automated_actions", "automated_reversed"),
        automated_detected=count("automated_detected"),
        automated_detected_reversed=count("automated_detected_reversed"),
        automated_missed=count("automated_missed"), automated_missed_reversed=count("automated_missed_reversed"),
        automated_recall=share(f.automated_recall, "automated_detected", "automated_detected_reversed",
                               "automated_missed", "automated_missed_reversed"),
        automated_accuracy=share(f.automated_accuracy, "uploads", "automated_reversed", "automated_missed",
                                 "automated_missed_reversed"),
    )


# --- one period's answers together: what a researcher can put side by side ----------------------------------------

#: The groupings a researcher may ask of one period: not grouped, and by each dimension.
GROUPINGS: tuple[Dimension | None, ...] = (None, *Dimension)

#: A count of one of the period's answers: (grouping, group index, field, key); the grouping ``""`` when not grouped.
AnswerKey = tuple[str, int, str, str]


def suppress_period(cells: Cells, k: int) -> dict[Dimension | None, list[Figures]]:
    """Every answer a researcher can get for one period (``GROUPINGS``) as they see it, under one hiding pattern.

    Each answer alone is suppressed as ``suppress_all`` does; but two groupings of the same period are sums of the
    same facts, so a count one answer hides as a complement may be shown by another, and differencing them gives a
    small count back. So the pattern is decided over all of them together (``hidden_across``): whatever a
    researcher asks for the period, no linear combination of what is shown, in one answer or across answers, fixes
    a hidden count. ``cells``: the period's cells as stored (``rollups.cells(keep=None)``), the finest sums the
    answers are made of; the result is deterministic, so asking again changes nothing."""
    answers = {by: figures(cells, by) for by in GROUPINGS}
    hidden = {(_name(by), g, field, key) for by, groups in answers.items()
              for g, field, key in hidden_counts(groups, k)}
    values, rows = published(answers, cells)
    hidden = hidden_across(values, rows, hidden)
    out: dict[Dimension | None, list[Figures]] = {}
    for by, groups in answers.items():
        mine = {(g, field, key) for b, g, field, key in hidden if b == _name(by)}
        out[by] = [_suppressed(f, g, mine) for g, f in enumerate(groups)]
    return out


def _name(by: Dimension | None) -> str:
    return "" if by is None else by.value


def published(answers: Mapping[Dimension | None, Sequence[Figures]], cells: Cells
              ) -> tuple[dict[AnswerKey, int], dict[AnswerKey, dict[int, int]]]:
    """Every count of ``answers`` and each as a sum over atoms: ``rows[key]`` maps atom to coefficient. An atom is
    the sum of the cells that add to exactly the same counts of every answer (a cell's count and, for orders, its
    items, are separate atoms): the finest unknowns a reader could solve for. A reader is assumed to know which atoms
    are non-zero (the support): the strictest assumption, so the rule holds whatever they guess."""
    values: dict[AnswerKey, int] = {}
    index: dict[str, dict[str, int]] = {}
    for by, groups in answers.items():
        index[_name(by)] = {f.group: g for g, f in enumerate(groups)}
        values |= {(_name(by), *key): n for g, f in enumerate(groups) for key, n in _counts(f, g).items()}
    memo: dict[tuple[object, ...], list[tuple[tuple[str, str], int]]] = {}
    atoms: dict[tuple[object, ...], int] = {}
    rows: dict[AnswerKey, dict[int, int]] = {}
    for cell, tally in cells.items():
        for part, unit in (("count", Tally(1, 0)), ("items", Tally(0, 1))):
            if (tally.count if part == "count" else tally.items) == 0:
                continue
            what = (part, cell.metric, cell.source, cell.path, cell.action, cell.proactive, cell.before_view,
                    -1 if cell.bucket == NO_DURATION else 0 if cell.bucket <= 3600 else 1)
            if what not in memo:
                [alone] = figures({cell: unit})
                memo[what] = sorted((key[1:], n) for key, n in _counts(alone, 0).items() if n)
            adds = memo[what]
            if not adds:
                continue
            where = tuple(index[_name(by)].get(group_of(cell, by), -1) for by in GROUPINGS)
            atom = atoms.setdefault((where, tuple(adds)), len(atoms))
            for by, g in zip(GROUPINGS, where, strict=True):
                for (field, key), n in adds:
                    answer_key = (_name(by), g, field, key)
                    if answer_key in values:
                        row = rows.setdefault(answer_key, {})
                        row[atom] = row.get(atom, 0) + n
    return values, rows


def hidden_across(values: Mapping[AnswerKey, int], rows: Mapping[AnswerKey, Mapping[int, int]],
                  hidden: set[AnswerKey]) -> set[AnswerKey]:
    """``hidden`` grown until no hidden count is a linear combination of the shown ones (over atoms: ``published``).
    While one is, a non-zero count shown that shares an atom with it is hidden too, with every count shown that is
    the same sum of atoms (the same figure under another name: hiding one alone would change nothing): among the
    eight smallest of those the combination that fixes it uses, one that frees it, then one that leaves the fewest
    hidden counts fixed, then the smallest."""
    hidden = set(hidden)
    parts = _components(rows)
    alike: dict[frozenset[tuple[int, int]], set[AnswerKey]] = {}
    for x, row in rows.items():
        alike.setdefault(frozenset(row.items()), set()).add(x)
    while True:
        solved = sorted(fixed(rows, hidden, parts))
        if not solved:
            return hidden
        key = solved[0]
        near = sorted((x for x in _involved(rows, hidden, parts, key) if values[x] > 0), key=lambda x: (values[x], x))
        if not near:
            return hidden  # no shown count fixes it (unreachable)
        classes = list({frozenset(alike[frozenset(rows[x].items())]): x for x in reversed(near)}.items())
        classes.sort(key=lambda c: (values[c[1]], c[1]))

        chosen = min(classes[:8], key=lambda c: (*_left(rows, hidden | c[0], parts, key), values[c[1]], c[1]))
        hidden |= chosen[0]


def _left(rows: Mapping[AnswerKey, Mapping[int, int]], hidden: set[AnswerKey], parts: Mapping[AnswerKey, int],
          key: AnswerKey) -> tuple[bool, int]:
    """With ``hidden`` hidden: is ``key`` still fixed, and how many hidden counts are fixed in its component."""
    still = fixed(rows, hidden, parts, parts[key])
    return key in still, len(still)


def _involved(rows: Mapping[AnswerKey, Mapping[int, int]], hidden: set[AnswerKey], parts: Mapping[AnswerKey, int],
              key: AnswerKey) -> list[AnswerKey]:
    """The shown counts a linear combination giving ``key`` uses (least squares, minimum norm, over its
    component): hiding one of them may free it."""
    shown = [x for x, part in parts.items() if part == parts[key] and x not in hidden]
    atoms = sorted({a for x in [*shown, key] for a in rows[x]})
    column = {a: i for i, a in enumerate(atoms)}
    matrix = numpy.zeros((len(atoms), len(shown)))
    for j, x in enumerate(shown):
        for a, n in rows[x].items():
            matrix[column[a], j] = n
    target = numpy.zeros(len(atoms))
    for a, n in rows[key].items():
        target[column[a]] = n
    weights = numpy.linalg.lstsq(matrix, target, rcond=None)[0]
    return [x for x, w in zip(shown, weights, strict=True) if abs(w) > 1e-9]


def _components(rows: Mapping[AnswerKey, Mapping[int, int]]) -> dict[AnswerKey, int]:
    """The counts in groups that share no atom with each other (each solved on its own: smaller systems)."""
    parent: dict[int, int] = {}

    def root(a: int) -> int:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for row in rows.values():
        atoms = list(row)
        for a in atoms[1:]:
            parent[root(a)] = root(atoms[0])
    return {key: root(next(iter(row))) for key, row in rows.items() if row}


def fixed(rows: Mapping[AnswerKey, Mapping[int, int]], hidden: set[AnswerKey], parts: Mapping[AnswerKey, int],
          only: int | None = None) -> set[AnswerKey]:
    """The hidden counts the shown ones fix: a hidden count's row (over atoms) lies in the span of the shown rows
    (its residual after projecting on their row space is zero). ``only``: that component alone."""
    found: set[AnswerKey] = set()
    members: dict[int, list[AnswerKey]] = {}
    for key, part in parts.items():
        if only is None or part == only:
            members.setdefault(part, []).append(key)
    for keys in members.values():
        asked = [x for x in keys if x in hidden]
        if not asked:
            continue
        column = {a: i for i, a in enumerate(sorted({a for x in keys for a in rows[x]}))}
        wanted = _matrix(rows, asked, column)
        shown = [x for x in keys if x not in hidden]
        if shown:
            _, singular, vt = numpy.linalg.svd(_matrix(rows, shown, column), full_matrices=False)
            basis = vt[singular > 1e-9 * max(1.0, float(singular[0]))]
            wanted = wanted - (wanted @ basis.T) @ basis
        left = numpy.abs(wanted).max(axis=1)
        found |= {x for x, r in zip(asked, left, strict=True) if r < 1e-7}
    return found


def _matrix(rows: Mapping[AnswerKey, Mapping[int, int]], chosen: list[AnswerKey], column: Mapping[int, int]
            ) -> numpy.ndarray[Any, Any]:
    """The rows ``chosen`` as a dense matrix over the atoms ``column`` numbers."""
    m = numpy.zeros((len(chosen), len(column)))
    for i, x in enumerate(chosen):
        for a, n in rows[x].items():
            m[i, column[a]] = n
    return m
