"""The app factory: one FastAPI app serving the /v1 API, the console, /status and /metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.orm import Session

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
from bastion.core.db import Database
from bastion.core.http import require
from bastion.core.outbox.services import MessageKind, OutboxWorker, Routes, Sender
from bastion.core.outbox.webhooks import WebhookSender
from bastion.core.production import Service
from bastion.core.service import Background, Health, ServiceSpec, create_service
from bastion.core.uploads import FORM_OVERHEAD_BYTES, close_spool, open_spool
from bastion.core.worker import Rounds, Worker
from bastion.designations.api import router as designations_router
from bastion.designations.queries import DesignatedFollower
from bastion.exchanges import tasks as exchange_tasks
from bastion.exchanges.api import router as exchanges_router
from bastion.exchanges.interfaces import ContributionOutcome
from bastion.exchanges.services import CrisisSharing, ExchangeMessage, HmaDirectory
from bastion.factchecks import policy as factcheck_policy
from bastion.factchecks import queries as factcheck_queries
from bastion.factchecks.api import router as factchecks_router
from bastion.factchecks.events import FactcheckMessage
from bastion.factchecks.services import FactChecks
from bastion.feed.api import router as feed_router
from bastion.feed.audit.api import router as feed_audits_router
from bastion.feed.crisis import Crises, CrisisAdjuster, HashShared, bank_confirmed_removals, record_share
from bastion.feed.gate import FeedGate
from bastion.feed.interfaces import Reason, ReasonChanges, ReasonSource
from bastion.feed.view import EligibilityView
from bastion.hashing import budget as media_budget
from bastion.hashing.api import router as hashing_router
from bastion.hma.api import router as hma_router
from bastion.matching.api import router as matching_router
from bastion.matching.budget import LookupBudget
from bastion.matching.matcher import Matcher
from bastion.minors.api import router as minors_router
from bastion.minors.events import MinorsMessage
from bastion.minors.interactions import watch_grooming
from bastion.minors.interfaces import EnticementCase, EnticementReporter
from bastion.minors.rules import DEFAULT_RULES_PATH, RulesFile
from bastion.minors.services import Minors
from bastion.moderation.api import router as moderation_router
from bastion.moderation.events import PlatformMessage
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import DEFAULT_POLICY_PATH, PolicyFile
from bastion.moderation.tasks import prune_previews
from bastion.orders.api import router as orders_router
from bastion.orders.services import TCO_SIGNED, OrderMessage, contact_point_for, tco_signer, tick
from bastion.reporting import services as reports
from bastion.reporting.api import router as reports_router
from bastion.reporting.services import ReportMessage
from bastion.reporting.tasks import ReportSender
from bastion.transparency import submission as sor_submission
from bastion.transparency.api import router as transparency_router
from bastion.transparency.releases import release_next
from bastion.transparency.rollups import roll_up
from bastion.transparency.rollups import status as rollup_status
from bastion.transparency.sor_client import TransparencyClient
from bastion.transparency.submission_api import router as sor_router
from bastion.web.bank_pages import router as bank_pages_router
from bastion.web.classifier_pages import router as classifier_pages_router
from bastion.web.console import router as console_router
from bastion.web.crisis_pages import router as crisis_pages_router
from bastion.web.designation_pages import router as designation_pages_router
from bastion.web.exchange_pages import router as exchange_pages_router
from bastion.web.feed_audit_pages import router as feed_audit_pages_router
from bastion.web.match_pages import router as match_pages_router
from bastion.web.metrics import Metrics
from bastion.web.minors_pages import router as minors_pages_router
from bastion.web.order_pages import router as order_pages_router
from bastion.web.report_pages import router as report_pages_router
from bastion.web.review_pages import router as review_pages_router
from bastion.web.sor_pages import router as sor_pages_router
from bastion.web.transparency_pages import router as transparency_pages_router

STATIC = Path(__file__).parent / "static"
#: /status says "degraded" when this process has not caught up with the bank change log for this long.
STALE_AFTER_SECONDS = 5.0
#: How often the sealed previews of published uploads past their retention are dropped (seconds).
PREVIEW_PRUNE_SECONDS = 3600.0
log = logging.getLogger(__name__)

#: The feed's reason sources (``feed/interfaces.py: ReasonSource``): each domain that holds reasons to keep content
#: out of feeds (fact-checks, designated entities) adds its factory here, the one place; names are checked at start.


class _FactcheckReasons:
    """``fact_checked_false``: items whose latest fact-check rating is false or partly false."""

    name = "factchecks"

    def changes(self, session: Session, cursor: int) -> ReasonChanges:
        found = factcheck_queries.false_rated_since(session, cursor)
        return ReasonChanges(found.cursor, {c: frozenset({Reason.FACT_CHECKED_FALSE}) if false else frozenset()
                                            for c, false in found.false.items()})


class _DesignationReasons:
    """``designated_entity``: content linked to a designated entity by a bank match or a word of its text."""

    name = "designations"

    def __init__(self) -> None:
        self._follower = DesignatedFollower()

    def changes(self, session: Session, cursor: int) -> ReasonChanges:
        found = self._follower.since(session, cursor)
        return ReasonChanges(found.cursor, {c: frozenset({Reason.DESIGNATED_ENTITY}) if names else frozenset()
                                            for c, names in found.content.items()})


FEED_REASON_SOURCES: list[Callable[[], ReasonSource]] = [_FactcheckReasons, _DesignationReasons]


class _IndexRefresher:
    """The matcher's replay of the bank change log, as one of the app's workers."""

    def __init__(self, matcher: Matcher, interval: float) -> None:
        self.matcher, self.interval = matcher, interval

    def start(self) -> None:
        self.matcher.start(self.interval)

    def stop(self) -> None:
        self.matcher.stop()

    @property
    def rounds(self) -> Rounds:
        return self.matcher.rounds


def _enticement_reporter(reporting: reports.Reporting) -> EnticementReporter:
    """Minors' confirmed grooming case drafts its NCMEC report through reporting (beside minors, not below it)."""

    def draft(session: Session, case: EnticementCase, *, actor: str) -> str:
        return reports.draft_enticement(reporting, session, reports.EnticementRequest(
            account_id=case.account_id, source=f"minors-case:{case.case_id}",
            attempts=[reports.EnticementAttempt(a.at, a.action, a.target, a.decision) for a in case.attempts]),
            actor=actor)

    return draft


