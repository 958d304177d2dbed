"""Upload moderation: a verdict before publication, human decisions, actions, statements of reasons, appeals.

Every step writes its events, the projections (content status, account strikes) and any message to the platform
in one transaction; messages leave through the outbox after commit. ``next_status`` is the only place a status moves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.classifiers.interfaces import Classifier, Content, LabelledText
from bastion.classifiers.services import score as classify
from bastion.core.auth.roles import CHILD_SAFETY_ROLES, ESCALATIONS
from bastion.core.auth.services import Principal
from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.errors import DomainError
from bastion.core.idempotency import fingerprint
from bastion.core.outbox.services import enqueue
from bastion.core.sealing import Sealer
from bastion.hashing import registry
from bastion.hashing.exact import Sha256Signal, digest_file
from bastion.hashing.interfaces import HashResult
from bastion.hashing.services import FileSignals, hash_text, signal_json
from bastion.matching import services as bank_services
from bastion.matching.interfaces import BankError, DuplicateEntry, InvalidEntry
from bastion.matching.matcher import Match, Matcher, Query, queries_for
from bastion.matching.models import Bank
from bastion.matching.services import NewEntry
from bastion.moderation import statements
from bastion.moderation.events import (
    Change,
    ContentStatus,
    EventKind,
    InvalidTransition,
    change_for_actions,
    content_restrictions,
    next_status,
)
from bastion.moderation.models import (
    Account,
    Appeal,
    ContentItem,
    MediaPreview,
    ModerationEvent,
    StatementOfReasons,
)
from bastion.moderation.policy import (
    Action,
    Category,
    ContentType,
    Decision,
    Facts,
    MatchFact,
    Policy,
    PolicyFile,
    Routing,
    Rule,
    Verdict,
    evaluate,
    strike_outcome,
    views_crossed,
)
from bastion.moderation.previews import Preview, make_preview
from bastion.review import services as review
from bastion.review.models import Case, CaseReason


class ModerationError(DomainError):
    status = 400
    title = "Bad request"


class ContentNotFound(ModerationError):
    status = 404
    title = "Content not found"


class StatementNotFound(ModerationError):
    status = 404
    title = "Statement not found"


class InvalidDecision(ModerationError):
    status = 422
    title = "Invalid decision"


class NotAllowed(ModerationError):
    status = 403
    title = "Forbidden"


class SubmissionConflict(ModerationError):
    """The content_id was submitted before with a different request. The new request was judged and recorded on
    the content (and acted on, if the policy says so), but its answer is this refusal, never the old verdict."""

    status = 409
    title = "Conflict"

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict

    def problem_extra(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value}  # the platform learns what the new request's verdict was


class CurationRefused(ModerationError):
    """The bank is missing, or closed to this reviewer; carries the bank error's status."""

    title = "Curation refused"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Moderation:
    """What the moderation services need besides the database: the policy, the matcher and where to tell the
    platform (its webhook; ``None`` keeps the events and statements but sends nothing)."""

    db: Database
    matcher: Matcher
    #: A policy, or a policy file re-read when it changes (edits take effect without a restart).
    policy_source: Policy | PolicyFile
    clock: Clock
    webhook_url: str | None = None
    #: Seals media previews at rest; ``None`` keeps no preview (reviewers then see the signals only).
    sealer: Sealer | None = None
    #: Models that score each upload (``classifiers/registry.py``); their scores are facts for the policy.
    classifiers: Sequence[Classifier] = ()
    #: Keep a sealed preview of published uploads too: a notice or their reach may bring them back to a reviewer,
    #: who must see what they judge. ``prune_previews`` drops the ones no case needs after a while.
    keep_published_previews: bool = True

    @property
    def policy(self) -> Policy:
        source = self.policy_source
        return source.policy if isinstance(source, PolicyFile) else source

    def sla_minutes(self, queue: str) -> int:
        try:
            return self.policy.queue(queue).sla_minutes
        except KeyError:  # a queue a live policy edit removed: its cases keep the strictest pace
            return min(q.sla_minutes for q in self.policy.queues)

    def restricted_queue(self, queue: str) -> bool:
        """Whether only child-safety roles see ``queue``; a queue the policy no longer has counts as restricted, so
        an edit that renames the child-safety queue never opens its cases to everyone."""
        try:
            return self.policy.queue(queue).restricted
        except KeyError:
            return True

    def queue_for(self, category: Category, item: ContentItem, severity: int) -> str:
        """Where a case about ``item`` goes: its category, severity, content type and uploader's age decide."""
        return self.policy.route(category, Routing(severity, ContentType(item.content_type), item.uploader_age)).name


def _log(session: Session, subject: str, kind: EventKind, actor: str, clock: Clock,
         data: dict[str, object] | None = None, external_id: str | None = None) -> ModerationEvent:
    event = ModerationEvent(subject=subject, kind=kind.value, actor=actor, data=data or {}, external_id=external_id,
                            at=clock.now())
    session.add(event)  # flushed with the rest of the transaction, in the order added: no round trip per event
    return event


def content_subject(content_id: str) -> str:
    return f"content:{content_id}"


# --- intake -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    content_id: str
    account_id: str
    uploader_age: float
    account_country: str
    content_type: ContentType
    text: str = ""
    url: str = ""
    #: The name the user uploaded the file under (optional; child-safety reports carry it).
    file_name: str = ""


@dataclass(frozen=True)
class IntakeResult:
    content_id: str
    verdict: Verdict
    status: ContentStatus
    reasons: list[str]
    case_id: int | None = None
    statement_puid: str | None = None
    #: True when this content_id had been submitted before and the stored answer is returned.
    replay: bool = False
    signals: list[dict[str, object]] = field(default_factory=list)


