"""The hub's own app (``bastion hub serve``): its database, its signing key, its outbox to contact points."""

from __future__ import annotations

from fastapi import FastAPI

from bastion.core.clock import Clock, SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.services import OutboxWorker, RetryPolicy, Routes
from bastion.core.outbox.webhooks import WebhookSender
from bastion.core.production import Service
from bastion.core.service import ServiceSpec, create_service, outbox_section
from bastion.core.worker import Worker
from bastion.hub.api import router
from bastion.hub.services import HubMessage, HubSender
from bastion.orders.services import forget_nonces, tco_signer

#: The largest message the hub accepts: an order of 100 URLs with every field is well under this.
MAX_BODY_BYTES = 1024 * 1024


def create_hub_app(settings: Settings, *, db: Database | None = None, clock: Clock | None = None,
                   deliver: bool = True, retry: RetryPolicy | None = None) -> FastAPI:
    """Build the hub. ``deliver`` starts the outbox worker that carries orders to contact points."""
    db = db or Database(settings.hub_database_url)
    clock = clock or SystemClock()
    # Every hub message goes to a contact point signed with the hub's Ed25519 key; orders are also tracked.
    signed = WebhookSender(b"", signer=tco_signer(settings.hub_signing_key), clock=clock)
    orders = HubSender(db, signed, clock)
    routes = Routes({HubMessage.ORDER: orders, HubMessage.CLARIFICATION: signed, HubMessage.REINSTATEMENT: signed})
    outbox = OutboxWorker(db, routes, settings.outbox_interval_seconds, clock,
                          policy=retry or RetryPolicy(base_seconds=1.0, cap_seconds=60.0, max_attempts=1000))
    # Spent nonces are only needed while a signature could still pass the time window.
    sweeper = Worker(lambda: forget_nonces(db, clock=clock), 60.0, "bastion-hub-nonces")
    return create_service(ServiceSpec(
        service=Service.HUB, title="Bastion hub", settings=settings, db=db, clock=clock, routers=[router],
        max_body_bytes=MAX_BODY_BYTES,
        status=[outbox_section(db)], status_summary="Health for anyone; the outbox's backlog for admins",
        workers=[outbox, sweeper], run_workers=deliver, state={"outbox": outbox}))


def hub_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory bastion.hub.app:hub_from_env``."""
    return create_hub_app(Settings.from_env())
