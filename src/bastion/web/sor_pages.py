"""Console page of statements of reasons and the DSA Transparency Database: how many stand where, and each refused
statement with the database's errors (the same as ``GET /v1/transparency/statements``), for admins and analysts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.core.context import AppContext, context
from bastion.transparency import submission
from bastion.transparency.sor_states import SubmissionState
from bastion.web.console import ConsoleRoute, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.SOR_SUBMISSIONS))]
PAGE = 100


@router.get("/console/transparency/statements")
async def statements_page(request: Request, user: Reader, ctx: Annotated[AppContext, Depends(context)],
                          state: Annotated[str, Query(max_length=16)] = SubmissionState.REJECTED.value,
                          after: Annotated[str, Query(max_length=100)] = "") -> Response:
    chosen = SubmissionState(state) if state in {s.value for s in SubmissionState} else SubmissionState.REJECTED

    def load() -> tuple[dict[str, int], list[submission.SubmissionView]]:
        with ctx.db.read() as session:
            return submission.counts(session), submission.listing(session, state=chosen, after=after, limit=PAGE)

    counts, items = await run_in_threadpool(load)
    return page(request, "sor_statements.html", user, counts=counts, items=items, state=chosen.value,
                submitting=ctx.settings.submits_statements,
                next_after=items[-1].puid if len(items) == PAGE else None)