def submit(mod: Moderation, sub: Submission, media: FileSignals | None, *, actor: Principal,
           media_path: Path | None = None) -> IntakeResult:
    """Judge an upload before it is published. Idempotent on ``content_id`` for the same request only.

    The same content_id with the same request (fields and media bytes) returns the stored answer. With a different
    request it is ``SubmissionConflict``: the new media is still hashed, matched, judged and recorded on the content
    (a banked file cannot slip in under an id that was clean). ``media_path`` (the spooled upload) lets the upload
    keep a sealed preview for its reviewers: held or blocked uploads always, published ones too
    (``keep_published_previews``), since a notice or their reach may bring them back for review.
    """
    request = request_fingerprint(sub, media)
    stored = _stored_result(mod, sub.content_id)
    if stored is not None and stored[1] == request:
        return stored[0]
    signals = (media.signals if media else []) + hash_text(" ".join(t for t in (sub.text, sub.url) if t))
    queries = (queries_for(media) if media else []) + [Query(s) for s in signals if not media or s not in media.signals]
    matches = mod.matcher.match(queries)
    # media matching a restricted bank (known child sexual abuse material) is never sent to a classifier, which
    # may be a service outside Bastion; its text still is
    sendable = media is not None and not any(m.restricted for m in matches)
    scoring = classify(mod.classifiers, Content(sub.text, media_path if sendable else None,
                                                media.kind if media and sendable else None))
    facts = Facts(content_type=sub.content_type, user_age_years=sub.uploader_age,
                  account_country=sub.account_country, matches=[MatchFact.from_match(m) for m in matches],
                  scores=scoring.scores)
    decision = evaluate(mod.policy, facts)
    notes = [str(f) for f in scoring.failures]
    preview = None
    if media is not None and media_path is not None and mod.sealer is not None \
            and (decision.verdict is not Verdict.ALLOW or mod.keep_published_previews):
        preview = make_preview(media_path, media.kind)
    if stored is None:
        try:
            return _record_submission(mod, sub, signals, decision, actor, matches=matches, preview=preview,
                                      notes=notes, request=request)
        except IntegrityError:  # the same content_id submitted concurrently: the other request won
            stored = _stored_result(mod, sub.content_id)
            assert stored is not None
            if stored[1] == request:
                return stored[0]
    _record_resubmission(mod, sub, signals, decision, actor, matches=matches, notes=notes, request=request,
                         preview=preview)
    raise SubmissionConflict(
        f"content_id {sub.content_id!r} was submitted before with a different request (media, account or another "
        f"field); the new request was judged ({decision.verdict.value}) and recorded on that content: send new "
        "content under a new content_id", decision.verdict)


def request_fingerprint(sub: Submission, media: FileSignals | None) -> str:
    """What makes two submissions the same request: every field, and the media's bytes (by their SHA-256)."""
    return fingerprint({
        "content_id": sub.content_id, "account_id": sub.account_id, "uploader_age": float(sub.uploader_age),
        "account_country": sub.account_country, "content_type": sub.content_type.value, "text": sub.text,
        "url": sub.url, "media_sha256": digest_file(media.path, "sha256") if media is not None else ""})


def _stored_result(mod: Moderation, content_id: str) -> tuple[IntakeResult, str] | None:
    """The stored answer for ``content_id`` and the fingerprint of the request that got it."""
    with mod.db.read() as session:
        item = session.get(ContentItem, content_id)
        if item is None:
            return None
        verdict_event = session.scalar(select(ModerationEvent).where(
            ModerationEvent.subject == content_subject(content_id), ModerationEvent.kind == EventKind.VERDICT.value))
        submitted = session.scalar(select(ModerationEvent.data).where(
            ModerationEvent.subject == content_subject(content_id),
            ModerationEvent.kind == EventKind.SUBMITTED.value))
        case_id = session.scalar(select(Case.id).where(Case.content_id == content_id,
                                                       Case.reason == CaseReason.UPLOAD.value))
        puid = session.scalar(select(StatementOfReasons.puid).where(StatementOfReasons.content_id == content_id)
                              .order_by(StatementOfReasons.created_at).limit(1))
        data = verdict_event.data if verdict_event else {}
        reasons = data.get("public_reasons", data.get("reasons"))  # the platform's wording, as first answered
        request = submitted.get("request_sha256") if isinstance(submitted, dict) else None
        result = IntakeResult(content_id, Verdict(item.verdict), ContentStatus(item.status),
                              [str(r) for r in reasons] if isinstance(reasons, list) else [],
                              case_id, puid, replay=True, signals=list(item.signals))
        return result, str(request) if request else _legacy_fingerprint(item)


def _legacy_fingerprint(item: ContentItem) -> str:
    """The fingerprint of content recorded before fingerprints were stored, rebuilt from its row (its fields and
    the SHA-256 its media was hashed to)."""
    digest = next((str(s.get("value")) for s in item.signals if s.get("signal_type") == Sha256Signal.name), "")
    return fingerprint({
        "content_id": item.content_id, "account_id": item.account_id, "uploader_age": float(item.uploader_age),
        "account_country": item.account_country, "content_type": item.content_type, "text": item.text,
        "url": item.url, "media_sha256": digest})


