"""Human review: claiming the next case, escalating it, and deciding it (an appeal case goes to ``appeals``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from bastion.core.auth.services import Principal
from bastion.moderation import statements
from bastion.moderation.actions import Outcome, apply, close_moot_cases
from bastion.moderation.appeals import decide_appeal
from bastion.moderation.events import (
    AppealOutcome,
    CaseEscalated,
    CaseMoved,
    Change,
    ContentStatus,
    Decided,
    EventKind,
    InvalidTransition,
    PlatformMessage,
    change_for_actions,
    next_status,
)
from bastion.moderation.interfaces import InvalidDecision, NotAllowed
from bastion.moderation.kernel import (
    Moderation,
    content_subject,
    get_item,
    log,
    may_review,
    notify,
    takes_escalations,
)
from bastion.moderation.models import ContentItem
from bastion.moderation.policy import Action, Category, Verdict
from bastion.review import services as review
from bastion.review.models import Case, CaseReason, CaseState


@dataclass(frozen=True)
class ReviewDecision:
    """A moderator's decision. On an appeal case, ``appeal_outcome`` says how it ends (when not given, ``violation``
    means upheld, its absence reversed); for ``partly_reversed``, ``actions`` are the contested actions that stand."""

    violation: bool
    actions: list[Action]
    category: Category | None = None
    territories: list[str] = field(default_factory=list)
    note: str = ""
    appeal_outcome: AppealOutcome | None = None

    def outcome_of_appeal(self) -> AppealOutcome:
        if self.appeal_outcome is not None:
            return self.appeal_outcome
        return AppealOutcome.UPHELD if self.violation else AppealOutcome.REVERSED


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
        log(mod, session, content_subject(case.content_id), EventKind.CASE_ESCALATED, reviewer.actor,
            CaseEscalated(case_id=case_id, note=note[:2000]))
        return case


def decide(mod: Moderation, case_id: int, decision: ReviewDecision, *, reviewer: Principal) -> dict[str, object]:
    """A moderator's decision on a claimed case; for an appeal case, ``violation`` means the decision stands."""
    partial = decision.appeal_outcome is AppealOutcome.PARTLY_REVERSED  # standing actions keep their territories
    if Action.DISABLE_IN_TERRITORIES in decision.actions and not decision.territories and not partial:
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
        appeal = case.reason == CaseReason.APPEAL.value
        if decision.violation and not decision.actions and not appeal:
            raise InvalidDecision("a violation needs at least one action")
        if decision.appeal_outcome is not None and not appeal:
            raise InvalidDecision("an appeal outcome is for appeal cases only")
        outcome = decision.outcome_of_appeal() if appeal else None
        violation = outcome is not AppealOutcome.REVERSED if outcome is not None else decision.violation
        case = review.finish(session, case_id, reviewer=reviewer.actor, clock=mod.clock)
        item = get_item(session, case.content_id)
        category = decision.category or Category(case.category)
        log(mod, session, content_subject(item.content_id), EventKind.DECISION, reviewer.actor, Decided(
            case_id=case_id, violation=violation, actions=[a.value for a in decision.actions],
            category=category.value, note=decision.note[:2000], reason=case.reason))
        if outcome is not None:
            return decide_appeal(mod, session, item, case, outcome=outcome, standing=decision.actions,
                                 note=decision.note[:2000], reviewer=reviewer)
        puid = None
        if decision.violation:
            source = statements.Source.NOTICE if case.reason == CaseReason.NOTICE.value \
                else statements.Source.OWN_INITIATIVE
            puid = apply(mod, session, item, Outcome(
                actions=decision.actions, category=category, territories=decision.territories,
                facts=decision.note or f"Reviewed by a moderator: {category.value.replace('_', ' ')}.",
                decided_by=reviewer.actor, automated=False, source=source,
                automated_detection=case.reason == CaseReason.UPLOAD.value,
                change=_violation_change(item, decision.actions)))
            close_moot_cases(mod, session, item, by=f"case:{case_id}", keep=case_id)
        else:
            if _clears(item, case):
                item.status = next_status(ContentStatus(item.status), Change.CLEAR).value
                item.restrictions = []
            notify(mod, session, item, PlatformMessage.CLEARED, None)
        return {"case_id": case_id, "content_id": item.content_id, "status": item.status, "statement_puid": puid}


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


def queue_after_move(mod: Moderation, session: Session, case_id: int, category: Category) -> str | None:
    """Where ``move_case`` would send a case (a preview changes nothing), or ``None`` when it would stay: decided,
    already there, or in a restricted queue (child-safety cases never leave it, and nothing else enters it)."""
    case = review.get_case(session, case_id)
    if case.state == CaseState.DECIDED.value or mod.restricted_queue(case.queue):
        return None
    queue = mod.queue_for(category, get_item(session, case.content_id), case.severity)
    if mod.restricted_queue(queue) or (queue == case.queue and case.category == category.value):
        return None
    return queue


def move_case(mod: Moderation, session: Session, case_id: int, category: Category, *, by: str,
              reason: str) -> str | None:
    """Send an undecided case to the queue the policy gives ``category`` (a designation changed, say), in the
    caller's transaction, with a ``case.moved`` event. Returns the new queue, or ``None`` when it stays
    (``queue_after_move``)."""
    queue = queue_after_move(mod, session, case_id, category)
    if queue is None:
        return None
    case = review.get_case(session, case_id)
    before = case.queue
    review.move(session, case_id, queue=queue, category=category.value, sla_minutes=mod.sla_minutes(queue),
                clock=mod.clock)
    log(mod, session, content_subject(case.content_id), EventKind.CASE_MOVED, by,
        CaseMoved(case_id=case_id, from_queue=before, to_queue=queue, category=category.value, reason=reason[:500]))
    return queue
