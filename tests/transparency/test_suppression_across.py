"""One period asked several ways (DSA Art. 40): a researcher may put the answers grouped by category, by keyword,
by Member State... and not grouped side by side. Suppressed one answer at a time, a count hidden as a complement in
one may be shown in another, and differencing gives a small count back; ``metrics.suppress_period`` decides one
pattern for all of them together.

Checked as a table (the leak, and its end) and as a property: over random cells, an exact solver (fractions,
independent of ``metrics.fixed``), given every count a researcher can see for the period and how each is summed
from the cells (the support known: the strongest reader), fixes no hidden count."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.transparency import metrics
from bastion.transparency.metrics import Cell, Dimension, Figures, Metric, Tally

K = 10


def _cell(metric: Metric, category: str = "", country: str = "DE", *, source: str = "user_notice",
          path: str = "human", action: str = "", language: str = "de", bucket: int = metrics.NO_DURATION) -> Cell:
    return Cell(dt.date.min, metric.value, category, country, "", "video", language, source, path, action,
                source in ("hash_match", "classifier", "reach"), False, bucket)


def _actions(rows: dict[str, int]) -> dict[Cell, Tally]:
    return {_cell(Metric.ACTION, category, action="remove", bucket=600): Tally(n, n) for category, n in rows.items()}


def _shown(groups: list[Figures]) -> dict[str, int | None]:
    return {f.group: f.actioned for f in groups}


def test_answers_suppressed_one_at_a_time_give_a_small_count_back_together() -> None:
    # borderline and disinformation sort one way as categories and the other way as DSA keywords: each answer alone
    # hides the first of the two as csam's complement, so together they show both, and the total gives csam's 3
    cells = _actions({"csam": 3, "borderline": 20, "disinformation": 20})
    by_category = metrics.suppress_all(metrics.figures(cells, Dimension.CATEGORY), K)
    by_keyword = metrics.suppress_all(metrics.figures(cells, Dimension.KEYWORD), K)
    [total] = metrics.suppress_all(metrics.figures(cells), K)
    seen = {**_shown(by_category), **_shown(by_keyword)}
    assert seen["csam"] is None and seen["borderline"] is None and seen["disinformation"] == 20
    assert seen["STATEMENT_CATEGORY_OTHER_VIOLATION_TC"] == 20 and total.actioned == 43  # 43 - 20 - 20 = 3

    together = metrics.suppress_period(cells, K)
    seen = {**_shown(together[Dimension.CATEGORY]), **_shown(together[Dimension.KEYWORD])}
    # each category is its keyword: what either answer hides, the other hides too
    assert set(seen.values()) == {None} and len(seen) == 6
    assert together[None][0].actioned == 43
    assert metrics.suppress_period(cells, K) == together  # the same pattern each time the period is asked


def test_a_count_shown_in_one_grouping_is_hidden_where_it_would_isolate_another() -> None:
    # the trusted flagger's 20 actions are all of France's: shown by Member State, they would give, with the
    # detection sources' total, the users' 3 that the answer by source hides
    cells = {_cell(Metric.ACTION, "hate_speech", "DE", source="hash_match", path="automated", action="remove",
                   bucket=600):
             Tally(500, 500),
             _cell(Metric.ACTION, "hate_speech", "DE", action="remove", bucket=600): Tally(3, 3),
             _cell(Metric.ACTION, "hate_speech", "FR", source="trusted_flagger", action="remove", bucket=600):
             Tally(20, 20)}
    alone = metrics.suppress_all(metrics.figures(cells, Dimension.COUNTRY), K)
    assert _shown(alone) == {"DE": 503, "FR": 20}
    together = metrics.suppress_period(cells, K)
    assert _shown(together[Dimension.SOURCE]) == {"hash_match": 500, "trusted_flagger": None, "user_notice": None}
    assert _shown(together[Dimension.COUNTRY]) == {"DE": None, "FR": None}  # DE: 503 - 500 would give 3
    assert _shown(together[Dimension.PATH]) == {"automated": 500, "human": 23} and together[None][0].actioned == 523


def _reader_rows(cells: dict[Cell, Tally]) -> tuple[dict[tuple[str, str, str, str], dict[int, int]], list[Cell]]:
    """Each count of each answer as a sum over the period's cells (count and items separately), worked out from
    ``metrics.figures`` of each cell alone: what a reader who knows how the figures are computed can write down."""
    order = sorted(cells)
    rows: dict[tuple[str, str, str, str], dict[int, int]] = {}
    for i, cell in enumerate(order):
        for part, unit in ((0, Tally(1, 0)), (1, Tally(0, 1))):
            for by in metrics.GROUPINGS:
                for f in metrics.figures({cell: unit}, by):
                    for name, n in _values(f).items():
                        if n:
                            row = rows.setdefault(("" if by is None else by.value, f.group, *name), {})
                            row[2 * i + part] = row.get(2 * i + part, 0) + n
    return rows, order


def _values(f: Figures) -> dict[tuple[str, str], int | None]:
    out: dict[tuple[str, str], int | None] = {(name, ""): getattr(f, name) for name in metrics.COUNT_FIELDS}
    out |= {(d, a): n for d in metrics.DICT_FIELDS for a, n in getattr(f, d).items()}
    out |= {(d, "count"): getattr(f, d).count for d in metrics.DURATION_FIELDS}
    return out


def _in_span(vector: dict[int, Fraction], basis: list[dict[int, Fraction]]) -> bool:
    """Whether ``vector`` reduces to zero by the echelon rows ``basis`` (each with its pivot first)."""
    v = dict(vector)
    for row in basis:
        pivot = next(iter(row))
        if v.get(pivot):
            factor = v[pivot] / row[pivot]
            for a, x in row.items():
                v[a] = v.get(a, Fraction(0)) - factor * x
    return not any(v.values())


def _echelon(vectors: list[dict[int, Fraction]]) -> list[dict[int, Fraction]]:
    basis: list[dict[int, Fraction]] = []
    for vector in vectors:
        v = dict(vector)
        for row in basis:
            pivot = next(iter(row))
            if v.get(pivot):
                factor = v[pivot] / row[pivot]
                for a, x in row.items():
                    v[a] = v.get(a, Fraction(0)) - factor * x
        v = {a: x for a, x in sorted(v.items()) if x}
        if v:
            basis = [r for r in basis]
            basis.append(v)
            basis.sort(key=lambda r: next(iter(r)))
    return basis


CATEGORIES = ["csam", "borderline", "disinformation", "hate_speech", "terrorist_content"]
ORIGINS = [("hash_match", "automated"), ("classifier", "partly_automated"), ("user_notice", "human"),
           ("trusted_flagger", "human"), ("reach", "human")]
KINDS = [(Metric.ACTION, "remove"), (Metric.ACTION, "label"), (Metric.UPLOAD, ""), (Metric.NOTICE, ""),
         (Metric.REVERSAL, "appeal"), (Metric.AUTOMATED_MISSED, ""), (Metric.APPEAL_DECIDED, "upheld"),
         (Metric.APPEAL_DECIDED, "reversed"), (Metric.ORDER_RECEIVED, "")]
drawn_cells = st.dictionaries(
    st.tuples(st.sampled_from(KINDS), st.sampled_from(CATEGORIES), st.sampled_from(["DE", "FR", "AT"]),
              st.sampled_from(ORIGINS), st.sampled_from(["de", "fr"])),
    st.one_of(st.integers(1, 12), st.integers(1, 300)), min_size=1, max_size=14)


Drawn = tuple[tuple[Metric, str], str, str, tuple[str, str], str]


@settings(max_examples=60, deadline=None)
@given(drawn_cells, st.integers(2, 15))
def test_no_combination_of_a_periods_answers_fixes_a_hidden_count(drawn: dict[Drawn, int], k: int) -> None:
    cells: dict[Cell, Tally] = {}
    for ((metric, action), category, country, (source, path), language), n in drawn.items():
        timed = metric in (Metric.ACTION, Metric.APPEAL_DECIDED)
        cell = _cell(metric, "" if metric == Metric.UPLOAD else category, country, source=source, path=path,
                     action=action, language=language, bucket=600 if timed else metrics.NO_DURATION)
        cells[cell] = Tally(n, 2 * n if metric == Metric.ORDER_RECEIVED else n)
    seen = metrics.suppress_period(cells, k)
    full = {by: metrics.figures(cells, by) for by in metrics.GROUPINGS}
    rows, _ = _reader_rows(cells)
    shown_rows: list[dict[int, Fraction]] = []
    hidden: list[tuple[tuple[str, str, str, str], int]] = []
    for by in metrics.GROUPINGS:
        for f, s in zip(full[by], seen[by], strict=True):
            for name, value in _values(f).items():
                if value is None:
                    continue
                n = value
                key = ("" if by is None else by.value, f.group, *name)
                if _values(s)[name] is None:
                    hidden.append((key, n))
                    assert n > 0  # a zero is never hidden
                else:
                    assert not 0 < n < k, key  # every small count hidden, in every answer
                    shown_rows.append({a: Fraction(x) for a, x in rows.get(key, {}).items()})
    basis = _echelon(shown_rows)
    fixed = [key for key, _ in hidden if _in_span({a: Fraction(x) for a, x in rows[key].items()}, basis)]
    assert fixed == []