def crisis_share(crises: Crises) -> Callable[[ContributionOutcome], None]:
    """How an exchange answered a crisis's shared hash, onto the crisis's timeline (the two domains meet here)."""
    def told(o: ContributionOutcome) -> None:
        record_share(crises, o.subject, HashShared(exchange=o.exchange, signal_type=o.signal_type, value=o.value,
                                                   accepted_id=o.accepted_id, error=o.error,
                                                   http_status=o.http_status), key=o.key)
    return told


def outbox_routes(settings: Settings, clock: Clock, reports: Sender, exchanges: Sender | None = None) -> Routes:
    """Who delivers each message the platform sends: the TCO wire's kinds signed with this end's Ed25519 key, the
    platform's own notifications with its webhook secret, child-safety reports by ``reports`` (NCMEC's procedure),
    feedback to hash exchanges by ``exchanges`` (each exchange's own client)."""
    hmac = WebhookSender(settings.webhook_secret, clock=clock)
    tco = WebhookSender(b"", signer=tco_signer(settings.orders_signing_key), clock=clock)
    table: dict[MessageKind, Sender] = {**dict.fromkeys(PlatformMessage, hmac), **dict.fromkeys(MinorsMessage, hmac)}
    table.update({kind: tco if kind in TCO_SIGNED else hmac for kind in OrderMessage})
    table.update(dict.fromkeys(FactcheckMessage, tco))  # partners verify with this platform's Ed25519 key
    table.update(dict.fromkeys(ReportMessage, reports))
    if exchanges is not None:
        table.update(dict.fromkeys(ExchangeMessage, exchanges))
    return Routes(table)


def _index_health(matcher: Matcher) -> Health:
    age = time.time() - matcher.freshness.last_refresh if matcher.freshness.last_refresh else None
    try:
        lag = matcher.lag()
        database = "ok"
    except Exception:  # the process is alive even when its database is not
        lag, database = -1, "unreachable"
    fresh = age is not None and age < STALE_AFTER_SECONDS and lag == 0
    return Health(ok=fresh and database == "ok", fields={
        "database": database,
        "index": {
            "applied_change_id": matcher.freshness.applied_change_id,
            "changes_behind": lag,
            "seconds_since_refresh": None if age is None else round(age, 3),
            "errors": list(matcher.freshness.errors),
        },
    })


