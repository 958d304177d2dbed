"""Appeals (DSA Art. 20): the uploader contests a decision; another moderator decides. Upheld keeps it, reversed
reinstates the content, partly reversed lifts some of its actions and keeps the others (``decide_appeal``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.auth.services import Principal
from bastion.core.events import payload
from bastion.moderation.actions import Outcome, issue_statement
from bastion.moderation.events import (
    ActionsApplied,
    AppealDecided,
    AppealFiled,
    AppealOutcome,
    Change,
    ContentStatus,
    EventKind,
    PartlyReinstated,
    PlatformMessage,
    Reinstated,
    StatementIssued,
    change_after_partial_reversal,
    content_restrictions,
    next_status,
)
from bastion.moderation.interfaces import InvalidDecision, StatementNotFound
from bastion.moderation.kernel import Moderation, content_subject, get_item, log, notify, open_case
from bastion.moderation.models import Appeal, ContentItem, ModerationEvent, StatementOfReasons
from bastion.moderation.policy import Action, Category
from bastion.review.models import Case, CaseReason


def file_appeal(mod: Moderation, statement_puid: str, text: str, *, actor: Principal) -> Appeal:
    """The uploader contests a decision; the case goes to a moderator other than the one who decided."""
    with mod.db.write() as session:
        statement = session.get(StatementOfReasons, statement_puid)
        if statement is None:
            raise StatementNotFound(f"no statement of reasons {statement_puid!r}")
        item = get_item(session, statement.content_id)
        case = open_case(mod, session, item, category=Category(item.category or Category.BORDERLINE.value),
                         reason=CaseReason.APPEAL, severity=3,
                         queue=None if item.category else mod.policy.default_queue,
                         excluded_reviewer=statement.decided_by)
        appeal = Appeal(content_id=item.content_id, statement_puid=statement_puid, account_id=statement.account_id,
                        text=text[:5000], state="open", case_id=case.id, filed_at=mod.clock.now())
        session.add(appeal)
        session.flush()
        log(mod, session, content_subject(item.content_id), EventKind.APPEAL_FILED, actor.actor,
            AppealFiled(appeal_id=appeal.id, case_id=case.id, statement_puid=statement_puid))
        return appeal


@dataclass(frozen=True)
class Contested:
    """The decision an appeal contests, as carried out: its actions, territories and category."""

    actions: list[Action]
    territories: list[str]
    category: str


def contested_in(events: Iterable[ModerationEvent], statement_puid: str) -> Contested | None:
    """The actions the statement ``statement_puid`` stated: the ``content.actions_applied`` it was issued for (the
    last one before it), from the content's events oldest first. ``None`` when the statement is not among them."""
    applied: ActionsApplied | None = None
    for event in events:
        if event.kind == EventKind.ACTIONS_APPLIED.value:
            applied = payload(event, ActionsApplied)
        elif event.kind == EventKind.STATEMENT_ISSUED.value and payload(event, StatementIssued).puid == statement_puid:
            if applied is None:
                return None
            return Contested([Action(a) for a in applied.actions if a in Action._value2member_map_],
                             list(applied.territories), applied.category)
    return None


def contested(session: Session, appeal: Appeal) -> Contested | None:
    return contested_in(session.scalars(select(ModerationEvent).where(
        ModerationEvent.subject == content_subject(appeal.content_id)).order_by(ModerationEvent.id)),
        appeal.statement_puid)


def decide_appeal(mod: Moderation, session: Session, item: ContentItem, case: Case, *, outcome: AppealOutcome,
                  standing: Sequence[Action] = (), note: str = "", reviewer: Principal) -> dict[str, object]:
    """The appeal case's decision (``decisions.decide``): upheld keeps the decision, reversed reinstates, partly
    reversed keeps ``standing`` (some of the contested actions) and lifts the rest (``_partly_reverse``)."""
    appeal = session.scalar(select(Appeal).where(Appeal.case_id == case.id))
    assert appeal is not None
    appeal.state = outcome.value
    appeal.decided_at = mod.clock.now()
    answer: dict[str, object] = {"case_id": case.id, "content_id": item.content_id, "appeal": appeal.state}
    if outcome is AppealOutcome.PARTLY_REVERSED:
        lifted, kept = _split(session, appeal, standing)
        log(mod, session, content_subject(item.content_id), EventKind.APPEAL_DECIDED, reviewer.actor,
            AppealDecided(appeal_id=appeal.id, outcome=appeal.state, lifted=[a.value for a in lifted],
                          standing=[a.value for a in kept.actions]))
        answer |= _partly_reverse(mod, session, item, appeal, lifted, kept, note=note, reviewer=reviewer)
    else:
        log(mod, session, content_subject(item.content_id), EventKind.APPEAL_DECIDED, reviewer.actor,
            AppealDecided(appeal_id=appeal.id, outcome=appeal.state))
    if outcome is AppealOutcome.REVERSED and ContentStatus(item.status) is not ContentStatus.PUBLISHED:
        # published already (a fact-check correction lifted the limits it contests): the reversal is recorded and
        # counted, and there is nothing to put back
        item.status = next_status(ContentStatus(item.status), Change.REINSTATE).value
        item.restrictions = []
        log(mod, session, content_subject(item.content_id), EventKind.REINSTATED, reviewer.actor,
            Reinstated(appeal_id=appeal.id))
        notify(mod, session, item, PlatformMessage.REINSTATED, appeal.statement_puid)
    return answer | {"status": item.status}