def _record_resubmission(mod: Moderation, sub: Submission, signals: list[HashResult], decision: Decision,
                         actor: Principal, *, matches: Sequence[Match], notes: Sequence[str], request: str,
                         preview: Preview | None = None) -> None:
    """Record a conflicting request on the content it named, and act on it as an upload: the platform may publish
    the new media under the old id, so a block removes the content and a review opens a case about it (with the
    new media's preview: reviewers judge what may now be online, not the first file)."""
    with mod.db.write() as session:
        item = get_item(session, sub.content_id)
        restricted = decision.category is Category.CSAM or any(m.restricted for m in matches)
        _log(session, content_subject(sub.content_id), EventKind.RESUBMITTED, actor.actor, mod.clock,
             {"account_id": sub.account_id, "request_sha256": request, "signals": [signal_json(s) for s in signals],
              "verdict": decision.verdict.value, "rule": decision.rule,
              "reasons": [str(r) for r in decision.reasons] + list(notes),
              "matches": [{**m.to_json(), "restricted": m.restricted} for m in matches]})
        if decision.verdict is Verdict.ALLOW:
            return
        if preview is not None and mod.sealer is not None:
            kept = session.get(MediaPreview, sub.content_id) or MediaPreview(content_id=sub.content_id)
            kept.sealed = mod.sealer.seal(preview.jpeg, sub.content_id)
            kept.width, kept.height, kept.created_at = preview.width, preview.height, mod.clock.now()
            session.add(kept)
        known = {(s.get("signal_type"), s.get("value")) for s in item.signals}
        item.signals = list(item.signals) + [signal_json(s) for s in signals
                                             if (s.signal_type, s.value) not in known]  # what reviewers judge
        item.updated_at = mod.clock.now()
        review_of = _review_asked(decision)
        if review_of is not None:
            queue, category, severity = review_of
            _open_case(mod, session, item, category=category, reason=CaseReason.UPLOAD, severity=severity,
                       queue=queue, restricted=True if restricted else None)
        if decision.verdict is Verdict.BLOCK and ContentStatus(item.status) not in (ContentStatus.BLOCKED,
                                                                                     ContentStatus.REMOVED):
            assert decision.category is not None
            _apply(mod, session, item, Outcome(
                actions=list(decision.actions), category=decision.category, territories=list(decision.territories),
                facts=decision.public_facts, decided_by=f"policy:{decision.policy}",
                automated_detection=True, automated=True, source=statements.Source.OWN_INITIATIVE,
                change=change_for_actions(decision.actions)))


def _record_submission(mod: Moderation, sub: Submission, signals: list[HashResult], decision: Decision,
                       actor: Principal, *, matches: Sequence[Match] = (),
                       preview: Preview | None = None, notes: Sequence[str] = (), request: str = ""
                       ) -> IntakeResult:
    now = mod.clock.now()
    reasons = [str(r) for r in decision.reasons] + list(notes)  # for reviewers who may see the case
    answered = decision.public_reasons + list(notes)  # for the platform: no bank, rule, distance or score
    with mod.db.write() as session:
        item = ContentItem(
            content_id=sub.content_id, account_id=sub.account_id, uploader_age=sub.uploader_age,
            account_country=sub.account_country, content_type=sub.content_type.value, text=sub.text, url=sub.url,
            signals=[signal_json(s) for s in signals], verdict=decision.verdict.value, status="",
            category=decision.category.value if decision.category else "", created_at=now, updated_at=now,
            file_name=sub.file_name)
        session.add(item)
        session.flush()  # a second submission of the same content_id fails here, before any event is written
        subject = content_subject(sub.content_id)
        _log(session, subject, EventKind.SUBMITTED, actor.actor, mod.clock,
             {"account_id": sub.account_id, "content_type": sub.content_type.value, "signals": len(signals),
              "request_sha256": request})
        _log(session, subject, EventKind.VERDICT, f"policy:{decision.policy}", mod.clock,
             {"verdict": decision.verdict.value, "rule": decision.rule, "reasons": reasons,
              "public_reasons": answered, "actions": [a.value for a in decision.actions],
              "matches": [{**m.to_json(), "restricted": m.restricted} for m in matches]})
        if preview is not None and mod.sealer is not None:
            session.add(MediaPreview(content_id=sub.content_id, sealed=mod.sealer.seal(preview.jpeg, sub.content_id),
                                     width=preview.width, height=preview.height, created_at=now))
        for reason in decision.shadow_reasons:
            _log(session, subject, EventKind.SHADOW_VERDICT, f"policy:{decision.policy}", mod.clock,
                 {"rule": reason.rule, "would_be": reason.verdict.value, "reason": str(reason)})
        item.status = next_status(None, _intake_change(decision)).value
        item.restrictions = content_restrictions(decision.while_in_review)
        case_id = puid = None
        review_of = _review_asked(decision)
        if review_of is not None:
            queue, category, severity = review_of
            restricted = item.category == Category.CSAM.value or any(m.restricted for m in matches)
            case_id = _open_case(mod, session, item, category=category, reason=CaseReason.UPLOAD,
                                 severity=severity, queue=queue, restricted=restricted).id
        if decision.verdict is Verdict.BLOCK:
            assert decision.category is not None
            puid = _apply(mod, session, item, Outcome(
                actions=list(decision.actions), category=decision.category, territories=list(decision.territories),
                facts=decision.public_facts,  # what was found and how, never bank, rule or distance
                decided_by=f"policy:{decision.policy}", automated_detection=True,
                automated=True, source=statements.Source.OWN_INITIATIVE,
                change=None if item.status == ContentStatus.BLOCKED.value else change_for_actions(decision.actions)))
        else:
            _notify(mod, session, item, "content.verdict", None)
        return IntakeResult(sub.content_id, decision.verdict, ContentStatus(item.status), answered, case_id, puid,
                            signals=list(item.signals))


def _review_asked(decision: Decision) -> tuple[str, Category, int] | None:
    """The queue, category and severity of the review the policy asks for, if any: a review verdict, or a review
    rule that held under a block that only restricts (a geo-block must not cancel the review)."""
    if decision.verdict is Verdict.REVIEW:
        assert decision.queue is not None and decision.category is not None
        return decision.queue, decision.category, decision.severity
    if decision.also_review is not None and decision.also_review_queue is not None:
        return decision.also_review_queue, decision.also_review.category, decision.also_review.severity
    return None


