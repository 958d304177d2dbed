"""Console page for analysts: the classifiers that score uploads, and how the trained models did on held-out
decisions (the same figures as ``GET /v1/classifiers``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from bastion.classifiers.api import overview
from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.web.console import ConsoleRoute, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

Analyst = Annotated[SessionUser, Depends(role_required(roles.CLASSIFIERS))]


@router.get("/console/classifiers")
def classifiers_page(request: Request, user: Analyst) -> Response:
    return page(request, "classifiers.html", user, **overview(request))
