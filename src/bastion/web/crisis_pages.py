"""Console pages of crisis mode: the crises, and one crisis's timeline (activation, rules, uploads blocked per
minute, variants found, notes, threats reported, deactivation). Read-only: crises are run over the API and the CLI,
where every step is an event."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.core.http import RowId
from bastion.feed import crisis
from bastion.feed.api import crises
from bastion.web.console import ConsoleRoute, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.CRISIS_READ))]


@router.get("/console/crises")
async def crises_page(request: Request, user: Reader) -> Response:
    c = crises(request)

    def load() -> list[Any]:
        with c.db.read() as session:
            return crisis.list_crises(session)

    return page(request, "crises.html", user, crises=await run_in_threadpool(load))


@router.get("/console/crises/{crisis_id}")
async def crisis_page(request: Request, crisis_id: RowId, user: Reader) -> Response:
    c = crises(request)

    def load() -> crisis.Timeline:
        with c.db.read() as session:
            return crisis.timeline(session, crisis_id)

    t = await run_in_threadpool(load)
    peak = max((n for _, n in t.blocked_per_minute), default=0)
    return page(request, "crisis.html", user, t=t, c=t.crisis, peak=peak)
