"""The route x role matrix, generated from the apps' own routes and ``core/auth/roles.py``.

Every route of the platform, the hub and the Centre has exactly one role gate (``core/http.py: require`` for the API,
``web/console.py: role_required`` for the console), or is declared below as public or signature-authenticated. The
whole matrix is kept in ``tests/data/route_roles.txt``: a new route, or a route whose roles change, fails here until
that file is updated in the same change (``BASTION_UPDATE_ROUTE_ROLES=1 pytest tests/test_route_roles.py``), so a
reviewer sees every widening. Then each gated route is called by every role, and the gate must admit exactly the
roles it names (401 without a token, 403 for the others).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from bastion.centre.app import create_centre_app
from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_token
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.hub.app import create_hub_app
from bastion.web.app import create_app
from bastion.web.hub_pages import with_console
from tests.factories.console import login

#: Open to anyone: the login form, the landing redirect, health.
PUBLIC = {("GET", "/"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/status")}
#: Authenticated by an Ed25519 signature over the body (docs/wire.md), not by a token.
SIGNED = {("POST", "/v1/orders"), ("POST", "/v1/hub/answers"), ("POST", "/v1/factchecks/ratings")}
MATRIX = Path(__file__).parent / "data" / "route_roles.txt"
API_GATE = "may not do this"  # core/http.py: require's 403
PAGE_GATE = "may not open this page"  # web/console.py: role_required's 403


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.12x keeps them as branches)
            yield from _routes(route.original_router.routes, prefix + route.include_context.prefix)


def _gates(dependant: Any) -> list[frozenset[Role]]:
    found: list[frozenset[Role]] = []
    for sub in dependant.dependencies:
        allowed = getattr(sub.call, "allowed_roles", None)
        if allowed is not None:
            found.append(allowed)
        found.extend(_gates(sub))
    return found


def _operations(app: FastAPI) -> Iterator[tuple[str, str, APIRoute, list[frozenset[Role]]]]:
    for path, route in _routes(app.router.routes):
        for method in sorted(route.methods):
            yield method, path, route, _gates(route.dependant)


def _url(path: str, route: APIRoute) -> str:
    for param in route.dependant.path_params:
        value = "1" if param.field_info.annotation is int else "x"
        path = path.replace("{" + param.name + "}", value).replace("{" + param.name + ":path}", value)
    return path


@pytest.fixture
def apps(settings: Settings, db: Database, tmp_path: Path) -> Iterator[dict[str, tuple[FastAPI, Database]]]:
    hub_url, centre_url = f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'centre.db'}"
    migrate(hub_url)
    migrate(centre_url)
    hub_db, centre_db = Database(hub_url), Database(centre_url)
    configured = replace(settings, hub_database_url=hub_url, centre_database_url=centre_url,
                         centre_forward="EUROPOL=https://127.0.0.1:9/europol")
    yield {
        "platform": (create_app(configured, db=db, refresh=False), db),
        "hub": (with_console(create_hub_app(configured, db=hub_db, deliver=False)), hub_db),
        "centre": (create_centre_app(configured, db=centre_db, deliver=False), centre_db),
    }
    hub_db.dispose()
    centre_db.dispose()


def test_every_route_has_one_decision(apps: dict[str, tuple[FastAPI, Database]]) -> None:
    undecided, seen = [], set()
    for name, (app, _db) in apps.items():
        for method, path, _route, gates in _operations(app):
            seen.add((method, path))
            declared = (method, path) in PUBLIC | SIGNED
            if len(gates) + declared != 1:
                undecided.append(f"{name} {method} {path}: {len(gates)} role gate(s), declared open: {declared}")
    assert not undecided, undecided
    assert seen >= (PUBLIC | SIGNED), "a declared route no longer exists"


def _matrix(apps: dict[str, tuple[FastAPI, Database]]) -> str:
    lines = set()
    for name, (app, _db) in apps.items():
        for method, path, _route, gates in _operations(app):
            if (method, path) in SIGNED:
                who = "signed request"
            elif (method, path) in PUBLIC:
                who = "anyone"
            else:
                who = ", ".join(sorted(r.value for r in gates[0]))
            lines.add(f"{name} {method} {path}: {who}")
    return "\n".join(sorted(lines)) + "\n"


def test_the_matrix_is_the_reviewed_one(apps: dict[str, tuple[FastAPI, Database]]) -> None:
    generated = _matrix(apps)
    if os.environ.get("BASTION_UPDATE_ROUTE_ROLES") == "1":
        MATRIX.write_text(generated)
    assert generated == MATRIX.read_text(), "routes or roles changed: review, then update tests/data/route_roles.txt"


@pytest.mark.parametrize("name", ["platform", "hub", "centre"])
def test_each_api_gate_admits_exactly_its_roles(apps: dict[str, tuple[FastAPI, Database]], name: str) -> None:
    app, db = apps[name]
    tokens = {role: create_token(db, role=role, name=role.value, actor="test") for role in Role}
    wrong = []
    with TestClient(app) as client:
        for method, path, route, gates in _operations(app):
            if not gates or not route.include_in_schema:
                continue
            url = _url(path, route)
            if client.request(method, url).status_code != 401:
                wrong.append(f"{method} {path}: no token is not 401")
            for role, token in tokens.items():
                r = client.request(method, url, headers={"Authorization": f"Bearer {token}"})
                refused_by_gate = r.status_code == 403 and API_GATE in r.text
                if refused_by_gate == (role in gates[0]) or r.status_code >= 500:
                    wrong.append(f"{method} {path} as {role.value}: {r.status_code} {r.text[:120]}")
    assert not wrong, wrong


@pytest.mark.parametrize("role", list(Role))
def test_each_console_page_admits_exactly_its_roles(apps: dict[str, tuple[FastAPI, Database]], role: Role) -> None:
    app, db = apps["platform"]
    wrong = []
    with TestClient(app) as client:
        login(client, db, f"user-{role.value}", role)
        for method, path, route, gates in _operations(app):
            if not gates or route.include_in_schema or method != "GET":
                continue
            r = client.get(_url(path, route), follow_redirects=False)
            refused_by_gate = r.status_code == 403 and PAGE_GATE in r.text
            if refused_by_gate == (role in gates[0]) or r.status_code >= 500 or r.status_code == 303:
                wrong.append(f"GET {path} as {role.value}: {r.status_code}")
    assert not wrong, wrong