def _intake_change(decision: Decision) -> Change:
    """Refused (an automatic removal), held for review, or published (with limits when automatic actions restrict).

    A review rule's actions are what the moderator will be offered, so nothing is applied before the review.
    """
    if decision.verdict is Verdict.BLOCK and Action.REMOVE in decision.actions:
        return Change.BLOCK
    if decision.verdict is Verdict.REVIEW:
        return Change.PUBLISH_LIMITED if decision.while_in_review else Change.HOLD
    return Change.ALLOW


# --- actions, strikes and statements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A restriction to carry out: by the policy at upload, or by a moderator."""

    actions: list[Action]
    category: Category
    territories: list[str]
    facts: str
    decided_by: str
    automated_detection: bool
    #: Decided by the policy alone, no human involved.
    automated: bool
    source: str
    #: How the content's status moves; ``None`` when it is already set (an upload blocked at intake).
    change: Change | None
    #: No statement of reasons now: an order forbids telling the uploader (TCO Art. 11(3)); it is issued later.
    withhold_statement: bool = False


def _apply(mod: Moderation, session: Session, item: ContentItem, outcome: Outcome) -> str | None:
    """Carry out ``outcome``: status, strikes, suspension, the statement of reasons and the platform webhook."""
    subject = content_subject(item.content_id)
    if outcome.change is not None:
        item.status = next_status(ContentStatus(item.status), outcome.change).value
    item.restrictions = sorted(set(item.restrictions) | set(content_restrictions(outcome.actions)))
    item.category = outcome.category.value
    item.updated_at = mod.clock.now()
    actions = list(outcome.actions) + _strike(mod, session, item.account_id, outcome)
    _log(session, subject, EventKind.ACTIONS_APPLIED, outcome.decided_by, mod.clock,
         {"actions": [a.value for a in actions], "territories": outcome.territories, "status": item.status})
    puid = None
    if set(actions) - {Action.STRIKE} and not outcome.withhold_statement:
        puid = _issue_statement(mod, session, item, actions, outcome)
    _notify(mod, session, item, "moderation.action", puid, actions=actions, territories=outcome.territories)
    return puid


def _issue_statement(mod: Moderation, session: Session, item: ContentItem, actions: Sequence[Action],
                     outcome: Outcome) -> str:
    puid = statements.new_puid()
    body = statements.build(
        puid=puid, category=outcome.category, actions=list(actions), content_type=item.content_type,
        content_date=item.created_at.date(), decided_at=mod.clock.now(), facts=outcome.facts,
        source_type=outcome.source, automated_detection=outcome.automated_detection,
        automated_decision=outcome.automated, territories=outcome.territories)
    session.add(StatementOfReasons(puid=puid, content_id=item.content_id, account_id=item.account_id,
                                   decided_by=outcome.decided_by, body=body, created_at=mod.clock.now()))
    _log(session, content_subject(item.content_id), EventKind.STATEMENT_ISSUED, outcome.decided_by, mod.clock,
         {"puid": puid})
    return puid


def _strike(mod: Moderation, session: Session, account_id: str, outcome: Outcome) -> list[Action]:
    """Count a strike if the outcome gives one; returns the suspension it leads to, if any."""
    if Action.STRIKE not in outcome.actions:
        return []
    account = session.get(Account, account_id) or Account(account_id=account_id, strikes=0, status="active")
    session.add(account)
    account.strikes += 1
    _log(session, f"account:{account_id}", EventKind.STRIKE, outcome.decided_by, mod.clock,
         {"strikes": account.strikes})
    suspension = strike_outcome(mod.policy, account.strikes)
    explicit = [a for a in outcome.actions if a in (Action.SUSPEND_TEMPORARILY, Action.SUSPEND_PERMANENTLY)]
    chosen = suspension or (explicit[-1] if explicit else None)
    if chosen is None:
        return []
    if chosen is Action.SUSPEND_PERMANENTLY:
        account.status, account.suspended_until = "terminated", None
    else:
        account.status = "suspended"
        account.suspended_until = mod.clock.now() + dt.timedelta(days=mod.policy.strikes.temporary_suspension_days)
    _log(session, f"account:{account_id}", EventKind.SUSPENDED, outcome.decided_by, mod.clock,
         {"action": chosen.value,
          "until": account.suspended_until.isoformat() if account.suspended_until else None})
    return [chosen] if chosen not in outcome.actions else []


def _notify(mod: Moderation, session: Session, item: ContentItem, kind: str, puid: str | None, *,
            actions: Sequence[Action] = (), territories: Sequence[str] = ()) -> None:
    """Tell the platform through the outbox, in the same transaction as the change it reports."""
    if mod.webhook_url is None:
        return
    event_id = session.scalar(select(ModerationEvent.id)
                              .where(ModerationEvent.subject == content_subject(item.content_id))
                              .order_by(ModerationEvent.id.desc()).limit(1))
    payload: dict[str, object] = {
        "content_id": item.content_id, "account_id": item.account_id, "status": item.status,
        "restrictions": item.restrictions, "actions": [a.value for a in actions], "territories": list(territories),
        "statement_puid": puid, "event_id": event_id,
    }
    enqueue(session, kind=kind, destination=mod.webhook_url, payload=payload,
            idempotency_key=f"{kind}:{item.content_id}:{event_id}", clock=mod.clock)


# --- notices and views --------------------------------------------------------------------------------------------


def get_item(session: Session, content_id: str) -> ContentItem:
    item = session.get(ContentItem, content_id)
    if item is None:
        raise ContentNotFound(f"no content {content_id!r} has been submitted")
    return item


