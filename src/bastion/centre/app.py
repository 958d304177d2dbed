"""The Centre's own app (``bastion centre serve``): its database, its intake, its outbox to law enforcement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from bastion import __version__
from bastion.centre.api import router
from bastion.centre.services import Centre, parse_forwarding
from bastion.core.clock import Clock, SystemClock
from bastion.core.config import Settings
from bastion.core.context import AppContext
from bastion.core.db import Database
from bastion.core.http import install_problem_handlers
from bastion.core.outbox.services import OutboxWorker, RetryPolicy, pending_counts
from bastion.core.outbox.webhooks import WebhookSender


def create_centre_app(settings: Settings, *, db: Database | None = None, clock: Clock | None = None,
                      deliver: bool = True, retry: RetryPolicy | None = None) -> FastAPI:
    """Build the Centre. ``deliver`` starts the outbox worker that forwards reports to law enforcement."""
    db = db or Database(settings.centre_database_url)
    clock = clock or SystemClock()
    c = Centre(db, clock, parse_forwarding(settings.centre_forward))
    sender = WebhookSender(settings.centre_forward_secret, clock=clock)
    outbox = OutboxWorker(db, sender, settings.outbox_interval_seconds, clock,
                          policy=retry or RetryPolicy(base_seconds=1.0, cap_seconds=300.0, max_attempts=1000))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if deliver:
            outbox.start()
        yield
        outbox.stop()

    app = FastAPI(title="Bastion EU Centre", version=__version__, lifespan=lifespan, docs_url="/docs",
                  redoc_url=None)
    app.state.ctx = AppContext(settings=settings, db=db, clock=clock)
    app.state.centre = c
    app.state.outbox = outbox
    install_problem_handlers(app)
    app.include_router(router)

    @app.get("/status", tags=["operations"], summary="Liveness and the forwarding backlog (no secrets)")
    def status() -> dict[str, Any]:
        try:
            with db.read() as session:
                counts = {state.value: n for state, n in pending_counts(session).items()}
            database = "ok"
        except Exception:
            counts, database = {}, "unreachable"
        return {"status": "ok" if database == "ok" else "degraded", "version": __version__, "database": database,
                "outbox": counts}

    return app


def centre_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory bastion.centre.app:centre_from_env``."""
    return create_centre_app(Settings.from_env())
