"""Small-cell suppression for researchers (DSA Art. 40): every count from 1 to k - 1 is hidden, and so are the
counts that would give one back by arithmetic on what is shown (complementary suppression, docs/transparency.md).

Checked as a table and as a property: over random answers, no margin has exactly one hidden count, and an exact
solver (fractions, independent of ``metrics.determined``) fixes no hidden count from the margins a reader knows."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.transparency import metrics
from bastion.transparency.metrics import Cell, Dimension, Figures, Metric, Tally

K = 10
DAY = dt.date(2026, 1, 5)


def _cell(metric: Metric, country: str, action: str = "", bucket: int = metrics.NO_DURATION) -> Cell:
    return Cell(DAY, metric.value, "hate_speech", country, "", "video", "en", "user_notice", "human", action, False,
                False, bucket)


def _answer(rows: dict[tuple[Metric, str, str], int], k: int = K) -> tuple[list[Figures], list[Figures], Figures]:
    """(the analyst's groups by country, the researcher's, the researcher's ungrouped answer)."""
    cells: dict[Cell, Tally] = {}
    for (metric, country, action), n in rows.items():
        if n:
            timed = metric in (Metric.ACTION, Metric.APPEAL_DECIDED, Metric.ORDER_EXECUTED)
            cells[_cell(metric, country, action, 600 if timed else metrics.NO_DURATION)] = Tally(n, n)
    full = metrics.figures(cells, Dimension.COUNTRY)
    [total] = metrics.figures(cells, None)
    return full, metrics.suppress_all(full, k), metrics.suppress(total, k)


def test_a_group_with_one_small_cell_hides_the_next_smallest_too() -> None:
    full, seen, _ = _answer({(Metric.ACTION, "DE", "remove"): 500, (Metric.ACTION, "FR", "remove"): 3,
                             (Metric.ACTION, "AT", "remove"): 12, (Metric.ACTION, "PL", "remove"): 40})
    assert [(f.group, f.actioned, f.by_action) for f in seen] == [
        ("AT", None, {"remove": None}), ("DE", 500, {"remove": 500}), ("FR", None, {"remove": None}),
        ("PL", 40, {"remove": 40})]
    assert [f.upload_to_action.count for f in seen] == [None, 500, None, 40]
    assert sum(f.actioned or 0 for f in full) == 555  # the total a reader knows: 555 - 540 = 15, FR and AT together
    assert _answer({(Metric.ACTION, "DE", "remove"): 500, (Metric.ACTION, "FR", "remove"): 3})[2].actioned == 503


def test_within_a_group_one_small_kind_of_action_hides_another() -> None:
    _, [seen], _ = _answer({(Metric.ACTION, "DE", "remove"): 500, (Metric.ACTION, "DE", "label"): 4,
                            (Metric.ACTION, "DE", "age_restrict"): 30, (Metric.APPEAL_DECIDED, "DE", "upheld"): 50,
                            (Metric.APPEAL_DECIDED, "DE", "reversed"): 12,
                            (Metric.APPEAL_DECIDED, "DE", "partly_reversed"): 2})
    assert seen.actioned == 534 and seen.by_action == {"age_restrict": None, "label": None, "remove": 500}
    assert (seen.appeals_upheld, seen.appeals_partly_reversed, seen.appeals_reversed) == (50, None, None)
    assert seen.appeal_to_decision.count == 64


def test_an_order_executed_within_the_hour_hidden_hides_its_share() -> None:
    cells = {_cell(Metric.ORDER_EXECUTED, "DE", "removed", 1800): Tally(3, 3),
             _cell(Metric.ORDER_EXECUTED, "DE", "removed", 7200): Tally(40, 40)}
    [full] = metrics.figures(cells, None)
    [seen] = metrics.suppress_all([full], K)
    assert (full.orders_executed_within_1h, full.order_to_execution.within_1h) == (3, 3 / 43)
    assert (seen.orders_executed, seen.orders_executed_within_1h, seen.order_to_execution.within_1h) == (43, None, None)


def test_no_share_times_a_shown_count_gives_a_small_count_back() -> None:
    """3 of 40 actions within the hour: the share (0.075) times the shown count (40) would give the 3 back, so a
    researcher gets the count and the percentiles, never a share whose numerator the pattern does not cover."""
    cells = {_cell(Metric.ACTION, "DE", "remove", 600): Tally(3, 3),
             _cell(Metric.ACTION, "DE", "remove", 7200): Tally(37, 37)}
    [full] = metrics.figures(cells, None)
    [seen] = metrics.suppress_all([full], K)
    assert (full.upload_to_action.count, full.upload_to_action.within_1h) == (40, 3 / 40)
    assert seen.upload_to_action.count == 40 and seen.upload_to_action.median_s == full.upload_to_action.median_s
    assert (seen.upload_to_action.within_1h, seen.upload_to_action.within_24h) == (None, None)
    assert (seen.proactive_within_24h, seen.before_view_share) == (None, None)


def _values(f: Figures) -> dict[str, int | None]:
    out: dict[str, int | None] = {name: getattr(f, name) for name in metrics.COUNT_FIELDS}
    out |= {f"{d}.{a}": n for d in metrics.DICT_FIELDS for a, n in getattr(f, d).items()}
    out |= {f"{d}.count": getattr(f, d).count for d in metrics.DURATION_FIELDS}
    return out


def _margins(seen: list[Figures], full: list[Figures], total: Figures) -> list[tuple[list[tuple[int, str]], int]]:
    """Every equation a reader knows, as (hidden variables with coefficient +1/-1, known constant): a group's
    actions add up to ``actioned`` (and its timed actions too), its appeals to those decided, its executions timed
    to those executed; across groups, each count to the ungrouped answer's, where that answer shows it."""
    shown = [_values(f) for f in seen]
    real = [_values(f) for f in full]
    found: list[tuple[list[tuple[int, str]], int]] = []

    def equation(terms: list[tuple[int, int, str]], constant: int) -> None:
        """sum(sign * value) == constant; shown values move to the constant."""
        hidden: list[tuple[int, str]] = []
        for sign, g, name in terms:
            if name not in real[g]:
                continue
            if shown[g][name] is None and real[g][name] is not None:
                hidden.append((sign, f"{g}:{name}"))
            else:
                constant -= sign * (shown[g][name] or 0)
        if hidden:
            found.append((hidden, constant))

    for g, f in enumerate(full):
        equation([(1, g, "actioned"), *[(-1, g, f"by_action.{a}") for a in f.by_action]], 0)
        equation([(1, g, "actioned"), (-1, g, "upload_to_action.count")], 0)
        equation([(1, g, "appeal_to_decision.count"), (-1, g, "appeals_upheld"), (-1, g, "appeals_partly_reversed"),
                  (-1, g, "appeals_reversed")], 0)
        equation([(1, g, "orders_executed"), (-1, g, "order_to_execution.count")], 0)
    whole = _values(total)
    for name, n in whole.items():
        if n is not None and len(full) > 1:
            equation([(1, g, name) for g in range(len(full))], n)
    return found


def _fixed(equations: list[tuple[list[tuple[int, str]], int]]) -> set[str]:
    """The variables an exact Gauss-Jordan elimination fixes (a row left with one variable)."""
    names = sorted({v for terms, _ in equations for _, v in terms})
    col = {v: i for i, v in enumerate(names)}
    rows = []
    for terms, _ in equations:
        row = [Fraction(0)] * len(names)
        for sign, v in terms:
            row[col[v]] += sign
        rows.append(row)
    r = 0
    for c in range(len(names)):
        pick = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pick is None:
            continue
        rows[r], rows[pick] = rows[pick], rows[r]
        rows[r] = [x / rows[r][c] for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                rows[i] = [a - rows[i][c] * b for a, b in zip(rows[i], rows[r], strict=True)]
        r += 1
    return {names[next(i for i, x in enumerate(row) if x)] for row in rows[:r] if sum(1 for x in row if x) == 1}


KINDS = [(Metric.ACTION, a) for a in ("remove", "label", "age_restrict")] + \
    [(Metric.APPEAL_DECIDED, a) for a in ("upheld", "partly_reversed", "reversed")] + \
    [(Metric.ORDER_EXECUTED, "removed"), (Metric.NOTICE, ""), (Metric.SUSPENSION, "suspend_temporarily"),
     (Metric.REPORT_SENT, "ncmec"), (Metric.REPORT_DUPLICATE_AVOIDED, "draft")]
answers = st.dictionaries(st.tuples(st.sampled_from(KINDS), st.sampled_from(["DE", "FR", "AT", "PL"])),
                          st.one_of(st.integers(0, 12), st.integers(0, 400)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(answers, st.integers(2, 15))
def test_no_hidden_count_can_be_worked_out_from_what_is_shown(
        drawn: dict[tuple[tuple[Metric, str], str], int], k: int) -> None:
    full, seen, total = _answer({(metric, country, action): n for ((metric, action), country), n in drawn.items()}, k)
    for f, s in zip(full, seen, strict=True):  # every small count hidden
        for name in metrics.COUNT_FIELDS:
            n = getattr(f, name)
            if n is not None and 0 < n < k:
                assert getattr(s, name) is None, name
        for d in metrics.DICT_FIELDS:
            assert all(getattr(s, d)[a] is None for a, n in getattr(f, d).items() if n is not None and 0 < n < k)
    equations = _margins(seen, full, total)
    small = {f"{g}:{name}" for g, f in enumerate(full) for name, n in _values(f).items() if n is not None and 0 < n < k}
    # no small count alone among the hidden counts of a margin
    assert not [terms for terms, _ in equations if len(terms) == 1 and terms[0][1] in small]
    # nor one that arithmetic over several margins gives back (a complement at least k may be: it is no disclosure)
    assert _fixed(equations) & small == set()
