"""The hub's own app (``bastion hub serve``): its database, its signing key, its outbox to contact points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from bastion import __version__
from bastion.core.clock import Clock, SystemClock
from bastion.core.config import Settings
from bastion.core.context import AppContext
from bastion.core.db import Database
from bastion.core.docs import install_docs
from bastion.core.http import SecurityHeaders, install_problem_handlers
from bastion.core.outbox.services import OutboxWorker, RetryPolicy, outbox_status
from bastion.core.outbox.webhooks import WebhookSender
from bastion.core.production import Service, gaps, warn
from bastion.core.uploads import BodyLimit
from bastion.core.worker import Worker
from bastion.hub.api import router
from bastion.hub.services import HubSender
from bastion.orders.services import forget_nonces, tco_signers

#: The largest message the hub accepts: an order of 100 URLs with every field is well under this.
MAX_BODY_BYTES = 1024 * 1024


def create_hub_app(settings: Settings, *, db: Database | None = None, clock: Clock | None = None,
                   deliver: bool = True, retry: RetryPolicy | None = None) -> FastAPI:
    """Build the hub. ``deliver`` starts the outbox worker that carries orders to contact points."""
    db = db or Database(settings.hub_database_url)
    clock = clock or SystemClock()
    signed = WebhookSender(b"", signers=tco_signers(settings.hub_signing_key), clock=clock)
    policy = retry or RetryPolicy(base_seconds=1.0, cap_seconds=60.0, max_attempts=1000)
    outbox = OutboxWorker(db, HubSender(db, signed, clock, policy), settings.outbox_interval_seconds, clock,
                          policy=policy)

    # Spent nonces are only needed while a signature could still pass the time window.
    sweeper = Worker(lambda: forget_nonces(db, clock=clock), 60.0, "bastion-hub-nonces")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        warn(settings, Service.HUB)  # once per start, in the server's log
        if deliver:
            outbox.start()
            sweeper.start()
        yield
        sweeper.stop()
        outbox.stop()

    app = FastAPI(title="Bastion hub", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ctx = AppContext(settings=settings, db=db, clock=clock)
    app.state.outbox = outbox
    install_problem_handlers(app)
    install_docs(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.include_router(router)

    missing_settings = [gap.setting for gap in gaps(settings, Service.HUB)]  # names only: effects are logged

    @app.get("/status", tags=["operations"], summary="Liveness and the outbox's backlog (no secrets)")
    def status() -> dict[str, Any]:
        return {"version": __version__, **outbox_status(db), "missing_settings": missing_settings}

    return app


def hub_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory bastion.hub.app:hub_from_env``."""
    return create_hub_app(Settings.from_env())
