"""The analyst dashboard's charts (issue 10): each one a table of rows, computed from the roll-ups alone, so the
console draws exactly what its CSV gives (``web/transparency_pages.py``).

Four or five reads of the roll-ups per answer: the period's totals with their duration histograms summed over
sources (``rollups.cells``: whole months from the monthly cuts, other days from the daily cuts), the actions and
proactive ones by Member State and by the chosen dimension, summed in the database (``rollups.actions_by``: no chart
draws a duration or another count per group), and the actions per day and category
(``rollups.daily_actions``: the series, and the categories the filter offers); and how many events were skipped as
unreadable. For a researcher (``k`` set) the totals and the grouped charts are the API's answers for the period as
a researcher gets them (``metrics.suppress_period``: one pattern over every grouping, read from the period's cells
as stored), and the histogram and the series are suppressed against the totals they add up to (``_against``): no
count from 1 to ``k`` - 1 is shown, nor one that the rest and their total give back, nor a share computed from one.
A researcher's dashboard is not filtered by category (a category's charts would be another table, not covered by
the period's pattern).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from bastion.transparency import metrics, rollups
from bastion.transparency.metrics import Dimension, Metric

#: The dimensions the dashboard groups actions by.
GROUPINGS = (Dimension.CATEGORY, Dimension.KEYWORD, Dimension.COUNTRY, Dimension.TERRITORY, Dimension.CONTENT_TYPE,
             Dimension.LANGUAGE, Dimension.SOURCE, Dimension.PATH)
#: The time-to-action histogram's bins: label and upper bound in seconds (fixed buckets fall wholly in one).
TIME_BINS: tuple[tuple[str, float], ...] = (
    ("at upload", 0), ("1 min", 60), ("10 min", 600), ("1 h", 3600), ("24 h", 86400), ("7 days", 7 * 86400),
    ("30 days", 30 * 86400), ("later", math.inf))
#: Periods longer than this many days are drawn per ISO week (from Monday), not per day.
DAILY_UP_TO = 92

Value = int | float | None


@dataclass(frozen=True)
class Chart:
    """One chart's data: ``columns`` name each row's values (the first: its label); ``bar`` is the column drawn."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str | Value, ...]]
    bar: int = 1
    note: str = ""


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date
    by: Dimension = Dimension.CATEGORY
    category: str = ""


@dataclass
class Dashboard:
    filters: Filters
    suppressed_below: int | None
    charts: list[Chart]
    categories: list[str] = field(default_factory=list)
    #: Events skipped as unreadable (``rollups.quarantined``): counted in no figure, so the page says how many.
    quarantined: int = 0


