"""The Centre's own app (``bastion centre serve``): its database, its intake, its outbox to law enforcement."""

from __future__ import annotations

from fastapi import FastAPI

from bastion.centre.api import router
from bastion.centre.services import Centre, CentreMessage, parse_forwarding
from bastion.core.clock import Clock, SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.services import OutboxWorker, RetryPolicy, Routes
from bastion.core.outbox.webhooks import WebhookSender
from bastion.core.production import Service
from bastion.core.service import ServiceSpec, create_service, outbox_section

#: The largest provider report the Centre reads: 10,000 files' hashes with room to spare; more is refused (413).
MAX_REPORT_BYTES = 8 * 1024 * 1024


def create_centre_app(settings: Settings, *, db: Database | None = None, clock: Clock | None = None,
                      deliver: bool = True, retry: RetryPolicy | None = None) -> FastAPI:
    """Build the Centre. ``deliver`` starts the outbox worker that forwards reports to law enforcement; urgent
    reports go first by their outbox priority."""
    db = db or Database(settings.centre_database_url)
    clock = clock or SystemClock()
    c = Centre(db, clock, parse_forwarding(settings.centre_forward))
    routes = Routes({CentreMessage.FORWARD: WebhookSender(settings.centre_forward_secret, clock=clock)})
    outbox = OutboxWorker(db, routes, settings.outbox_interval_seconds, clock,
                          policy=retry or RetryPolicy(base_seconds=1.0, cap_seconds=300.0, max_attempts=1000))
    return create_service(ServiceSpec(
        service=Service.CENTRE, title="Bastion EU Centre", settings=settings, db=db, clock=clock, routers=[router],
        max_body_bytes=MAX_REPORT_BYTES, status=[outbox_section(db)],
        status_summary="Health for anyone; the forwarding backlog for admins", workers=[outbox], run_workers=deliver,
        state={"centre": c, "outbox": outbox}))


def centre_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory bastion.centre.app:centre_from_env``."""
    return create_centre_app(Settings.from_env())