def restricted_content(mod: Moderation, session: Session, item: ContentItem) -> bool:
    """Suspected child sexual abuse material: its category, a case in a restricted queue, or a restricted match."""
    if item.category == Category.CSAM.value:
        return True
    queues = session.scalars(select(Case.queue).where(Case.content_id == item.content_id)).all()
    if any(mod.restricted_queue(q) for q in queues):
        return True
    for judged in session.scalars(select(ModerationEvent.data).where(  # at upload, and any conflicting resubmission
            ModerationEvent.subject == content_subject(item.content_id),
            ModerationEvent.kind.in_([EventKind.VERDICT.value, EventKind.RESUBMITTED.value]))):
        matches = judged.get("matches") if isinstance(judged, dict) else None
        if isinstance(matches, list) and any(isinstance(m, dict) and m.get("restricted") for m in matches):
            return True
    return False


def may_see(mod: Moderation, session: Session, item: ContentItem, viewer: Principal) -> bool:
    return viewer.role in CHILD_SAFETY_ROLES or not restricted_content(mod, session, item)


def _open_case(mod: Moderation, session: Session, item: ContentItem, *, category: Category, reason: CaseReason,
               severity: int, queue: str | None = None, excluded_reviewer: str | None = None,
               restricted: bool | None = None) -> Case:
    """Open (or raise) a case about ``item`` where the policy routes it. Content suspected to be child sexual
    abuse material always goes to the restricted queue, and takes every other open case about it along."""
    queue = queue or mod.queue_for(category, item, severity)
    if restricted is None:  # the caller may know already (intake has its matches in hand): no second look
        restricted = restricted_content(mod, session, item)
    if not mod.restricted_queue(queue) and restricted:
        queue, category = mod.queue_for(Category.CSAM, item, severity), Category.CSAM
    case = review.open_or_raise(session, content_id=item.content_id, queue=queue, category=category.value,
                                reason=reason, severity=severity, reach=item.views,
                                sla_minutes=mod.sla_minutes(queue), clock=mod.clock,
                                excluded_reviewer=excluded_reviewer, takes_over=mod.restricted_queue(queue))
    _log(session, content_subject(item.content_id), EventKind.CASE_OPENED, "system", mod.clock,
         {"case_id": case.id, "queue": case.queue, "reason": case.reason})
    return case


def record_notice(mod: Moderation, content_id: str, *, category: Category, explanation: str, trusted_flagger: bool,
                  notifier: str, actor: Principal, external_id: str | None = None) -> int | None:
    """A report opens a case (or raises the open one); trusted flaggers' reports rank higher (DSA Art. 22).

    ``external_id`` makes it idempotent: a notice recorded under it before is not recorded again (``None``).
    """
    try:
        with mod.db.write() as session:
            item = get_item(session, content_id)
            if external_id is not None and session.scalar(select(ModerationEvent.id).where(
                    ModerationEvent.external_id == external_id)) is not None:
                return None
            _log(session, content_subject(content_id), EventKind.NOTICE, actor.actor, mod.clock,
                 {"category": category.value, "explanation": explanation[:2000], "trusted_flagger": trusted_flagger,
                  "notifier": notifier}, external_id=external_id)
            return _open_case(mod, session, item, category=category, reason=CaseReason.NOTICE,
                              severity=4 if trusted_flagger else 2).id
    except IntegrityError:
        if external_id is None:
            raise
        return None  # recorded at the same moment by another worker


def record_metrics(mod: Moderation, content_id: str, *, views: int, shares: int, actor: Principal) -> list[int]:
    """Update reach; each view threshold of the policy crossed sends live content back for review, once."""
    with mod.db.write() as session:
        item = get_item(session, content_id)
        before = item.views
        item.views, item.shares = max(item.views, views), max(item.shares, shares)
        crossed = views_crossed(mod.policy, before, item.views)
        live = item.status in (ContentStatus.PUBLISHED.value, ContentStatus.RESTRICTED.value)
        for threshold in crossed if live else []:
            _log(session, content_subject(content_id), EventKind.VIEWS_THRESHOLD, actor.actor, mod.clock,
                 {"threshold": threshold, "views": item.views, "shares": item.shares},
                 external_id=f"views:{content_id}:{threshold}")
            category = Category(item.category) if item.category else Category.BORDERLINE
            _open_case(mod, session, item, category=category, reason=CaseReason.VIEWS, severity=3)
        return crossed if live else []


# --- decisions and appeals ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewDecision:
    violation: bool
    actions: list[Action]
    category: Category | None = None
    territories: list[str] = field(default_factory=list)
    note: str = ""


def may_review(mod: Moderation, queue: str, reviewer: Principal) -> bool:
    return not mod.restricted_queue(queue) or reviewer.role in CHILD_SAFETY_ROLES


def takes_escalations(mod: Moderation, queue: str, reviewer: Principal) -> bool:
    """Senior moderators take escalations; in a restricted queue, the child-safety specialists who alone see it."""
    if mod.restricted_queue(queue):
        return reviewer.role in CHILD_SAFETY_ROLES
    return reviewer.role in ESCALATIONS


def claim_next(mod: Moderation, queue: str, reviewer: Principal, *, passing: Sequence[int] = ()) -> Case | None:
    """The next case of ``queue`` for ``reviewer``; ``passing`` are cases they skipped (``review.claim_next``)."""
    if not may_review(mod, queue, reviewer):
        raise NotAllowed(f"queue {queue} is restricted to child-safety specialists")
    return review.claim_next(mod.db, queues=[queue], reviewer=reviewer.actor, clock=mod.clock,
                             escalations=takes_escalations(mod, queue, reviewer), passing=passing)


