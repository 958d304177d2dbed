"""Property-based fuzzing of the documented API (schemathesis over ``/openapi.json``) on the platform, the hub and the
Centre: whatever a client sends, no answer is a 5xx, and a refused request changes nothing in the database.

Each operation is called with a token of a role its gate admits (``tests/test_route_roles.py`` reads the gates), so
the fuzzing reaches the handlers rather than stopping at 403.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import func, select

from bastion.centre.app import create_centre_app
from bastion.centre.services import register_key
from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_token
from bastion.core.clock import FrozenClock, SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.core.signing import SigningKey
from bastion.hub import services as hub
from bastion.hub.app import create_hub_app
from bastion.models import metadata
from bastion.orders.wire import AuthorityType
from bastion.web.app import create_app
from tests.test_route_roles import _operations

#: Written on refusals too, by design: the audit trail of who tried what, and the counters that throttle them.
AUDIT_TABLES = {"audit_log", "login_attempts", "match_lookups", "rate_limits"}


class Target:
    """One app under fuzzing: its database, a token per role, and which role each operation admits."""

    def __init__(self, app: FastAPI, db: Database) -> None:
        self.app, self.db = app, db
        self.tokens = {role: create_token(db, role=role, name=role.value, actor="fuzz") for role in Role}
        self.roles = {(method, path): sorted(gates[0], key=lambda r: r != Role.ADMIN)[0]
                      for method, path, _route, gates in _operations(app) if gates}

    def headers(self, method: str, path: str) -> dict[str, str]:
        role = self.roles.get((method.upper(), path))
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def counts(self) -> dict[str, int]:
        with self.db.read() as session:
            return {t.name: session.scalar(select(func.count()).select_from(t)) or 0
                    for t in metadata.sorted_tables if t.name not in AUDIT_TABLES}


class SignedReports:
    """The Centre refuses unsigned reports (Art. 13(b)): this signs each POST to it, as a provider's sender does,
    with a key registered for the fuzzing platform token, so the fuzzing reaches the handler past the signature."""

    def __init__(self, app: FastAPI, db: Database) -> None:
        self.app, self.key = app, SigningKey.generate()
        register_key(db, Role.PLATFORM.value, self.key.public_text, FrozenClock(dt.datetime.now(dt.UTC)))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/centre/reports":
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        signed = self.key.headers(body, dt.datetime.now(dt.UTC))
        headers = [*scope["headers"], *((k.lower().encode(), v.encode()) for k, v in signed.items())]
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


def _target(name: str, settings_: Settings, db: Database, tmp_path: Path) -> Target:
    if name == "platform":
        return Target(create_app(settings_, db=db, refresh=False), db)
    url = f"sqlite:///{tmp_path / (name + '.db')}"
    migrate(url)
    other = Database(url)
    configured = replace(settings_, hub_database_url=url, centre_database_url=url,
                         centre_forward="EUROPOL=https://127.0.0.1:9/europol")
    if name == "hub":
        target = Target(create_hub_app(configured, db=other, deliver=False), other)
        # an authority's token acts for a registered authority, so its requests reach the handlers
        target.tokens[Role.AUTHORITY] = hub.register_authority(
            other, name="OCLCTIC", member_state="FR", authority_type=AuthorityType.LAW_ENFORCEMENT,
            public_keys=[SigningKey.generate().public_text], clock=SystemClock(), actor="fuzz").token
        return target
    target = Target(create_centre_app(configured, db=other, deliver=False), other)
    target.app = SignedReports(target.app, other)  # type: ignore[assignment]
    return target


@pytest.fixture(params=["platform", "hub", "centre"])
def target(request: pytest.FixtureRequest, settings: Settings, db: Database, tmp_path: Path) -> Iterator[Target]:
    yield _target(request.param, settings, db, tmp_path)


def _fuzz(target: Target, operation: schemathesis.APIOperation, seen: Counter[int]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def run(case: schemathesis.Case) -> None:
        before = target.counts()
        response = case.call_and_validate(headers=target.headers(case.method, case.path),
                                          checks=[not_a_server_error])
        seen[response.status_code] += 1
        if response.status_code >= 400:
            assert target.counts() == before, f"{case.method} {case.path}: refused ({response.status_code}), but wrote"

    run()


def test_no_5xx_and_refusals_change_nothing(target: Target) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    seen: Counter[int] = Counter()
    for operation in operations:
        _fuzz(target, operation, seen)
    print(sorted(seen.items()))
    reached = sum(n for status, n in seen.items() if status not in (401, 403))
    assert reached > sum(seen.values()) // 2, f"the fuzzing mostly stopped at the gates: {seen}"
