"""Console page of child-safety reports: drafts to review and send, and each report's state at each centre.

Only child-safety specialists and admins see it. The page shows hashes and states, never the material; opening
preserved material goes through ``GET /v1/reports/{id}/files/{content_id}``, which is audited. A refusal (a report
sent already, one that does not validate) is the domain's error, shown by the console's one handler.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.reporting import services as reports
from bastion.reporting.api import reporting
from bastion.reporting.interfaces import Classification
from bastion.web.console import ConsoleRoute, CsrfField, check_csrf, flash, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Specialist = Annotated[SessionUser, Depends(role_required(roles.REPORTS))]
Rep = Annotated[reports.Reporting, Depends(reporting)]


@router.get("/console/reports")
async def reports_page(request: Request, user: Specialist, rep: Rep) -> Response:
    def load() -> list[dict[str, object]]:
        with rep.db.read() as session:
            return reports.report_views(session, reports.list_reports(session))

    return page(request, "reports.html", user, reports=await run_in_threadpool(load),
                 classifications=[c.value for c in Classification],
                 send_blocked=await run_in_threadpool(reports.send_blocker, rep))


@router.post("/console/reports/draft")
async def draft_now(request: Request, user: Specialist, rep: Rep, csrf_token: CsrfField = "") -> Response:
    check_csrf(user, csrf_token)
    drafted = await run_in_threadpool(lambda: reports.draft_pending(rep, actor=user.principal.actor))
    response = RedirectResponse("/console/reports", status_code=303)
    flash(response, request, "ok", f"{len(drafted)} report(s) drafted or extended.")
    return response


@router.post("/console/reports/{report_id}/revise")
async def revise_report(report_id: str, request: Request, user: Specialist, rep: Rep) -> Response:
    """A draft's urgency and each file's industry classification (fields ``urgent_reason`` and ``class:<id>``)."""
    form = await request.form()
    check_csrf(user, str(form.get("csrf_token", "")))
    response = RedirectResponse("/console/reports", status_code=303)
    try:
        classes = {str(k)[len("class:"):]: Classification(str(v)) for k, v in form.items()
                   if str(k).startswith("class:") and v}
    except ValueError:
        flash(response, request, "error", "Not saved: a classification is A1, A2, B1 or B2.")
        return response
    await run_in_threadpool(lambda: reports.revise(rep, report_id, urgent_reason=str(form.get("urgent_reason", "")),
                                                   classifications=classes, actor=user.principal.actor))
    flash(response, request, "ok", f"Report {report_id[:8]} saved.")
    return response


@router.post("/console/reports/{report_id}/send")
async def send_report(report_id: str, request: Request, user: Specialist, rep: Rep,
                      csrf_token: CsrfField = "") -> Response:
    check_csrf(user, csrf_token)
    await run_in_threadpool(reports.send, rep, report_id, actor=user.principal)
    response = RedirectResponse("/console/reports", status_code=303)
    flash(response, request, "ok", f"Report {report_id[:8]} queued for the centres.")
    return response
