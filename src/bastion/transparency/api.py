"""Transparency over HTTP: the figures for a period (``/v1/transparency/metrics``) and the legal reports.

Read from the roll-ups only (``rollups.cells``: one ``GROUP BY`` over the period's days), so an answer never scans
the logs. Analysts and admins see every cell; researchers and regulators (``Role.RESEARCHER``, DSA Art. 40) see the
same figures with small counts suppressed, and the counts that would give them back, in this answer or with any
other grouping of the same period (``metrics.suppress_period``, ``Settings.transparency_min_cell``), for one
closed calendar month at a time (so no two answers overlap or change). Every query
is written to the audit log: who asked for which period and grouping.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from bastion.core.audit import services as audit
from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import Problem, require
from bastion.transparency import metrics, releases, reports, rollups
from bastion.transparency.metrics import Dimension, Figures

router = APIRouter(prefix="/v1/transparency", tags=["transparency"])

Reader = Annotated[Principal, Depends(require(roles.TRANSPARENCY))]
#: The longest period one query may cover (days): ten years and a little.
MAX_DAYS = 3700


class MetricsAnswer(BaseModel):
    """The figures of a period, per group of one dimension (or all together)."""

    start: dt.date = Field(serialization_alias="from", description="first day counted (UTC)")
    end: dt.date = Field(serialization_alias="to", description="last day counted (UTC), inclusive")
    by: Dimension | None
    suppressed_below: int | None = Field(description="counts from 1 to this minus 1 are hidden (researchers); "
                                                     "null: nothing suppressed")
    counted_up_to: dict[str, int] = Field(description="each event log's last event id counted in the roll-ups")
    groups: list[Figures]


def period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """A period a query may ask for: ``from`` not after ``to``, at most ``MAX_DAYS`` days."""
    if end < start:
        raise Problem(422, "Invalid request", "from must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise Problem(422, "Invalid request", f"a period is at most {MAX_DAYS} days")
    return start, end


def whole_months(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The calendar months the period touches, whole."""
    return start.replace(day=1), releases.month_end(end.replace(day=1))


def researchers_month(session: Session, end: dt.date, k: int, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The one calendar month a researcher's dashboard shows for a period ending on ``end`` (a day to come counts
    as yesterday): that day's month if it is readable, else the latest readable month before it."""
    first = min(end, now.date() - dt.timedelta(days=1)).replace(day=1)
    last = releases.month_end(first)
    for _ in range(_MONTHS_BACK):
        if _readable(session, first, k, now):
            return first, last
        last = first - dt.timedelta(days=1)
        first = last.replace(day=1)
    raise Problem(503, "Counting in progress", "no month is counted yet for researchers; try again in a few minutes")


#: How far back a researcher's dashboard looks for a closed month before saying the counting is behind.
_MONTHS_BACK = 3


def _readable(session: Session, month: dt.date, k: int, now: dt.datetime) -> bool:
    """A month a researcher may read: released already, or closed (over and counted) and so releasable now."""
    return releases.is_kept(session, month, k) or releases.closed(session, releases.month_end(month), now)


def _researchers_read_one_closed_month(session: Session, start: dt.date, end: dt.date, k: int,
                                       now: dt.datetime) -> None:
    """A researcher's period is one calendar month that is over and counted. Any two answers are then of months
    that share no day, each fixed once given (its release): no subtraction of two answers (overlapping periods, or
    one month asked while it is still being counted) can give a hidden count back. Longer periods are the months'
    sums."""
    if (start, end) != whole_months(start, start):
        raise Problem(422, "Invalid request", "a researcher's period is one calendar month: from the 1st of a month "
                      "to its last day (longer periods are the sums of months; two overlapping answers could be "
                      "subtracted)")
    if not _readable(session, start, k, now):
        raise Problem(422, "Invalid request", "a researcher reads a month once it is over and every event of it is "
                      "counted (its figures would otherwise change between two answers)")


@router.get("/metrics", summary="Transparency figures for a period, by one dimension (analysts, researchers)",
            response_model=MetricsAnswer, response_model_by_alias=True)
