"""The service kernel: what every Bastion app is made of, built in one place.

The platform (``web/app.py``), the hub (``hub/app.py``) and the EU Centre (``centre/app.py``) are each a FastAPI app
with the same skeleton: problem+json for every error, ``/docs`` served offline, the security headers on every
response, a cap on request bodies, a ``/status`` for health checks, and background workers (the outbox, clocks,
housekeeping) started and stopped with the app. ``create_service`` builds that skeleton from what differs: the
title, the routers, the workers, the body limit and the sections of ``/status`` (plus, for every app, the production
settings it lacks: ``core/production.py``). An app factory then only wires its
domain's objects, so a fix to the skeleton (a header, the lifespan's order) reaches all three at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.exc import SQLAlchemyError

from bastion import __version__
from bastion.core.auth import roles
from bastion.core.auth.services import authenticate_token
from bastion.core.clock import Clock
from bastion.core.config import Settings
from bastion.core.context import AppContext
from bastion.core.db import CHECKPOINT_SECONDS, Database, is_sqlite
from bastion.core.docs import install_docs
from bastion.core.http import SecurityHeaders, install_problem_handlers
from bastion.core.outbox.services import outbox_status
from bastion.core.production import Service, gaps, warn
from bastion.core.uploads import BodyLimit
from bastion.core.worker import Rounds, Worker

log = logging.getLogger(__name__)


class Background(Protocol):
    """Something the app runs beside its requests: started after the app's start hooks, stopped before its stop hooks,
    in reverse order (``core/worker.py: Worker``, ``core/outbox: OutboxWorker``); how its rounds go is on
    ``/status`` (``workers_section``)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def rounds(self) -> Rounds: ...


@dataclass(frozen=True)
class Health:
    """One section of ``/status``: whether this part is well, and the fields it adds (never a secret)."""

    ok: bool
    fields: dict[str, Any] = field(default_factory=dict)


StatusSection = Callable[[], Health]


def outbox_section(db: Database) -> StatusSection:
    """``/status`` of an app whose work is its outbox: the database's reachability and the messages per state."""

    def section() -> Health:
        body = outbox_status(db)
        return Health(ok=body.pop("status") == "ok", fields=body)

    return section


def workers_section(workers: Sequence[Background]) -> StatusSection:
    """``/status`` of an app's workers, every app's: degraded while one fails round after round
    (``core/worker.py: FAILING_SECONDS``); for admins, each one's failures, last error (its type) and last good
    round."""

    def section() -> Health:
        rounds = [worker.rounds for worker in workers]
        shown = {r.name: r.as_status() for r in rounds}
        return Health(ok=not any(r.failing for r in rounds), fields={"workers": shown})

    return section


@dataclass(frozen=True)
class ServiceSpec:
    """What an app is made of, beyond the kernel's skeleton."""

    #: Which server this is: the production settings it must have are said at start and on ``/status``.
    service: Service
    title: str
    settings: Settings
    db: Database
    clock: Clock
    routers: Sequence[APIRouter]
    #: Request bodies above this many bytes are refused (413) before a route reads them.
    max_body_bytes: int
    #: ``/status`` says ``ok`` when every section is; their fields are merged into one body.
    status: Sequence[StatusSection] = ()
    status_summary: str = "Health: overall for anyone (health checks); every section's details for admins"
    workers: Sequence[Background] = ()
    #: False in tests that drive the workers by hand (``run_once``): the start and stop hooks still run.
    run_workers: bool = True
    #: Run before the workers start (open a spool, load an index); given the app, to put what they make on its state.
    on_start: Sequence[Callable[[FastAPI], None]] = ()
    #: Run after the workers stopped, in reverse order.
    on_stop: Sequence[Callable[[], None]] = ()
    #: Set on ``app.state`` besides ``ctx`` (what routes and pages read: ``outbox``, ``centre``, ``moderation``...).
    state: Mapping[str, Any] = field(default_factory=dict)


def create_service(service: ServiceSpec) -> FastAPI:
    """Build the app: FastAPI with offline docs, problem+json handlers, security headers, the body limit, ``/status``
    and a lifespan that starts and stops the workers (on SQLite, also the WAL's checkpoint: ``Database.checkpoint``).
    Middleware added afterwards wraps these (metrics, say)."""
    # Names only: what each gap weakens goes to the server's log, not to anyone who can reach /status.
    missing_settings = [gap.setting for gap in gaps(service.settings, service.service)]
    workers = list(service.workers)
    if is_sqlite(service.db.engine):  # SQLite's WAL copied back off the requests' path (PostgreSQL does its own)
        workers.append(Worker(service.db.checkpoint, CHECKPOINT_SECONDS, "bastion-wal-checkpoint"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn(service.settings, service.service)  # once per start, in the server's log
        for hook in service.on_start:
            hook(app)
        started: list[Background] = []
        try:
            if service.run_workers:
                for worker in workers:
                    worker.start()  # may refuse (an outbox holding kinds nobody here delivers): the app does not start
                    started.append(worker)
            yield
        finally:
            for worker in reversed(started):
                worker.stop()
            for stop in reversed(service.on_stop):
                stop()

    app = FastAPI(title=service.title, version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ctx = AppContext(settings=service.settings, db=service.db, clock=service.clock)
    for name, value in service.state.items():
        setattr(app.state, name, value)
    install_problem_handlers(app)
    install_docs(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=service.max_body_bytes)
    for router in service.routers:
        app.include_router(router)

    sections = (*service.status, workers_section(workers))

    @app.get("/status", tags=["operations"], summary=service.status_summary)
    def status(request: Request) -> dict[str, Any]:
        parts = [section() for section in sections]
        health = "ok" if all(p.ok for p in parts) else "degraded"
        if not _admin(request, service.db):  # a health check learns the health; the rest is for operators
            return {"status": health}
        body: dict[str, Any] = {"status": health, "version": __version__}
        for part in parts:
            body.update(part.fields)
        body["missing_settings"] = missing_settings
        return body

    return app


def _admin(request: Request, db: Database) -> bool:
    """Whether the request carries an admin's bearer token. No token, or another, is not an error here: ``/status``
    answers everyone, and only admins see the version, the sections' fields and the production settings missing."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    try:
        principal = authenticate_token(db, presented.strip())
    except SQLAlchemyError:  # the database is down: /status still answers (degraded), as to anyone
        return False
    return principal is not None and principal.role in roles.ADMIN
