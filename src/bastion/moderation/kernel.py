"""What every moderation use case shares: the ``Moderation`` service object, the event writer, the content lookup,
who may see restricted content, opening a case, and telling the platform.

The use cases are one module each, named for them: ``intake`` (an upload's verdict), ``notices`` (reports and
reach), ``decisions`` (claiming and deciding cases), ``appeals``, ``actions`` (carrying out a restriction, orders
included), ``curation`` (confirmed media into a bank). ``queries`` is the read API other domains call. Every step
writes its events, the projections (content status, account strikes) and any message to the platform in one
transaction; messages leave through the outbox after commit. ``events.next_status`` is the only place a status moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.classifiers.interfaces import Classifier
from bastion.core import events as event_log
from bastion.core.auth.roles import CHILD_SAFETY_ROLES, ESCALATIONS
from bastion.core.auth.services import Principal
from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.outbox.services import enqueue
from bastion.core.sealing import Sealer
from bastion.matching.matcher import Matcher
from bastion.moderation.events import CaseOpened, EventKind, PlatformMessage, Resubmitted, VerdictGiven
from bastion.moderation.interfaces import ContentNotFound
from bastion.moderation.models import ContentItem, ModerationEvent
from bastion.moderation.policy import Action, Category, ContentType, Policy, PolicyFile, Routing
from bastion.review import services as review
from bastion.review.models import Case, CaseReason


class IntakeAdjuster(Protocol):
    """What something above moderation may change in intake while it lasts (a crisis: ``feed/crisis.py``, wired in
    ``web/app.py``), so that moderation never imports it. Both are called on every upload: keep them cheap."""

    def policy(self, policy: Policy) -> Policy:
        """The policy to judge uploads with now (the one given when nothing applies; a derived copy otherwise)."""
        ...

    def severity(self, category: str, severity: int) -> int:
        """A new case's severity (1-5): raised for the categories a crisis is about, else as it was."""
        ...


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
    #: Changes intake while a crisis lasts (lower thresholds, crisis bank rule, case priority); ``None``: nothing.
    adjuster: IntakeAdjuster | None = None
    #: Told of each statement of reasons in the transaction that issues it (the transparency domain queues it for
    #: the DSA Transparency Database there, so a crash loses neither); ``None`` when submission is off.
    on_statement: Callable[[Session, str], None] | None = None

    @property
    def policy(self) -> Policy:
        source = self.policy_source
        return source.policy if isinstance(source, PolicyFile) else source

    @property
    def intake_policy(self) -> Policy:
        """The policy uploads are judged with now: the file's, as the adjuster (a crisis) changes it."""
        return self.adjuster.policy(self.policy) if self.adjuster is not None else self.policy

    def case_severity(self, category: Category, severity: int) -> int:
        if self.adjuster is None:
            return severity
        return max(1, min(5, self.adjuster.severity(category.value, severity)))

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


def log(mod: Moderation, session: Session, subject: str, kind: EventKind, actor: str, data: BaseModel,
        external_id: str | None = None) -> ModerationEvent:
    """Append one moderation event in the caller's transaction (flushed with the rest: no round trip per event)."""
    return event_log.record(session, ModerationEvent, subject=subject, kind=kind, actor=actor, at=mod.clock.now(),
                            data=data, external_id=external_id)


def content_subject(content_id: str) -> str:
    return f"content:{content_id}"


def account_subject(account_id: str) -> str:
    return f"account:{account_id}"


def get_item(session: Session, content_id: str) -> ContentItem:
    item = session.get(ContentItem, content_id)
    if item is None:
        raise ContentNotFound(f"no content {content_id!r} has been submitted")
    return item


def judged_restricted(events: Sequence[ModerationEvent]) -> bool:
    """Whether a verdict or a conflicting resubmission among ``events`` matched a restricted bank."""
    for event in events:
        if event.kind == EventKind.VERDICT.value:
            matches = event_log.payload(event, VerdictGiven).matches
        elif event.kind == EventKind.RESUBMITTED.value:
            matches = event_log.payload(event, Resubmitted).matches
        else:
            continue
        if any(m.restricted for m in matches):
            return True
    return False


def restricted_content(mod: Moderation, session: Session, item: ContentItem) -> bool:
    """Suspected child sexual abuse material: its category, a case in a restricted queue, or a restricted match."""
    if item.category == Category.CSAM.value:
        return True
    queues = session.scalars(select(Case.queue).where(Case.content_id == item.content_id)).all()
    if any(mod.restricted_queue(q) for q in queues):
        return True
    judged = session.scalars(select(ModerationEvent).where(  # at upload, and any conflicting resubmission
        ModerationEvent.subject == content_subject(item.content_id),
        ModerationEvent.kind.in_([EventKind.VERDICT.value, EventKind.RESUBMITTED.value]))).all()
    return judged_restricted(judged)


