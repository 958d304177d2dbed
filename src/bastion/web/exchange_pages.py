"""The console's exchanges page: each exchange's bank, last fetch, counts and error, and a "fetch now" button.

Exchanges feeding restricted banks (NCMEC's) are listed for child-safety roles only, as on the API. Credentials are
never shown: only the environment variable's name and whether it is set.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.core.context import context
from bastion.exchanges import clients, services
from bastion.web.console import ConsoleRoute, CsrfField, check_csrf, flash, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.EXCHANGES))]
#: A fetch from the console is bounded: the scheduler takes the rest of a long backlog.
CONSOLE_MAX_PAGES = 20


@router.get("/console/exchanges")
def exchanges_page(request: Request, user: Reader) -> Response:
    found = services.list_exchanges(context(request).db, user.principal)
    return page(request, "exchanges.html", user, exchanges=found, available=clients.available(),
                install_hint=clients.INSTALL_HINT)


@router.post("/console/exchanges/{name}/fetch")
async def fetch_now(request: Request, name: str, user: Reader, csrf_token: CsrfField = "") -> Response:
    check_csrf(user, csrf_token)
    ctx = context(request)
    result = await run_in_threadpool(lambda: services.fetch(ctx.db, name, actor=user.principal, clock=ctx.clock,
                                                            max_pages=CONSOLE_MAX_PAGES))
    matcher = getattr(request.app.state, "matcher", None)
    if matcher is not None:
        await run_in_threadpool(matcher.refresh)
    response = RedirectResponse("/console/exchanges", status_code=303)
    more = "" if result.complete else " More is waiting: the scheduler fetches the rest."
    flash(response, request, "ok", f"{name}: {result.records} record(s), {result.added} entr(ies) added, "
                                   f"{result.removed} removed.{more}")
    return response
