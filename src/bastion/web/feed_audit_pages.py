"""Console pages of stored feed audit runs: the list, and one run's HTML report (summary, charts, comparison with an
earlier run)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.core.http import RowId
from bastion.feed.audit import report, store
from bastion.feed.audit.api import database
from bastion.web.console import ConsoleRoute, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.FEED_AUDITS))]


@router.get("/console/feed/audits")
async def feed_audits_page(request: Request, user: Reader) -> Response:
    db = database(request)
    runs = await run_in_threadpool(store.latest, db, 100)
    return page(request, "feed_audits.html", user, runs=[{
        "id": r.id, "scenario": r.scenario, "seed": r.seed, "minutes": r.settings["minutes"],
        "recommender": r.settings["recommender"], "gate": r.settings["gate"],
        "compared_to": r.settings.get("compared_to"), "finished_at": r.finished_at.strftime("%Y-%m-%d %H:%M UTC"),
        "created_by": r.created_by} for r in runs])


@router.get("/console/feed/audits/{run_id}")
async def feed_audit_page(request: Request, run_id: RowId, user: Reader) -> Response:
    db = database(request)

    def load() -> str:
        run = store.get(db, run_id)
        earlier_id = run.settings.get("compared_to")
        earlier = None
        if isinstance(earlier_id, int):
            try:
                earlier = store.get(db, earlier_id).results
            except store.AuditRunNotFound:
                earlier = None
        # every value in the fragment is escaped by report.py; it holds no script
        return report.fragment(run.id, run.settings, run.results, earlier)

    body = await run_in_threadpool(load)
    return page(request, "feed_audit.html", user, report=Markup(body))
