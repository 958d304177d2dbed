"""The app factory: one FastAPI app serving the /v1 API, the console, /status and /metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bastion import __version__
from bastion.classifiers import registry as classifier_registry
from bastion.classifiers import services as classifier_services
from bastion.classifiers.api import router as classifiers_router
from bastion.classifiers.interfaces import Classifier, ClassifierContext
from bastion.core import extensions
from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.auth.throttle import LoginGuard
from bastion.core.clock import Clock, SystemClock
from bastion.core.config import Settings
from bastion.core.context import AppContext
from bastion.core.db import Database
from bastion.core.docs import install_docs
from bastion.core.http import SecurityHeaders, install_problem_handlers, require
from bastion.core.outbox.services import OutboxWorker, SenderByKind
from bastion.core.outbox.webhooks import WebhookSender
from bastion.core.production import Service, gaps, warn
from bastion.core.uploads import FORM_OVERHEAD_BYTES, BodyLimit, close_spool, open_spool
from bastion.core.worker import Worker
from bastion.hashing import budget as media_budget
from bastion.hashing.api import router as hashing_router
from bastion.hma.api import router as hma_router
from bastion.matching.api import router as matching_router
from bastion.matching.budget import LookupBudget
from bastion.matching.matcher import Matcher
from bastion.minors.api import router as minors_router
from bastion.moderation.api import router as moderation_router
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import DEFAULT_POLICY_PATH, PolicyFile
from bastion.moderation.tasks import prune_previews
from bastion.orders.api import router as orders_router
from bastion.orders.services import contact_point_for, tco_signers, tick
from bastion.reporting import services as reports
from bastion.reporting.api import router as reports_router
from bastion.reporting.tasks import ReportSender
from bastion.web.bank_pages import router as bank_pages_router
from bastion.web.classifier_pages import router as classifier_pages_router
from bastion.web.console import router as console_router
from bastion.web.match_pages import router as match_pages_router
from bastion.web.metrics import Metrics
from bastion.web.minors_pages import router as minors_pages_router
from bastion.web.order_pages import router as order_pages_router
from bastion.web.report_pages import router as report_pages_router
from bastion.web.review_pages import router as review_pages_router

STATIC = Path(__file__).parent / "static"
#: /status says "degraded" when this process has not caught up with the bank change log for this long.
STALE_AFTER_SECONDS = 5.0
#: How often the sealed previews of published uploads past their retention are dropped (seconds).
PREVIEW_PRUNE_SECONDS = 3600.0


def create_app(settings: Settings, *, db: Database | None = None, matcher: Matcher | None = None,
               clock: Clock | None = None, refresh: bool = True,
               classifiers: Sequence[Classifier] | None = None) -> FastAPI:
    """Build the app. ``refresh`` starts the thread that replays the bank change log (off in some tests)."""
    extensions.activate(settings.extensions)  # first: the matcher and the classifiers file use what they add
    db = db or Database(settings.database_url)
    media_budget.configure(media_budget.MediaBudget.from_settings(settings))
    matcher = matcher or Matcher(db)
    clock = clock or SystemClock()
    policy = PolicyFile(settings.policy_path or DEFAULT_POLICY_PATH)
    if classifiers is None:  # the classifiers file, validated now: a broken one stops the start with its reason
        classifiers = classifier_registry.load(settings.classifiers_path,
                                               ClassifierContext(db, settings.classifier_token))
    sealer = settings.media_sealer()  # one key read, shared by previews, preserved orders and reports
    mod = Moderation(db, matcher, policy, clock, settings.platform_webhook_url, sealer=sealer,
                     classifiers=tuple(classifiers), keep_published_previews=settings.published_preview_days > 0)
    sender = WebhookSender(settings.webhook_secret, signers=tco_signers(settings.orders_signing_key),
                           clock=clock)
    reporting = reports.Reporting(db, clock, sealer, settings)
    outbox = OutboxWorker(db, SenderByKind(sender, {"report.": ReportSender(reporting)}),
                          settings.outbox_interval_seconds, clock)
    report_clock = Worker(lambda: reports.tick(reporting), settings.reports_tick_seconds, "bastion-reports")
    contact_point = contact_point_for(settings, mod)
    order_clock = Worker(lambda: tick(contact_point), settings.orders_tick_seconds, "bastion-orders")
    preview_clock = Worker(
        lambda: prune_previews(db, clock.now(), settings.published_preview_days), PREVIEW_PRUNE_SECONDS,
        "bastion-previews")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        open_spool(settings.spool_dir)  # sweeps uploads a killed process left behind, before anything else runs
        warn(settings, Service.PLATFORM)  # once per start, in the server's log
        if not matcher.freshness.loaded:
            matcher.load()
        if refresh:
            matcher.start(settings.index_refresh_seconds)
            outbox.start()
            order_clock.start()
            report_clock.start()
            preview_clock.start()
        # Models load in the background: neither the start nor an upload waits for them (classifiers/similarity.py).
        _app.state.classifiers_warming = classifier_services.warm_in_background(mod.classifiers)
        yield
        preview_clock.stop()
        report_clock.stop()
        order_clock.stop()
        outbox.stop()
        matcher.stop()
        classifier_services.close_all(mod.classifiers)
        close_spool(settings.spool_dir)

    app = FastAPI(title="Bastion", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ctx = AppContext(settings=settings, db=db, clock=clock)
    app.state.matcher = matcher
    app.state.match_budget = LookupBudget(settings.match_rate_per_minute)
    app.state.moderation = mod
    app.state.classifiers = mod.classifiers
    app.state.outbox = outbox
    app.state.contact_point = contact_point
    app.state.reporting = reporting
    app.state.login_guard = LoginGuard.from_settings(db, settings, clock)
    install_problem_handlers(app)
    install_docs(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES)
    metrics = Metrics(matcher)
    metrics.install(app)
    app.include_router(hashing_router)
    app.include_router(matching_router)
    app.include_router(hma_router)
    app.include_router(moderation_router)
    app.include_router(minors_router)
    app.include_router(classifiers_router)
    app.include_router(classifier_pages_router)
    app.include_router(console_router)
    app.include_router(bank_pages_router)
    app.include_router(match_pages_router)
    app.include_router(review_pages_router)
    app.include_router(orders_router)
    app.include_router(reports_router)
    app.include_router(report_pages_router)
    app.include_router(order_pages_router)
    app.include_router(minors_pages_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    missing_settings = [gap.setting for gap in gaps(settings, Service.PLATFORM)]

    @app.get("/status", tags=["operations"], summary="Liveness and index freshness (no secrets; for health checks)")
    def status() -> dict[str, Any]:
        age = time.time() - matcher.freshness.last_refresh if matcher.freshness.last_refresh else None
        try:
            lag = matcher.lag()
            database = "ok"
        except Exception:  # the process is alive even when its database is not
            lag, database = -1, "unreachable"
        fresh = age is not None and age < STALE_AFTER_SECONDS and lag == 0
        return {
            "status": "ok" if fresh and database == "ok" else "degraded",
            "version": __version__,
            "database": database,
            "index": {
                "applied_change_id": matcher.freshness.applied_change_id,
                "changes_behind": lag,
                "seconds_since_refresh": None if age is None else round(age, 3),
                "errors": list(matcher.freshness.errors),
            },
            "policy": {"in_force": mod.policy.label, "error": policy.error},
            # names only: what each gap weakens is in the server's log, not for anyone who can reach /status
            "missing_settings": missing_settings,
        }

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (token of role admin or analyst)")
    def prometheus(principal: Annotated[Principal, Depends(require(roles.METRICS))]) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory bastion.web.app:app_from_env``."""
    return create_app(Settings.from_env())