def escalate(mod: Moderation, case_id: int, note: str, *, reviewer: Principal) -> Case:
    """Hand a claimed case up to senior reviewers, with the reason; it keeps its place in the queue."""
    if not note.strip():
        raise InvalidDecision("say why the case needs a senior reviewer")
    with mod.db.write() as session:
        case = review.escalate(session, case_id, reviewer=reviewer.actor, note=note, clock=mod.clock)
        _log(session, content_subject(case.content_id), EventKind.CASE_ESCALATED, reviewer.actor, mod.clock,
             {"case_id": case_id, "note": note[:2000]})
        return case


def decide(mod: Moderation, case_id: int, decision: ReviewDecision, *, reviewer: Principal) -> dict[str, object]:
    """A moderator's decision on a claimed case; for an appeal case, ``violation`` means the decision stands."""
    if Action.DISABLE_IN_TERRITORIES in decision.actions and not decision.territories:
        raise InvalidDecision("disable_in_territories needs territories")
    try:
        return _decide(mod, case_id, decision, reviewer)
    except InvalidTransition as exc:  # rolled back: nothing of the decision was written
        raise InvalidDecision(str(exc)) from None


def _decide(mod: Moderation, case_id: int, decision: ReviewDecision, reviewer: Principal) -> dict[str, object]:
    with mod.db.write() as session:
        case = review.get_case(session, case_id)
        if not may_review(mod, case.queue, reviewer):
            raise NotAllowed(f"queue {case.queue} is restricted to child-safety specialists")
        if decision.violation and not decision.actions and case.reason != CaseReason.APPEAL.value:
            raise InvalidDecision("a violation needs at least one action")
        case = review.finish(session, case_id, reviewer=reviewer.actor, clock=mod.clock)
        item = get_item(session, case.content_id)
        category = decision.category or Category(case.category)
        _log(session, content_subject(item.content_id), EventKind.DECISION, reviewer.actor, mod.clock,
             {"case_id": case_id, "violation": decision.violation, "actions": [a.value for a in decision.actions],
              "category": category.value, "note": decision.note[:2000], "reason": case.reason})
        if case.reason == CaseReason.APPEAL.value:
            return _decide_appeal(mod, session, item, case, upheld=decision.violation, reviewer=reviewer)
        puid = None
        if decision.violation:
            source = statements.Source.NOTICE if case.reason == CaseReason.NOTICE.value \
                else statements.Source.OWN_INITIATIVE
            puid = _apply(mod, session, item, Outcome(
                actions=decision.actions, category=category, territories=decision.territories,
                facts=decision.note or f"Reviewed by a moderator: {category.value.replace('_', ' ')}.",
                decided_by=reviewer.actor, automated=False, source=source,
                automated_detection=case.reason == CaseReason.UPLOAD.value,
                change=_violation_change(item, decision.actions)))
            _close_moot_cases(mod, session, item, by=f"case:{case_id}", keep=case_id)
        else:
            if _clears(item, case):
                item.status = next_status(ContentStatus(item.status), Change.CLEAR).value
                item.restrictions = []
            _notify(mod, session, item, "moderation.cleared", None)
        return {"case_id": case_id, "content_id": item.content_id, "status": item.status, "statement_puid": puid}


def confirmed_violation(session: Session, content_id: str) -> ModerationEvent | None:
    """The latest human decision on the content, if it found a violation and nothing reinstated the content since
    (an upheld appeal confirms it)."""
    for event in session.scalars(select(ModerationEvent).where(
            ModerationEvent.subject == content_subject(content_id),
            ModerationEvent.kind.in_([EventKind.DECISION.value, EventKind.REINSTATED.value]))
            .order_by(ModerationEvent.id.desc())):
        if event.kind == EventKind.REINSTATED.value:
            return None
        if event.data.get("reason") == CaseReason.APPEAL.value:
            continue  # an upheld appeal: the decision it upheld is further back
        return event if event.data.get("violation") else None
    return None


@dataclass(frozen=True)
class Curated:
    bank: str
    added: list[int]
    #: Signals not added, and why (already in the bank, too weak to match, ...).
    skipped: list[str]


def curate(mod: Moderation, content_id: str, bank_name: str, *, actor: Principal) -> Curated:
    """Add a human-confirmed violation's media to a bank, in one step: future copies are caught at upload.

    One transaction: the entries, their change-log rows and the ``content.curated`` event, or nothing. Suspected
    child sexual abuse material goes only into restricted banks, and only by child-safety roles.
    """
    with mod.db.write() as session:
        item = get_item(session, content_id)
        decision = confirmed_violation(session, content_id)
        if decision is None:
            raise InvalidDecision("only media a moderator confirmed as a violation can be added to a bank")
        try:  # a restricted bank the actor may not see is refused as one that does not exist
            bank = bank_services.visible_bank(session, bank_name, actor)
        except BankError as exc:
            raise CurationRefused(str(exc), exc.status) from None
        if restricted_content(mod, session, item):
            if actor.role not in CHILD_SAFETY_ROLES:
                raise NotAllowed("this content is restricted to child-safety specialists")
            if not bank.restricted:
                raise CurationRefused("suspected child sexual abuse material goes only into restricted banks", 422)
        category = str(decision.data.get("category") or item.category)
        added: list[int] = []
        skipped: list[str] = []
        for signal in item.signals:
            outcome = _bank_signal(mod, session, bank, signal, category, content_id, actor)
            if isinstance(outcome, int):
                added.append(outcome)
            else:
                skipped.append(outcome)
        if not added and not skipped:
            raise InvalidDecision("the content has no signal a bank can hold")
        _log(session, content_subject(content_id), EventKind.CURATED, actor.actor, mod.clock,
             {"bank": bank_name, "entry_ids": added, "skipped": skipped})
        return Curated(bank_name, added, skipped)


