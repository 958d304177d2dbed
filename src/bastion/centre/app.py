"""The Centre's own app (``bastion centre serve``): its database, its intake, its outbox to law enforcement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from bastion import __version__
from bastion.centre.api import router
from bastion.centre.services import Centre, keep_urgent_first, parse_forwarding
from bastion.core.clock import Clock, SystemClock
from bastion.core.config import Settings
from bastion.core.context import AppContext
from bastion.core.db import Database
from bastion.core.docs import install_docs
from bastion.core.http import SecurityHeaders, install_problem_handlers
from bastion.core.outbox.services import DeliveryReport, OutboxWorker, RetryPolicy, outbox_status
from bastion.core.outbox.webhooks import WebhookSender
from bastion.core.production import Service, gaps, warn
from bastion.core.uploads import BodyLimit

#: The largest provider report the Centre reads: 10,000 files' hashes with room to spare; more is refused (413).
MAX_REPORT_BYTES = 8 * 1024 * 1024


class CentreOutbox(OutboxWorker):
    """The Centre's deliverer: each round first puts urgent forwards that are due again ahead of the backlog."""

    def run_once(self) -> DeliveryReport:
        keep_urgent_first(self.db, self.clock)
        return super().run_once()


def create_centre_app(settings: Settings, *, db: Database | None = None, clock: Clock | None = None,
                      deliver: bool = True, retry: RetryPolicy | None = None) -> FastAPI:
    """Build the Centre. ``deliver`` starts the outbox worker that forwards reports to law enforcement."""
    db = db or Database(settings.centre_database_url)
    clock = clock or SystemClock()
    c = Centre(db, clock, parse_forwarding(settings.centre_forward))
    sender = WebhookSender(settings.centre_forward_secret, clock=clock)
    outbox = CentreOutbox(db, sender, settings.outbox_interval_seconds, clock,
                          policy=retry or RetryPolicy(base_seconds=1.0, cap_seconds=300.0, max_attempts=1000))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        warn(settings, Service.CENTRE)  # once per start, in the server's log
        if deliver:
            outbox.start()
        yield
        outbox.stop()

    app = FastAPI(title="Bastion EU Centre", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    app.state.ctx = AppContext(settings=settings, db=db, clock=clock)
    app.state.centre = c
    app.state.outbox = outbox
    install_problem_handlers(app)
    install_docs(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=MAX_REPORT_BYTES)
    app.include_router(router)

    missing_settings = [gap.setting for gap in gaps(settings, Service.CENTRE)]  # names only: effects are logged

    @app.get("/status", tags=["operations"], summary="Liveness and the forwarding backlog (no secrets)")
    def status() -> dict[str, Any]:
        return {"version": __version__, **outbox_status(db), "missing_settings": missing_settings}

    return app


def centre_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory bastion.centre.app:centre_from_env``."""
    return create_centre_app(Settings.from_env())