def _feed_health(view: EligibilityView) -> Health:
    age = time.time() - view.freshness.last_refresh if view.freshness.last_refresh else None
    try:
        lag = view.lag()
    except Exception:  # reported by the index's check already
        lag = -1
    return Health(ok=age is not None and age < STALE_AFTER_SECONDS and lag == 0, fields={"feed": {
        "applied_event_id": view.freshness.applied_event_id, "events_behind": lag, "content_items": len(view.entries),
        "active_crises": [c.reference for c in view.crises],
        "seconds_since_refresh": None if age is None else round(age, 3)}})


def create_app(settings: Settings, *, db: Database | None = None, matcher: Matcher | None = None,
               clock: Clock | None = None, refresh: bool = True,
               classifiers: Sequence[Classifier] | None = None) -> FastAPI:
    """Build the app. ``refresh`` starts the workers (the change log's replay, the outbox, the clocks; off in some
    tests, which drive them by hand)."""
    extensions.activate(settings.extensions)  # first: the matcher and the classifiers file use what they add
    db = db or Database(settings.database_url)
    media_budget.configure(media_budget.MediaBudget.from_settings(settings))
    matcher = matcher or Matcher(db, settings.index_snapshot_dir)
    clock = clock or SystemClock()
    policy = PolicyFile(settings.policy_path or DEFAULT_POLICY_PATH)
    if classifiers is None:  # the classifiers file, validated now: a broken one stops the start with its reason
        classifiers = classifier_registry.load(settings.classifiers_path,
                                               ClassifierContext(db, settings.classifier_token))
    sealer = settings.media_sealer()  # one key read, shared by previews, preserved orders and reports
    adjuster = CrisisAdjuster()  # the crises in force change intake (moderation defines the hook, not feed)
    # Statements of reasons are queued for the DSA Transparency Database with the decision, when it is configured.
    on_statement = sor_submission.queue_hook(clock) if settings.submits_statements else None
    mod = Moderation(db, matcher, policy, clock, settings.platform_webhook_url, sealer=sealer,
                     classifiers=tuple(classifiers), keep_published_previews=settings.published_preview_days > 0,
                     adjuster=adjuster, on_statement=on_statement)
    crises = Crises(db, clock, mod, sharing=CrisisSharing(clock))  # exchanges implement feed's hook
    feed_view = EligibilityView(db, [make() for make in FEED_REASON_SOURCES])
    feed_view.on_crises(adjuster.update)
    gate = FeedGate(db, feed_view)
    reporting = reports.Reporting(db, clock, sealer, settings)
    routes = outbox_routes(settings, clock, ReportSender(reporting), exchange_tasks.ExchangeSender(
        exchange_tasks.FeedbackSender(db), exchange_tasks.ContributionSender(db, on_outcome=crisis_share(crises))))
    outbox = OutboxWorker(db, routes, settings.outbox_interval_seconds, clock)
    contact_point = contact_point_for(settings, mod)
    # built at start, like the policy: a broken minors rules file refuses the start, never a request
    minors = Minors(db, clock, RulesFile(settings.minors_rules_path or DEFAULT_RULES_PATH),
                    settings.platform_webhook_url, enticement=_enticement_reporter(reporting),
                    on_statement=on_statement)
    workers: list[Background] = [
        _IndexRefresher(matcher, settings.index_refresh_seconds),
        Worker(lambda: feed_view.refresh() if feed_view.freshness.loaded else None, settings.index_refresh_seconds,
               "bastion-feed"),
        Worker(lambda: bank_confirmed_removals(crises), settings.index_refresh_seconds, "bastion-crisis-curator"),
        outbox,
        Worker(lambda: tick(contact_point), settings.orders_tick_seconds, "bastion-orders"),
        Worker(lambda: reports.tick(reporting), settings.reports_tick_seconds, "bastion-reports"),
        Worker(lambda: prune_previews(db, clock.now(), settings.published_preview_days), PREVIEW_PRUNE_SECONDS,
               "bastion-previews"),
        exchange_tasks.scheduler(db, clock),
        Worker(lambda: roll_up(db, now=clock.now()), settings.transparency_rollup_seconds, "bastion-transparency"),
        # a closed month's answers for researchers, cut once (seconds of CPU a month) before anyone asks
        Worker(lambda: release_next(db, max(1, settings.transparency_min_cell), clock),
               settings.transparency_rollup_seconds, "bastion-transparency-releases"),
        Worker(lambda: watch_grooming(minors, now=clock.now()), settings.minors_grooming_seconds, "bastion-grooming"),
    ]
    if settings.submits_statements and settings.transparency_db_url:
        for n in range(settings.transparency_submitters):  # they lease disjoint batches
            submitter = sor_submission.Submitter(
                db, TransparencyClient(settings.transparency_db_url, settings.transparency_db_token), clock)
            workers.append(Worker(submitter.run, settings.transparency_interval_seconds, f"bastion-transparency-{n}"))

    def open_up(app: FastAPI) -> None:
        open_spool(settings.spool_dir)  # sweeps uploads a killed process left behind, before anything else runs
        if not matcher.freshness.loaded:
            matcher.load()
        if not feed_view.freshness.loaded:
            feed_view.load()
        # Models load in the background: neither the start nor an upload waits for them (classifiers/similarity.py).
        app.state.classifiers_warming = classifier_services.warm_in_background(mod.classifiers)

    def close_down() -> None:
        close_spool(settings.spool_dir)
        if settings.index_snapshot_dir is not None and matcher.freshness.loaded:
            try:  # the next start maps it and replays only the changes since (matching/matcher.py)
                matcher.save_snapshot()
            except (OSError, RuntimeError, ValueError):
                log.exception("the PDQ index snapshot was not written; the next start loads in full")

    app = create_service(ServiceSpec(
        service=Service.PLATFORM, title="Bastion", settings=settings, db=db, clock=clock,
        # The hottest paths first: routes are matched in order, and each router passed costs its routes' matching
        # (about 18 µs, twice a request). The feed gate (a request per page), minors' interaction checks (per feed
        # page and comment thread: 0.3 ms a batch when they came sixth), then intake (an upload each). No path of one
        # router matches another's, so the order changes no answer.
        routers=[feed_router, minors_router, moderation_router, hashing_router, matching_router, hma_router,
                 classifiers_router, classifier_pages_router, console_router, bank_pages_router, match_pages_router,
                 review_pages_router,
                 orders_router, reports_router, report_pages_router, order_pages_router, minors_pages_router,
                 crisis_pages_router, feed_audits_router, feed_audit_pages_router,
                 sor_router, sor_pages_router, factchecks_router, designations_router, designation_pages_router,
                 exchanges_router, exchange_pages_router, transparency_router, transparency_pages_router],
        max_body_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
        status=[lambda: _index_health(matcher),
                lambda: Health(ok=True, fields={"policy": {"in_force": mod.intake_policy.label,
                                                           "error": policy.error}}),
                lambda: _feed_health(feed_view),
                lambda: Health(ok=True, fields={"transparency_database": sor_submission.status(
                    db, enabled=settings.submits_statements)}),
                lambda: Health(ok=True, fields={"transparency_rollups": rollup_status(db)})],
        status_summary="Health for anyone; index freshness and every section's details for admins",
        workers=workers, run_workers=refresh,
        on_start=[open_up], on_stop=[close_down, lambda: classifier_services.close_all(mod.classifiers)],
        state={"matcher": matcher, "match_budget": LookupBudget(settings.match_rate_per_minute),
               "moderation": mod, "classifiers": mod.classifiers, "outbox": outbox,
               "contact_point": contact_point, "reporting": reporting,
               "feed_gate": gate, "crises": crises,
               "minors": minors,
               # the fact-check policy is validated at start too: an unknown rating or action refuses the start
               "factchecks": FactChecks(mod, factcheck_policy.load()),
               "login_guard": LoginGuard.from_settings(db, settings, clock),
               "hma_exchanges": HmaDirectory(db)}))
    metrics = Metrics(matcher)
    metrics.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (token of role admin or analyst)")
    def prometheus(principal: Annotated[Principal, Depends(require(roles.METRICS))]) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory bastion.web.app:app_from_env``."""
    return create_app(Settings.from_env())