def _bank_signal(mod: Moderation, session: Session, bank: Bank, signal: dict[str, object], category: str,
                 content_id: str, actor: Principal) -> int | str:
    """The new entry's id, or why the signal was not added. A bank closed to the actor stops the whole step."""
    signal_type, value = str(signal.get("signal_type", "")), str(signal.get("value", ""))
    quality = signal.get("quality")
    result = HashResult(signal_type, value, quality if isinstance(quality, int) else None)
    try:
        if not registry.get(signal_type).matchable(result):
            return f"{signal_type}: too weak to match (quality {quality})"
        entry = NewEntry.parse(signal_type, value, category, source=f"content:{content_id}")
        return bank_services.add_entry_in(mod.db, session, bank, entry, actor=actor, clock=mod.clock).id
    except (InvalidEntry, registry.UnknownSignalType) as exc:
        return f"{signal_type}: {exc}"
    except DuplicateEntry:
        return f"{signal_type}: already in {bank.name}"
    except BankError as exc:
        raise CurationRefused(str(exc), exc.status) from None


def _violation_change(item: ContentItem, actions: Sequence[Action]) -> Change | None:
    """How a confirmed violation moves the content. Content already down stays down (the decision still records
    its actions, strikes and statement); held content needs a content action, or it would wait forever."""
    change = change_for_actions(actions)
    status = ContentStatus(item.status)
    if status in (ContentStatus.BLOCKED, ContentStatus.REMOVED):
        return None
    if change is None and status is ContentStatus.HELD:
        raise InvalidDecision("held content needs a content action (remove or a restriction); "
                              "account actions alone would leave it held")
    return change


def _clears(item: ContentItem, case: Case) -> bool:
    """Whether "no violation" lifts the content's limits: a held upload, or one published with limits while this
    upload case waited. Automatic blocks, earlier human decisions and removals are not what the case was about."""
    status = ContentStatus(item.status)
    if status is ContentStatus.HELD:
        return True
    return status is ContentStatus.RESTRICTED and case.reason == CaseReason.UPLOAD.value \
        and item.verdict == Verdict.REVIEW.value


def file_appeal(mod: Moderation, statement_puid: str, text: str, *, actor: Principal) -> Appeal:
    """The uploader contests a decision; the case goes to a moderator other than the one who decided."""
    with mod.db.write() as session:
        statement = session.get(StatementOfReasons, statement_puid)
        if statement is None:
            raise StatementNotFound(f"no statement of reasons {statement_puid!r}")
        item = get_item(session, statement.content_id)
        case = _open_case(mod, session, item, category=Category(item.category or Category.BORDERLINE.value),
                          reason=CaseReason.APPEAL, severity=3,
                          queue=None if item.category else mod.policy.default_queue,
                          excluded_reviewer=statement.decided_by)
        appeal = Appeal(content_id=item.content_id, statement_puid=statement_puid, account_id=statement.account_id,
                        text=text[:5000], state="open", case_id=case.id, filed_at=mod.clock.now())
        session.add(appeal)
        session.flush()
        _log(session, content_subject(item.content_id), EventKind.APPEAL_FILED, actor.actor, mod.clock,
             {"appeal_id": appeal.id, "case_id": case.id, "statement_puid": statement_puid})
        return appeal


def _decide_appeal(mod: Moderation, session: Session, item: ContentItem, case: Case, *, upheld: bool,
                   reviewer: Principal) -> dict[str, object]:
    appeal = session.scalar(select(Appeal).where(Appeal.case_id == case.id))
    assert appeal is not None
    appeal.state = "upheld" if upheld else "reversed"
    appeal.decided_at = mod.clock.now()
    _log(session, content_subject(item.content_id), EventKind.APPEAL_DECIDED, reviewer.actor, mod.clock,
         {"appeal_id": appeal.id, "outcome": appeal.state})
    if not upheld:
        item.status = next_status(ContentStatus(item.status), Change.REINSTATE).value
        item.restrictions = []
        _log(session, content_subject(item.content_id), EventKind.REINSTATED, reviewer.actor, mod.clock,
             {"appeal_id": appeal.id})
        _notify(mod, session, item, "moderation.reinstated", appeal.statement_puid)
    return {"case_id": case.id, "content_id": item.content_id, "status": item.status, "appeal": appeal.state}


#: ``source_type`` of a statement that follows an authority's order (DSA Transparency Database value).
ORDER_SOURCE = "SOURCE_TYPE_OTHER_NOTIFICATION"


def _order_outcome(order: str, facts: str, territories: Sequence[str], *, withhold_statement: bool = False
                   ) -> Outcome:
    actions = [Action.DISABLE_IN_TERRITORIES] if territories else [Action.REMOVE]
    return Outcome(actions=actions, category=Category.TERRORIST_CONTENT, territories=list(territories), facts=facts,
                   decided_by=f"order:{order}", automated_detection=False, automated=True, source=ORDER_SOURCE,
                   change=change_for_actions(actions), withhold_statement=withhold_statement)


