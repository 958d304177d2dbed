"""The analyst dashboard (``/console/transparency``, issue 10): the transparency figures of a period as charts, with
filters, and every chart's data as CSV (``/console/transparency/data/<chart>.csv``, the same rows it draws).

Read from the roll-ups only (``transparency/dashboard.py``). Researchers and regulators (DSA Art. 40) see the same
page with small counts suppressed (drawn ``<k``) and nothing that links to content or accounts. Every page view and
download is audited through the API's one path (``transparency.api.audit_query``). Charts are inline SVG drawn by
the server: no script, no style attribute, nothing fetched from outside (the console's CSP).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.core.context import context
from bastion.core.http import Problem
from bastion.transparency import dashboard, releases, rollups
from bastion.transparency.api import audit_query, period, researchers_month
from bastion.transparency.dashboard import Chart, Dashboard, Filters
from bastion.transparency.metrics import Dimension
from bastion.web.console import ConsoleRoute, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.TRANSPARENCY))]
#: The default period: the last 30 days, today included.
DEFAULT_DAYS = 30
BAR_WIDTH = 420
LABEL_WIDTH = 190
ROW = 18
COLUMN_AREA = 620
COLUMN_HEIGHT = 140


def _filters(request: Request) -> Filters:
    """The query's filters; a bad one is the error page (422), never a guess."""
    q = request.query_params
    today = context(request).clock.now().date()
    try:
        end = dt.date.fromisoformat(q["to"]) if q.get("to") else today
        start = dt.date.fromisoformat(q["from"]) if q.get("from") else end - dt.timedelta(days=DEFAULT_DAYS - 1)
        by = Dimension(q.get("by") or Dimension.CATEGORY.value)
    except (ValueError, OverflowError):  # OverflowError: a "to" so early that the default "from" is before year 1
        raise Problem(422, "Invalid request", "from and to are dates (YYYY-MM-DD); by is one of "
                      + ", ".join(d.value for d in dashboard.GROUPINGS)) from None
    if by not in dashboard.GROUPINGS:
        raise Problem(422, "Invalid request", f"cannot group by {by.value}")
    category = (q.get("category") or "")[:100]
    start, end = period(start, end)
    return Filters(start, end, by, category)


def _read(request: Request, user: SessionUser, subject: str) -> Dashboard:
    ctx = context(request)
    filters = _filters(request)
    k = None if user.principal.role in roles.TRANSPARENCY_FULL else max(1, ctx.settings.transparency_min_cell)
    if k is not None and filters.category:  # the period's suppression covers its groupings, not a category's table
        raise Problem(422, "Invalid request", "a researcher's dashboard shows the whole period, not one category")
    if k is not None:  # a researcher sees one closed calendar month, as released (the API answers no other)
        with ctx.db.read() as session:
            start, end = researchers_month(session, filters.end, k, ctx.clock.now())
            quarantined = sum(rollups.quarantined(session).values())
        filters = dataclasses.replace(filters, start=start, end=end)
        board = Dashboard(filters, k, releases.release(ctx.db, start, k, ctx.clock).charts[filters.by], [],
                          quarantined)
    else:
        with ctx.db.read() as session:
            board = dashboard.build(session, filters, k)
    audit_query(request, user.principal, subject, {
        "from": filters.start.isoformat(), "to": filters.end.isoformat(), "by": filters.by.value,
        "category": filters.category or None, "suppressed_below": k})
    return board


def _query(f: Filters) -> str:
    """The filters as a query string (the CSV links: the same data as the page)."""
    query = {"from": f.start.isoformat(), "to": f.end.isoformat(), "by": f.by.value}
    return urlencode({**query, "category": f.category} if f.category else query)


def _text(value: object, k: int | None) -> str:
    if value is None:
        return f"<{k}" if k is not None else "—"
    if isinstance(value, float):
        return f"{value:.1%}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _bars(chart: Chart, k: int | None) -> dict[str, Any]:
    """Horizontal bars of the chart's ``bar`` column (a share: full width is 100 %)."""
    values = [row[chart.bar] for row in chart.rows]
    share = any(isinstance(v, float) for v in values)
    top = 1.0 if share else max([v for v in values if isinstance(v, int | float)] or [0]) or 1
    bars = []
    for i, row in enumerate(chart.rows):
        value = row[chart.bar]
        bars.append({"label": str(row[0]), "value": "" if value is None else str(value), "text": _text(value, k),
                     "y": i * ROW, "suppressed": value is None,
                     "width": 0 if not isinstance(value, int | float) else max(1 if value else 0,
                                                                              round(value / top * BAR_WIDTH))})
    return {"kind": "bars", "bars": bars, "height": max(ROW, len(bars) * ROW), "x": LABEL_WIDTH,
            "width": LABEL_WIDTH + BAR_WIDTH + 80}


def _columns(chart: Chart, k: int | None) -> dict[str, Any]:
    """Vertical columns over time (the proactive share: full height is 100 %)."""
    step = COLUMN_AREA / max(1, len(chart.rows))
    columns = []
    for i, row in enumerate(chart.rows):
        value = row[chart.bar]
        height = round(value * COLUMN_HEIGHT) if isinstance(value, float) else 0
        columns.append({"label": str(row[0]), "value": "" if value is None else str(value),
                        "text": _text(value, k), "x": round(i * step, 1), "w": max(1.0, round(step * 0.8, 1)),
                        "y": COLUMN_HEIGHT - height, "h": height, "suppressed": value is None})
    return {"kind": "columns", "columns": columns, "height": COLUMN_HEIGHT + 20, "width": COLUMN_AREA + 50,
            "top": COLUMN_HEIGHT}


@router.get("/console/transparency")
def transparency_page(request: Request, user: Reader) -> Response:
    board = _read(request, user, "dashboard")
    k = board.suppressed_below
    charts = [{"chart": c, "svg": _columns(c, k) if c.name == "proactive" else _bars(c, k),
               "rows": [[_text(v, k) for v in row] for row in c.rows]} for c in board.charts]
    return page(request, "transparency.html", user, board=board, charts=charts, query=_query(board.filters),
                groupings=[d.value for d in dashboard.GROUPINGS], k=k)


@router.get("/console/transparency/data/{chart}.csv")
def chart_csv(request: Request, chart: str, user: Reader) -> Response:
    """The chart's rows as drawn: counts as numbers, shares as fractions, a suppressed value empty."""
    if chart not in dashboard.CHARTS:
        raise Problem(404, "Not found", "There is no such chart.")
    board = _read(request, user, f"dashboard:{chart}.csv")
    [found] = [c for c in board.charts if c.name == chart]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(found.columns)
    writer.writerows(["" if v is None else v for v in row] for row in found.rows)
    f = board.filters
    name = f"{chart}-{f.start.isoformat()}-{f.end.isoformat()}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
