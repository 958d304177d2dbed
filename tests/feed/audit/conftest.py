"""A Bastion on loopback holding a small synthetic catalogue, and the feed gate to audit against.

The gate is the app's own ``POST /v1/feed/filter`` when the app serves it; until the gate is merged it is a stub on
loopback that implements the documented contract (docs/feed-audit.md) from the app's public API: an item removed is
``removed``, one kept out of recommendations is ``not_recommended``, one the app does not know is ``unknown``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.feed.audit import catalogue
from bastion.feed.audit.gates import HttpGate, Tokens, await_decisions, register_catalogue, serves_gate
from bastion.web.app import create_app
from tests.factories.live import loopback, serve

SEED = 4
CATALOGUE = catalogue.build(SEED, 80)


@dataclass(frozen=True)
class Loopback:
    base: str  # the Bastion
    gate: str  # where /v1/feed/filter is served: the Bastion itself, or the stub in front of it
    tokens: Tokens
    real_gate: bool


def _stub(base: str, token: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            eligible, excluded = [], []
            for content_id in body["candidates"]:
                r = httpx.get(f"{base}/v1/content/{content_id}", headers={"Authorization": f"Bearer {token}"})
                record = r.json() if r.status_code == 200 else None
                reasons = (["unknown"] if record is None else ["removed"] if record["status"] == "removed"
                           else ["not_recommended"] if "not_recommended" in record["restrictions"] else [])
                if reasons:
                    excluded.append({"content_id": content_id, "reasons": reasons})
                else:
                    eligible.append(content_id)
            data = json.dumps({"eligible": eligible, "excluded": excluded}).encode()
            self.send_response(200 if self.path == "/v1/feed/filter" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def loopback_bastion(settings: Settings, db: Database, make_token: Callable[[Role], str]) -> Iterator[Loopback]:
    app = create_app(settings, db=db)
    tokens = Tokens(platform=make_token(Role.PLATFORM), moderator=make_token(Role.MODERATOR))
    with serve(app) as base:
        register_catalogue(base, tokens, CATALOGUE)
        real_gate = serves_gate(base, tokens.platform)
        if real_gate:
            await_decisions(HttpGate(base, tokens.platform), CATALOGUE)
            yield Loopback(base, base, tokens, True)
        else:
            with loopback(_stub(base, tokens.platform)) as stub:
                yield Loopback(base, stub, tokens, False)
