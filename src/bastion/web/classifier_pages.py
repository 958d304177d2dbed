"""Console page for analysts: the classifiers that score uploads, and how the trained models did on held-out
decisions (the same figures as ``GET /v1/classifiers``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from bastion.classifiers.api import overview
from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.web.console import _ConsoleRoute, _page, _role

router = APIRouter(include_in_schema=False, route_class=_ConsoleRoute)

Analyst = Annotated[SessionUser, Depends(_role(roles.CLASSIFIERS))]


@router.get("/console/classifiers")
def classifiers_page(request: Request, user: Analyst) -> Response:
    return _page(request, "classifiers.html", user, **overview(request))
