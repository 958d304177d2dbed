"""Transparency over HTTP: the figures for a period (``/v1/transparency/metrics``) and the legal reports.

Read from the roll-ups only (``rollups.cells``: one ``GROUP BY`` over the period's days), so an answer never scans
the logs. Analysts and admins see every cell; researchers and regulators (``Role.RESEARCHER``, DSA Art. 40) see the
same figures with small counts suppressed (``metrics.suppress``, ``Settings.transparency_min_cell``). Every query is
written to the audit log: who asked for which period and grouping.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from bastion.core.audit import services as audit
from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import Problem, require
from bastion.transparency import metrics, rollups
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


@router.get("/metrics", summary="Transparency figures for a period, by one dimension (analysts, researchers)",
            response_model=MetricsAnswer, response_model_by_alias=True)
def read_metrics(request: Request, principal: Reader,
                 start: Annotated[dt.date, Query(alias="from", description="first day, YYYY-MM-DD (UTC)")],
                 end: Annotated[dt.date, Query(alias="to", description="last day, YYYY-MM-DD, inclusive")],
                 by: Annotated[Dimension | None, Query(description="group by this dimension")] = None,
                 ) -> MetricsAnswer:
    start, end = period(start, end)
    ctx = request.app.state.ctx
    k = None if principal.role in roles.TRANSPARENCY_FULL else max(1, ctx.settings.transparency_min_cell)
    with ctx.db.read() as session:
        groups = metrics.figures(rollups.cells(session, start, end), by)
        marks = rollups.marks(session)
    if k is not None:
        groups = [metrics.suppress(g, k) for g in groups]
    with ctx.db.write() as session:
        audit.record(ctx.db, session, actor=principal.actor, action=audit.AuditAction.TRANSPARENCY_QUERIED,
                     subject="metrics", details={"from": start.isoformat(), "to": end.isoformat(),
                                                 "by": by.value if by else None, "role": principal.role.value,
                                                 "suppressed_below": k}, clock=ctx.clock)
    return MetricsAnswer(start=start, end=end, by=by, suppressed_below=k, counted_up_to=marks, groups=groups)