def _split(session: Session, appeal: Appeal, standing: Sequence[Action]) -> tuple[list[Action], Contested]:
    """The contested actions lifted, and what stands; refused unless some are lifted and some stand."""
    found = contested(session, appeal)
    if found is None:
        raise InvalidDecision("the contested decision's actions are not recorded: uphold or reverse it")
    keep = set(standing)
    stray = sorted(a.value for a in keep - set(found.actions))
    if stray:
        raise InvalidDecision(f"only the contested decision's actions can stand ({', '.join(stray)} were not "
                              f"among {', '.join(a.value for a in found.actions)})")
    lifted = [a for a in found.actions if a not in keep]
    kept = [a for a in found.actions if a in keep]
    if not kept:
        raise InvalidDecision("a partial reversal keeps at least one action: to lift them all, reverse")
    if not lifted:
        raise InvalidDecision("a partial reversal lifts at least one action: to keep them all, uphold")
    territories = found.territories if Action.DISABLE_IN_TERRITORIES in kept else []
    return lifted, Contested(kept, territories, found.category)


def _partly_reverse(mod: Moderation, session: Session, item: ContentItem, appeal: Appeal, lifted: list[Action],
                    kept: Contested, *, note: str, reviewer: Principal) -> dict[str, object]:
    """Lift ``lifted``, and only those: limits other decisions or orders imposed stay, and content another decision
    took down stays down. A lifted removal moves the content by ``change_after_partial_reversal``; lifted limits
    that leave none put restricted content back whole. A new statement of reasons states what remains (and is
    submitted like any other), and the platform is told."""
    status = ContentStatus(item.status)
    remaining = ((set(item.restrictions) - set(content_restrictions(lifted)))
                 | set(content_restrictions(kept.actions)))
    change: Change | None = None
    if Action.REMOVE in lifted and status in (ContentStatus.REMOVED, ContentStatus.BLOCKED):
        change = change_after_partial_reversal(kept.actions)
    elif not remaining and status is ContentStatus.RESTRICTED:
        change = Change.LIFT
    if change is not None:
        item.status = next_status(status, change).value
    item.restrictions = sorted(remaining)
    item.updated_at = mod.clock.now()
    original = session.get(StatementOfReasons, appeal.statement_puid)
    body = original.body if original is not None else {}
    puid = ""
    if content_restrictions(kept.actions) or Action.REMOVE in kept.actions:  # content limits remain: state them
        facts = (f"On appeal, the decision of statement {appeal.statement_puid} was partly reversed: "
                 f"{_words(lifted)} lifted; {_words(kept.actions)} remains." + (f" {note}" if note else ""))
        category = Category(kept.category) if kept.category in Category._value2member_map_ \
            else Category(item.category or Category.BORDERLINE.value)
        puid = issue_statement(mod, session, item, kept.actions, Outcome(
            actions=kept.actions, category=category, territories=kept.territories, facts=facts,
            decided_by=reviewer.actor, automated_detection=body.get("automated_detection") == "Yes",
            automated=False, source=str(body.get("source_type") or "SOURCE_VOLUNTARY"), change=None))
    log(mod, session, content_subject(item.content_id), EventKind.PARTLY_REINSTATED, reviewer.actor,
        PartlyReinstated(appeal_id=appeal.id, lifted=[a.value for a in lifted],
                         standing=[a.value for a in kept.actions], status=item.status,
                         restrictions=list(item.restrictions), statement_puid=puid))
    notify(mod, session, item, PlatformMessage.PARTLY_REINSTATED, puid or appeal.statement_puid,
           actions=kept.actions, territories=kept.territories, lifted=lifted)
    return {"statement_puid": puid or None, "lifted": [a.value for a in lifted],
            "standing": [a.value for a in kept.actions]}


def _words(actions: Iterable[Action]) -> str:
    return ", ".join(a.value.replace("_", " ") for a in actions)