def build(session: Session, filters: Filters, k: int | None,
          released: Mapping[Dimension | None, list[metrics.Figures]] | None = None) -> Dashboard:
    """Every chart for ``filters``; ``k``: a researcher's small-cell threshold (``None``: nothing suppressed), and
    ``released``: the period's answers as researchers get them (a release is drawn from its own; cut here when not
    given)."""
    f = filters

    # the totals, with histograms summed over sources (nothing here draws a duration per source), and the category
    # kept only when filtered on, as it multiplies the rows
    overall = rollups.cells(session, f.start, f.end, ("category",) if f.category else (), sources=False)
    if f.category:
        overall = {c: t for c, t in overall.items() if c.category == f.category}
    [total] = metrics.figures(overall, None)
    # the grouped charts: actions and proactive ones by Member State, and by the grouping, each summed in the
    # database from the cuts that keep that one dimension (a few hundred rows)
    column = "category" if f.by is Dimension.KEYWORD else f.by.value
    countries = _groups(rollups.actions_by(session, f.start, f.end, ("country",), f.category), str)
    grouped = countries if column == "country" else _groups(
        rollups.actions_by(session, f.start, f.end, (column,), f.category),
        metrics.keyword if f.by is Dimension.KEYWORD else str)
    per_category = rollups.daily_actions(session, f.start, f.end)
    if k is not None and f.category:
        raise ValueError("a researcher's dashboard is not filtered by category")
    seen: Mapping[Dimension | None, list[metrics.Figures]] = {}
    if k is not None:  # a researcher: the API's answers for the period, every grouping suppressed together
        seen = released if released is not None else metrics.suppress_period(rollups.cells(session, f.start, f.end), k)
        [total] = seen[None]
    categories = sorted({category for _, category in per_category if category}) if k is None else []

    def count(n: int | None) -> int | None:
        return None if n is None or (k is not None and 0 < n < k) else n

    histogram: Counter[str] = Counter()
    for cell, tally in overall.items():
        if cell.metric == metrics.histogram(Metric.ACTION) and cell.bucket != metrics.NO_DURATION:
            histogram[next(label for label, bound in TIME_BINS if cell.bucket <= bound)] += tally.count
    bins = _against([histogram[label] for label, _ in TIME_BINS], total.upload_to_action.count, k)
    time_to_action = Chart(
        "time_to_action", "Time from upload to action", ("up to", "actions"),
        [(label, n) for (label, _), n in zip(TIME_BINS, bins, strict=True)],
        note=f"median {_duration(total.upload_to_action.median_s)}, p90 {_duration(total.upload_to_action.p90_s)}"
             if count(total.upload_to_action.count) else "")

    series: dict[dt.date, tuple[int, int]] = {}
    weekly = (f.end - f.start).days >= DAILY_UP_TO
    for (day, category), (actioned, own) in sorted(per_category.items()):
        if f.category and category != f.category:
            continue
        key = day - dt.timedelta(days=day.weekday()) if weekly else day
        was = series.get(key, (0, 0))
        series[key] = (was[0] + actioned, was[1] + own)
    days = sorted(series)
    day_actions = _against([series[d][0] for d in days], total.actioned, k)
    day_proactive = _against([series[d][1] for d in days], total.proactive, k)
    proactive = Chart(
        "proactive", f"Proactive share of actions, per {'week' if weekly else 'day'}",
        ("week from" if weekly else "day", "proactive share", "actions", "proactive"),
        [(day.isoformat(), None if a is None or p is None or not a else round(p / a, 4), a, p)
         for day, a, p in zip(days, day_actions, day_proactive, strict=True)])

    def actions(name: str, title: str, label: str, groups: list[tuple[str, int, int]], by: Dimension) -> Chart:
        """A grouped chart's rows: the groups with actions, with their counts, or for a researcher the counts of
        the period's answer grouped ``by`` (a group it lacks is hidden: fail closed)."""
        shown = [g for g in groups if g[1]]
        counts: list[tuple[int | None, int | None]] = [(g[1], g[2]) for g in shown]
        if k is not None:
            answer = {s.group: (s.actioned, s.proactive) for s in seen[by]}
            counts = [answer.get(g[0], (None, None)) for g in shown]
        return Chart(name, title, (label, "actions", "proactive", "proactive share"),
                     [(g[0] or "(none)", a, p, None if a is None or p is None or not a else round(p / a, 4))
                      for g, (a, p) in zip(shown, counts, strict=True)])

    executed, within = total.orders_executed, total.orders_executed_within_1h
    later = None if executed is None or within is None else executed - within
    orders = Chart("orders", "Removal orders: deadline compliance", ("outcome", "orders"), [
        ("executed within 1 h", count(within)), ("executed later", count(later)),
        ("not executed (Annex III)", count(total.orders_annex_iii))],
        note=f"{_shown(count(total.orders_received), k)} received")
    appeals = Chart("appeals", "Appeal outcomes", ("outcome", "appeals"), [
        ("filed", count(total.appeals_filed)), ("upheld", count(total.appeals_upheld)),
        ("partly reversed", count(total.appeals_partly_reversed)), ("reversed", count(total.appeals_reversed))])
    charts = [time_to_action, proactive,
              actions("actions", f"Actions by {f.by.value.replace('_', ' ')}", f.by.value, grouped, f.by),
              actions("countries", "Actions by Member State", "country", countries, Dimension.COUNTRY), orders,
              appeals]
    return Dashboard(filters, k, charts, categories, sum(rollups.quarantined(session).values()))


def _groups(counts: dict[tuple[Any, ...], tuple[int, int]], label: Callable[[str], str]
            ) -> list[tuple[str, int, int]]:
    """Actions and proactive ones per group (sorted by its name), the group being ``label`` of the one column's value
    (``rollups.actions_by``): what ``metrics.figures`` gives as ``actioned`` and ``proactive``."""
    out: dict[str, tuple[int, int]] = {}
    for (value,), (actioned, proactive) in counts.items():
        name = label(str(value))
        was = out.get(name, (0, 0))
        out[name] = (was[0] + actioned, was[1] + proactive)
    return [(name, a, p) for name, (a, p) in sorted(out.items())]


def _against(values: list[int], total: int | None, k: int | None) -> list[int | None]:
    """A column that adds up to a total (histogram bins, days of the series) as a researcher sees it: counts from 1
    to ``k`` - 1 hidden, and complements so that the total shown never gives one back (no lone hidden count, hidden
    counts adding up to at least ``k``: ``metrics._hide`` over the one margin); when the total is itself hidden (a
    complement in the period's answers), one count at least is hidden too, or the column would add it up."""
    if k is None:
        return list(values)
    found = {(0, "n", f"{i:06d}"): n for i, n in enumerate(values)}
    hidden = metrics.hide_in_margin(found, k, known=total is not None)
    return [None if (0, "n", f"{i:06d}") in hidden else n for i, n in enumerate(values)]


#: The charts, by name (the CSV addresses).
CHARTS = ("time_to_action", "proactive", "actions", "countries", "orders", "appeals")


def _shown(n: int | None, k: int | None) -> str:
    return f"<{k}" if n is None else f"{n:,}"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 86400:g} days"