def read_metrics(request: Request, principal: Reader,
                 start: Annotated[dt.date, Query(alias="from", description="first day, YYYY-MM-DD (UTC)")],
                 end: Annotated[dt.date, Query(alias="to", description="last day, YYYY-MM-DD, inclusive")],
                 by: Annotated[Dimension | None, Query(description="group by this dimension")] = None,
                 ) -> MetricsAnswer:
    """Analysts and admins: any period of at most 3,700 days. Researchers: one calendar month (the 1st to its last
    day) once it is over and every event of it is counted, with small counts hidden (``suppressed_below``); any
    other period is a 422 that says why."""
    start, end = period(start, end)
    ctx = request.app.state.ctx
    k = None if principal.role in roles.TRANSPARENCY_FULL else max(1, ctx.settings.transparency_min_cell)
    with ctx.db.read() as session:
        if k is not None:
            _researchers_read_one_closed_month(session, start, end, k, ctx.clock.now())
        else:
            groups = metrics.figures(rollups.grouped(session, start, end, by), by)
        marks = rollups.marks(session)
    if k is not None:  # the month's release: every grouping suppressed together, cut once (``releases``)
        groups = releases.release(ctx.db, start, k, ctx.clock).answers[by]
    audit_query(request, principal, "metrics", {"from": start.isoformat(), "to": end.isoformat(),
                                           "by": by.value if by else None, "suppressed_below": k})
    return MetricsAnswer(start=start, end=end, by=by, suppressed_below=k, counted_up_to=marks, groups=groups)


def audit_query(request: Request, principal: Principal, subject: str, details: dict[str, object]) -> None:
    """Every transparency read, the API's and the console dashboard's, is written here (``transparency.queried``)."""
    ctx = request.app.state.ctx
    with ctx.db.write() as session:
        audit.record(ctx.db, session, actor=principal.actor, action=audit.AuditAction.TRANSPARENCY_QUERIED,
                     subject=subject, details={**details, "role": principal.role.value}, clock=ctx.clock)


class ReportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    MD = "md"


class DsaReport(BaseModel):
    """The DSA transparency report: each part's rows (header first) under its template's file name."""

    parts: dict[str, list[list[str]]]


Publisher = Annotated[Principal, Depends(require(roles.TRANSPARENCY_FULL))]


@router.get("/reports/dsa", summary="The DSA transparency report for a period: the eleven templates filled "
                                    "(json; csv: a ZIP of the eleven files; md) (analysts)",
            response_model=DsaReport,
            responses={200: {"content": {"application/zip": {}, "text/markdown": {}}}})
def dsa_report(request: Request, principal: Publisher,
               start: Annotated[dt.date, Query(alias="from", description="first day, YYYY-MM-DD (UTC)")],
               end: Annotated[dt.date, Query(alias="to", description="last day, YYYY-MM-DD, inclusive")],
               fmt: Annotated[ReportFormat, Query(alias="format", description="json, csv (ZIP) or md")]
               = ReportFormat.JSON) -> DsaReport | Response:
    """Published reports carry every figure, so only analysts and admins produce them (researchers read metrics)."""
    start, end = period(start, end)
    ctx = request.app.state.ctx
    config = reports.ReportConfig.load(ctx.settings.transparency_report_path)
    with ctx.db.read() as session:
        report = reports.dsa_report(rollups.cells_for(session, start, end), start, end, config,
                                    today=ctx.clock.now().date())
    audit_query(request, principal, "report:dsa", {"from": start.isoformat(), "to": end.isoformat(),
                                              "format": fmt.value})
    name = f"dsa-transparency-{start.isoformat()}-{end.isoformat()}"
    if fmt is ReportFormat.CSV:
        return Response(reports.archive(report), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}.zip"'})
    if fmt is ReportFormat.MD:
        return Response(reports.markdown(report), media_type="text/markdown; charset=utf-8")
    return DsaReport(parts=report)


@router.get("/reports/tco", summary="TCO Art. 7: the provider's figures for a calendar year (analysts)",
            response_model=reports.TcoProviderReport)
def tco_report(request: Request, principal: Publisher,
               year: Annotated[int, Query(ge=2021, le=2999, description="the calendar year")]
               ) -> reports.TcoProviderReport:
    ctx = request.app.state.ctx
    with ctx.db.read() as session:
        cells = rollups.cells(session, dt.date(year, 1, 1), dt.date(year, 12, 31), ("category",))
    audit_query(request, principal, "report:tco", {"year": year})
    return reports.tco_provider(cells, year)