def restricted_among(mod: Moderation, session: Session, items: Sequence[ContentItem]) -> set[str]:
    """``restricted_content`` for many items at once (a list page): the ids of those that are, in three queries."""
    found = {i.content_id for i in items if i.category == Category.CSAM.value}
    rest = [i.content_id for i in items if i.content_id not in found]
    if not rest:
        return found
    for content_id, queue in session.execute(select(Case.content_id, Case.queue).where(Case.content_id.in_(rest))):
        if mod.restricted_queue(queue):
            found.add(content_id)
    subjects = {content_subject(c): c for c in rest if c not in found}
    judged: dict[str, list[ModerationEvent]] = {}
    if subjects:
        for event in session.scalars(select(ModerationEvent).where(
                ModerationEvent.subject.in_(list(subjects)),
                ModerationEvent.kind.in_([EventKind.VERDICT.value, EventKind.RESUBMITTED.value]))):
            judged.setdefault(subjects[event.subject], []).append(event)
    return found | {c for c, events in judged.items() if judged_restricted(events)}


def may_see(mod: Moderation, session: Session, item: ContentItem, viewer: Principal) -> bool:
    return viewer.role in CHILD_SAFETY_ROLES or not restricted_content(mod, session, item)


def may_review(mod: Moderation, queue: str, reviewer: Principal) -> bool:
    return not mod.restricted_queue(queue) or reviewer.role in CHILD_SAFETY_ROLES


def takes_escalations(mod: Moderation, queue: str, reviewer: Principal) -> bool:
    """Senior moderators take escalations; in a restricted queue, the child-safety specialists who alone see it."""
    if mod.restricted_queue(queue):
        return reviewer.role in CHILD_SAFETY_ROLES
    return reviewer.role in ESCALATIONS


def open_case(mod: Moderation, session: Session, item: ContentItem, *, category: Category, reason: CaseReason,
              severity: int, queue: str | None = None, excluded_reviewer: str | None = None,
              restricted: bool | None = None) -> Case:
    """Open (or raise) a case about ``item`` where the policy routes it. Content suspected to be child sexual
    abuse material always goes to the restricted queue, and takes every other open case about it along."""
    severity = mod.case_severity(category, severity)
    queue = queue or mod.queue_for(category, item, severity)
    if restricted is None:  # the caller may know already (intake has its matches in hand): no second look
        restricted = restricted_content(mod, session, item)
    if not mod.restricted_queue(queue) and restricted:
        queue, category = mod.queue_for(Category.CSAM, item, severity), Category.CSAM
    case = review.open_or_raise(session, content_id=item.content_id, queue=queue, category=category.value,
                                reason=reason, severity=severity, reach=item.views,
                                sla_minutes=mod.sla_minutes(queue), clock=mod.clock,
                                excluded_reviewer=excluded_reviewer, takes_over=mod.restricted_queue(queue))
    log(mod, session, content_subject(item.content_id), EventKind.CASE_OPENED, "system",
        CaseOpened(case_id=case.id, queue=case.queue, reason=case.reason))
    return case


def notify(mod: Moderation, session: Session, item: ContentItem, kind: PlatformMessage, puid: str | None, *,
           actions: Sequence[Action] = (), territories: Sequence[str] = (), lifted: Sequence[Action] = ()) -> None:
    """Tell the platform through the outbox, in the same transaction as the change it reports. ``lifted``: the
    actions an appeal undid while ``actions`` stand (a partial reversal; sent only then)."""
    if mod.webhook_url is None:
        return
    event_id = session.scalar(select(ModerationEvent.id)
                              .where(ModerationEvent.subject == content_subject(item.content_id))
                              .order_by(ModerationEvent.id.desc()).limit(1))
    message: dict[str, object] = {
        "content_id": item.content_id, "account_id": item.account_id, "status": item.status,
        "restrictions": item.restrictions, "actions": [a.value for a in actions], "territories": list(territories),
        "statement_puid": puid, "event_id": event_id,
    }
    if lifted:
        message["lifted"] = [a.value for a in lifted]
    enqueue(session, kind=kind, destination=mod.webhook_url, payload=message,
            idempotency_key=f"{kind}:{item.content_id}:{event_id}", clock=mod.clock)
