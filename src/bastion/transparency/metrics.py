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
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core import events as event_log
from bastion.moderation import queries
from bastion.orders.events import Executed, OrderEventKind, Received, Unable
from bastion.orders.models import OrderEvent
from bastion.reporting.events import ReportEventKind, Sent
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


@dataclass(frozen=True)
class Cell:
    """Where facts are summed: the roll-up table's key."""

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
CELL_COLUMNS = tuple(f.name for f in fields(Cell))


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


def moderation_facts(session: Session, *, after: int, limit: int) -> tuple[list[Fact], int]:
    found, last = queries.moderation_facts(session, after=after, limit=limit)
    return [Fact("moderation_events", f.event_id, Metric(f.kind.value), f.at, f.category, f.country, f.territory,
                 f.content_type, f.language, f.source, f.path, f.action, f.proactive, f.before_view, f.seconds)
            for f in found], last


#: An order is counted under terrorist content: TCO removal orders are the only orders Bastion receives.
ORDER_CATEGORY = "terrorist_content"


def order_facts(session: Session, *, after: int, limit: int) -> tuple[list[Fact], int]:
    """Orders received (with their URLs as items), executed (with the time from receipt), and Annex III answers."""
    events = list(session.scalars(select(OrderEvent).where(OrderEvent.id > after).order_by(OrderEvent.id)
                                  .limit(limit)))
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


def report_facts(session: Session, *, after: int, limit: int) -> tuple[list[Fact], int]:
    """Child-safety reports sent, one fact per centre (``ncmec``, ``eu_centre``)."""
    events = list(session.scalars(select(ReportEvent).where(ReportEvent.id > after).order_by(ReportEvent.id)
                                  .limit(limit)))
    if not events:
        return [], after
    facts = [Fact("report_events", e.id, Metric.REPORT_SENT, e.at, category="csam", action=centre)
             for e in events if e.kind == ReportEventKind.SENT.value
             for centre in event_log.payload(e, Sent).centres]
    return facts, events[-1].id


READERS = {"moderation_events": moderation_facts, "order_events": order_facts, "report_events": report_facts}