def enforce_order(mod: Moderation, session: Session, content_id: str, *, order: str, facts: str,
                  territories: Sequence[str] = (), reinstate: bool = False,
                  withhold_statement: bool = False) -> bool:
    """Carry out a removal order (TCO Art. 3) in the caller's transaction, through the same actions as moderation.

    Removes the content, or disables it in ``territories`` when given; ``reinstate`` restores it (the order was
    found to infringe the Regulation). ``withhold_statement``: the order forbids telling the uploader for now
    (Art. 11(3)); the platform is told to act, with no statement, and ``issue_order_statement`` follows later.
    Returns whether the content changed: content missing, already down (or already up, for a reinstatement) is
    left as it is, so an order reinstates only what it removed. The caller guards against doing one order twice.
    """
    item = session.get(ContentItem, content_id)
    if item is None:
        return False
    if reinstate:
        if ContentStatus(item.status) not in (ContentStatus.REMOVED, ContentStatus.RESTRICTED, ContentStatus.BLOCKED):
            return False
        item.status = next_status(ContentStatus(item.status), Change.REINSTATE).value
        item.restrictions = []
        item.updated_at = mod.clock.now()
        _log(session, content_subject(content_id), EventKind.REINSTATED, f"order:{order}", mod.clock,
             {"order": order})
        _notify(mod, session, item, "moderation.reinstated", None)
        return True
    if ContentStatus(item.status) in (ContentStatus.REMOVED, ContentStatus.BLOCKED):
        return False
    _apply(mod, session, item, _order_outcome(order, facts, territories, withhold_statement=withhold_statement))
    _close_moot_cases(mod, session, item, by=f"order:{order}")
    return True


def _close_moot_cases(mod: Moderation, session: Session, item: ContentItem, *, by: str,
                      keep: int | None = None) -> None:
    """Once content is down, its other waiting cases have nothing left to decide: close them, with an event saying
    who took it down. Cases in restricted queues stay open: a child-safety specialist still confirms and reports."""
    if ContentStatus(item.status) not in (ContentStatus.REMOVED, ContentStatus.BLOCKED):
        return
    queues = [q.name for q in mod.policy.queues if not q.restricted]
    for case_id in review.close_moot(session, item.content_id, by=by, queues=queues, clock=mod.clock, keep=keep):
        _log(session, content_subject(item.content_id), EventKind.CASE_CLOSED, "system", mod.clock,
             {"case_id": case_id, "removed_by": by, "status": item.status})


def issue_order_statement(mod: Moderation, session: Session, content_id: str, *, order: str, facts: str,
                          territories: Sequence[str] = ()) -> str | None:
    """The statement of reasons withheld while an order's non-disclosure period ran, issued once it has ended."""
    item = session.get(ContentItem, content_id)
    if item is None:
        return None
    outcome = _order_outcome(order, facts, territories)
    return _issue_statement(mod, session, item, outcome.actions, outcome)


@dataclass
class ShadowStat:
    """How a shadow rule would have done: how often it held, and how often a moderator agreed with it."""

    rule: str
    would_be: str
    held: int = 0
    #: Of the uploads it held on, how many a moderator has since decided, and how many of those the moderator
    #: decided as the rule would have (a violation for block or review, none for allow).
    reviewed: int = 0
    agreed: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.reviewed if self.reviewed else None


def visible_rules(mod: Moderation, viewer: Principal) -> list[Rule]:
    """The policy's rules a viewer may read: rules about child sexual abuse material, or routed to a restricted
    queue, are for child-safety roles, like the queue itself."""
    policy = mod.policy
    if viewer.role in CHILD_SAFETY_ROLES:
        return list(policy.rules)
    return [r for r in policy.rules if r.category is not Category.CSAM and not policy.queue_for(r).restricted]


def shadow_report(session: Session) -> list[ShadowStat]:
    """Each shadow rule's record, to judge whether to enforce it (the event log is the only source)."""
    stats: dict[str, ShadowStat] = {}
    held_on: dict[str, list[ShadowStat]] = {}
    for event in session.scalars(select(ModerationEvent).where(ModerationEvent.kind == EventKind.SHADOW_VERDICT.value)
                                 .order_by(ModerationEvent.id)):
        rule = str(event.data.get("rule"))
        stat = stats.setdefault(rule, ShadowStat(rule, str(event.data.get("would_be"))))
        stat.held += 1
        held_on.setdefault(event.subject, []).append(stat)
    latest: dict[str, bool] = {}  # the final human word: a decision, unless an appeal reversed it
    for subject_chunk in _chunks(list(held_on), 500):
        for event in session.scalars(select(ModerationEvent).where(
                ModerationEvent.kind.in_([EventKind.DECISION.value, EventKind.REINSTATED.value]),
                ModerationEvent.subject.in_(subject_chunk),
        ).order_by(ModerationEvent.id)):
            if event.kind == EventKind.REINSTATED.value:
                latest[event.subject] = False
            elif event.data.get("reason") != CaseReason.APPEAL.value:
                latest[event.subject] = bool(event.data.get("violation"))
    for subject, violation in latest.items():
        for stat in held_on[subject]:
            stat.reviewed += 1
            stat.agreed += violation == (stat.would_be != Verdict.ALLOW.value)
    return sorted(stats.values(), key=lambda s: s.rule)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def history(session: Session, content_id: str) -> list[ModerationEvent]:
    return list(session.scalars(select(ModerationEvent).where(ModerationEvent.subject == content_subject(content_id))
                                .order_by(ModerationEvent.id)))


def decided_texts(session: Session) -> list[LabelledText]:
    """Each content item's latest moderator decision, with its text: what ``bastion classifier train`` learns from.

    On an appeal case ``violation`` means the first decision stands, so the latest decision is always the label.
    """
    latest = (select(func.max(ModerationEvent.id)).where(ModerationEvent.kind == EventKind.DECISION.value)
              .group_by(ModerationEvent.subject))
    rows = session.execute(
        select(ContentItem.content_id, ContentItem.text, ModerationEvent.data)
        .join(ModerationEvent, ModerationEvent.subject == literal("content:") + ContentItem.content_id)
        .where(ModerationEvent.id.in_(latest), ContentItem.text != "").order_by(ModerationEvent.id))
    return [LabelledText(content_id, text, str(data.get("category", "")), bool(data.get("violation")))
            for content_id, text, data in rows]
