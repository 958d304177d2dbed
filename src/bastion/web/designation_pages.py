"""Console page of designated entities: the list, a change of category proposed with its preview (open cases to
move, past decisions it would alter), and the confirmation that applies it. Queue readers see it; senior moderators
and admins propose, confirm and reject. Refusals are the domain's errors, shown by the console's one handler."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.core.http import RowId
from bastion.designations import services
from bastion.designations.api import moderation
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import Category
from bastion.web.console import ConsoleRoute, CsrfField, check_csrf, flash, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.DESIGNATIONS_READ))]
Editor = Annotated[SessionUser, Depends(role_required(roles.DESIGNATIONS_EDIT))]
Mod = Annotated[Moderation, Depends(moderation)]
HOME = "/console/designations"


@router.get(HOME)
async def designations_page(request: Request, user: Reader, mod: Mod) -> Response:
    def load() -> list[dict[str, Any]]:
        return [services.get_entity(mod, e["id"]) for e in services.list_entities(mod)]

    return page(request, "designations.html", user, entities=await run_in_threadpool(load),
                categories=[c.value for c in Category if c is not Category.CSAM],
                may_edit=user.principal.role in roles.DESIGNATIONS_EDIT)


@router.post(HOME + "/{entity_id}/changes")
async def propose(entity_id: RowId, request: Request, user: Editor, mod: Mod, csrf_token: CsrfField = "",
                  category: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    check_csrf(user, csrf_token)
    change = await run_in_threadpool(lambda: services.propose_change(mod, entity_id, category, note=note,
                                                                     actor=user.principal))
    response = RedirectResponse(f"{HOME}#change-{change['id']}", status_code=303)
    flash(response, request, "ok", f"Change {change['id']} proposed: nothing is applied until it is confirmed.")
    return response


@router.post(HOME + "/changes/{change_id}/confirm")
async def confirm(change_id: RowId, request: Request, user: Editor, mod: Mod, csrf_token: CsrfField = "") -> Response:
    check_csrf(user, csrf_token)
    change = await run_in_threadpool(lambda: services.confirm_change(mod, change_id, actor=user.principal))
    response = RedirectResponse(HOME, status_code=303)
    flash(response, request, "ok", services.applied(change).capitalize() + ".")
    return response


@router.post(HOME + "/changes/{change_id}/reject")
async def reject(change_id: RowId, request: Request, user: Editor, mod: Mod, csrf_token: CsrfField = "") -> Response:
    check_csrf(user, csrf_token)
    await run_in_threadpool(lambda: services.reject_change(mod, change_id, actor=user.principal))
    response = RedirectResponse(HOME, status_code=303)
    flash(response, request, "ok", f"Change {change_id} rejected: nothing applied.")
    return response