def all_facts(session: Session, *, batch: int = 5000) -> Iterator[Fact]:
    """Every fact of every log, read in batches (the direct computation, and the baseline the roll-ups beat)."""
    for name in LOGS:
        reader, after = READERS[name], 0
        while True:
            facts, last = reader(session, after=after, limit=batch)
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
    """A distribution of durations, in seconds, from the fixed buckets (upper bounds, nearest rank)."""

    count: int
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

    Shares are fractions (0 to 1) of the count they name; ``None`` where the base is zero, or where the figure has
    no meaning for the grouping (uploads carry no category: ``share_of_uploads`` is given only when grouping by
    country, content type or language, or not grouping).
    """

    group: str = Field(description="the value of the grouping dimension; '' when not grouped")
    uploads: int | None
    actioned: int = Field(description="actions restricting content (one per action event)")
    by_action: dict[str, int]
    share_of_uploads: float | None
    proactive: int = Field(description="actioned before any notice or order (own initiative)")
    proactive_share: float | None
    proactive_within_24h: float | None = Field(description="share of proactive actions taken within 24 h of upload")
    upload_to_action: Durations
    before_view_share: float | None = Field(description="share of actions on content never published (blocked or "
                                                        "held at upload, no notice, no views threshold)")
    notices: int
    notices_trusted: int
    notice_to_action: Durations
    notice_to_decision: Durations = Field(description="first decision after a notice; within_24h is the hate-speech "
                                                      "Code of Conduct's 'reviewed within 24 h'")
    appeals_filed: int
    appeals_upheld: int
    appeals_partly_reversed: int
    appeals_reversed: int
    appeal_to_decision: Durations
    suspensions: dict[str, int]
    orders_received: int
    order_items: int
    orders_executed: int
    orders_executed_within_1h: int
    orders_annex_iii: int
    order_to_execution: Durations
    reports_sent: dict[str, int] = Field(description="child-safety reports sent, by centre")
    automated_actions: int = Field(description="own-initiative actions decided by automated means alone (hash match, "
                                               "classifier)")
    automated_reversed: int = Field(description="of those, reversed later (appeal or order reinstatement)")
    automated_error_rate: float | None
    automated_precision: float | None


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
    for cell, tally in cells.items():
        groups.setdefault(group_of(cell, by), {})[cell] = tally
    if by is None and not groups:
        groups[""] = {}
    return [_figures(name, group, by) for name, group in sorted(groups.items())]


def _figures(name: str, cells: Mapping[Cell, Tally], by: Dimension | None) -> Figures:
    def count(metric: Metric, **match: object) -> int:
        return sum(t.count for c, t in cells.items() if c.metric == metric.value
                   and all(getattr(c, k) == v for k, v in match.items()))

    def by_field(metric: Metric, field: str) -> dict[str, int]:
        out: Counter[str] = Counter()
        for c, t in cells.items():
            if c.metric == metric.value:
                out[getattr(c, field)] += t.count
        return dict(sorted(out.items()))

    def durations(metric: Metric, **match: object) -> Durations:
        found: Counter[int] = Counter()
        for c, t in cells.items():
            if c.metric == metric.value and all(getattr(c, k) == v for k, v in match.items()):
                found[c.bucket] += t.count
        return Durations.of(found)

    uploads = count(Metric.UPLOAD) if by is None or by in UPLOAD_DIMENSIONS else None
    actioned = count(Metric.ACTION)
    proactive = count(Metric.ACTION, proactive=True)
    own_initiative = {s.value for s in queries.OWN_INITIATIVE}
    automated_own = sum(t.count for c, t in cells.items() if c.metric == Metric.ACTION.value
                        and c.path == queries.Path.AUTOMATED.value and c.source in own_initiative)
    reversed_own = sum(t.count for c, t in cells.items() if c.metric == Metric.REVERSAL.value
                       and c.path == queries.Path.AUTOMATED.value and c.source in own_initiative)
    executed = durations(Metric.ORDER_EXECUTED)
    return Figures(
        group=name, uploads=uploads, actioned=actioned, by_action=by_field(Metric.ACTION, "action"),
        share_of_uploads=_share(actioned, uploads), proactive=proactive, proactive_share=_share(proactive, actioned),
        proactive_within_24h=durations(Metric.ACTION, proactive=True).within_24h,
        upload_to_action=durations(Metric.ACTION),
        before_view_share=_share(count(Metric.ACTION, before_view=True), actioned),
        notices=count(Metric.NOTICE),
        notices_trusted=count(Metric.NOTICE, source=queries.Source.TRUSTED_FLAGGER.value),
        notice_to_action=durations(Metric.NOTICE_ACTIONED), notice_to_decision=durations(Metric.NOTICE_HANDLED),
        appeals_filed=count(Metric.APPEAL_FILED), appeals_upheld=count(Metric.APPEAL_DECIDED, action="upheld"),
        appeals_partly_reversed=count(Metric.APPEAL_DECIDED, action="partly_reversed"),
        appeals_reversed=count(Metric.APPEAL_DECIDED, action="reversed"),
        appeal_to_decision=durations(Metric.APPEAL_DECIDED), suspensions=by_field(Metric.SUSPENSION, "action"),
        orders_received=count(Metric.ORDER_RECEIVED),
        order_items=sum(t.items for c, t in cells.items() if c.metric == Metric.ORDER_RECEIVED.value),
        orders_executed=executed.count,
        orders_executed_within_1h=sum(t.count for c, t in cells.items()
                                      if c.metric == Metric.ORDER_EXECUTED.value and 0 <= c.bucket <= 3600),
        orders_annex_iii=count(Metric.ORDER_UNABLE), order_to_execution=executed,
        reports_sent=by_field(Metric.REPORT_SENT, "action"), automated_actions=automated_own,
        automated_reversed=reversed_own, automated_error_rate=_share(reversed_own, automated_own),
        automated_precision=1 - reversed_own / automated_own if automated_own else None,
    )


def in_period(cells: Cells, start: dt.date, end: dt.date) -> dict[Cell, Tally]:
    return {c: t for c, t in cells.items() if start <= c.day <= end}


def undated(cells: Cells) -> dict[Cell, Tally]:
    """The same cells summed over their days (what a period's figures need; fewer cells to walk)."""
    out: dict[Cell, Tally] = {}
    for cell, tally in cells.items():
        key = replace(cell, day=dt.date.min)
        was = out.get(key)
        out[key] = Tally(tally.count + (was.count if was else 0), tally.items + (was.items if was else 0))
    return out
