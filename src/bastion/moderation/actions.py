"""Carrying out a restriction: the content's status, strikes and suspensions, the statement of reasons (DSA Art. 17)
and the platform's webhook, whoever decided it (the policy at upload, a moderator, an authority's removal order);
and lifting reach limits the path that asked for them no longer needs (``lift_reach``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.events import payload
from bastion.moderation import statements
from bastion.moderation.events import (
    ActionsApplied,
    CaseClosed,
    Change,
    ContentStatus,
    EventKind,
    PartlyReinstated,
    PlatformMessage,
    Reinstated,
    RestrictionsLifted,
    StatementIssued,
    StrikeCounted,
    Suspended,
    change_for_actions,
    content_restrictions,
    next_status,
)
from bastion.moderation.kernel import Moderation, account_subject, content_subject, get_item, log, notify
from bastion.moderation.models import Account, ContentItem, ModerationEvent, StatementOfReasons
from bastion.moderation.policy import Action, Category, strike_outcome
from bastion.review import services as review


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


def apply(mod: Moderation, session: Session, item: ContentItem, outcome: Outcome) -> str | None:
    """Carry out ``outcome``: status, strikes, suspension, the statement of reasons and the platform webhook."""
    if outcome.change is not None:
        item.status = next_status(ContentStatus(item.status), outcome.change).value
    if Action.DISABLE_IN_TERRITORIES in outcome.actions:
        held = set(item.territories or ()) if Action.DISABLE_IN_TERRITORIES.value in item.restrictions else set()
        item.territories = sorted(held | {t.upper() for t in outcome.territories})
    item.restrictions = sorted(set(item.restrictions) | set(content_restrictions(outcome.actions)))
    item.category = outcome.category.value
    item.updated_at = mod.clock.now()
    actions = list(outcome.actions) + _strike(mod, session, item.account_id, outcome)
    log(mod, session, content_subject(item.content_id), EventKind.ACTIONS_APPLIED, outcome.decided_by,
        ActionsApplied(actions=[a.value for a in actions], territories=outcome.territories, status=item.status,
                       category=outcome.category.value))
    puid = None
    if set(actions) - {Action.STRIKE} and not outcome.withhold_statement:
        puid = issue_statement(mod, session, item, actions, outcome)
    notify(mod, session, item, PlatformMessage.ACTION, puid, actions=actions, territories=outcome.territories)
    return puid


def issue_statement(mod: Moderation, session: Session, item: ContentItem, actions: Sequence[Action],
                    outcome: Outcome) -> str:
    puid = statements.new_puid()
    body = statements.build(
        puid=puid, category=outcome.category, actions=list(actions), content_type=item.content_type,
        content_date=item.created_at.date(), decided_at=mod.clock.now(), facts=outcome.facts,
        source_type=outcome.source, automated_detection=outcome.automated_detection,
        automated_decision=outcome.automated, territories=outcome.territories)
    session.add(StatementOfReasons(puid=puid, content_id=item.content_id, account_id=item.account_id,
                                   decided_by=outcome.decided_by, body=body, created_at=mod.clock.now()))
    log(mod, session, content_subject(item.content_id), EventKind.STATEMENT_ISSUED, outcome.decided_by,
        StatementIssued(puid=puid))
    if mod.on_statement is not None:
        mod.on_statement(session, puid)
    return puid


def _strike(mod: Moderation, session: Session, account_id: str, outcome: Outcome) -> list[Action]:
    """Count a strike if the outcome gives one; returns the suspension it leads to, if any."""
    if Action.STRIKE not in outcome.actions:
        return []
    account = session.get(Account, account_id) or Account(account_id=account_id, strikes=0, status="active")
    session.add(account)
    account.strikes += 1
    log(mod, session, account_subject(account_id), EventKind.STRIKE, outcome.decided_by,
        StrikeCounted(strikes=account.strikes))
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
    log(mod, session, account_subject(account_id), EventKind.SUSPENDED, outcome.decided_by,
        Suspended(action=chosen.value,
                  until=account.suspended_until.isoformat() if account.suspended_until else None))
    return [chosen] if chosen not in outcome.actions else []


def close_moot_cases(mod: Moderation, session: Session, item: ContentItem, *, by: str,
                     keep: int | None = None) -> None:
    """Once content is down, its other waiting cases have nothing left to decide: close them, with an event saying
    who took it down. Cases in restricted queues stay open: a child-safety specialist still confirms and reports."""
    if ContentStatus(item.status) not in (ContentStatus.REMOVED, ContentStatus.BLOCKED):
        return
    queues = [q.name for q in mod.policy.queues if not q.restricted]
    for case_id in review.close_moot(session, item.content_id, by=by, queues=queues, clock=mod.clock, keep=keep):
        log(mod, session, content_subject(item.content_id), EventKind.CASE_CLOSED, "system",
            CaseClosed(case_id=case_id, removed_by=by, status=item.status))


# --- removal orders -----------------------------------------------------------------------------------------------

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
        log(mod, session, content_subject(content_id), EventKind.REINSTATED, f"order:{order}",
            Reinstated(order=order))
        notify(mod, session, item, PlatformMessage.REINSTATED, None)
        return True
    if ContentStatus(item.status) in (ContentStatus.REMOVED, ContentStatus.BLOCKED):
        return False
    apply(mod, session, item, _order_outcome(order, facts, territories, withhold_statement=withhold_statement))
    close_moot_cases(mod, session, item, by=f"order:{order}")
    return True


def issue_order_statement(mod: Moderation, session: Session, content_id: str, *, order: str, facts: str,
                          territories: Sequence[str] = ()) -> str | None:
    """The statement of reasons withheld while an order's non-disclosure period ran, issued once it has ended."""
    item = session.get(ContentItem, content_id)
    if item is None:
        return None
    outcome = _order_outcome(order, facts, territories)
    return issue_statement(mod, session, item, outcome.actions, outcome)


# --- restrictions another domain asks for (a fact-checker's rating) -----------------------------------------------


@dataclass(frozen=True)
class Restricted:
    """What ``restrict`` did: whether the content changed, its status now, and the statement of reasons issued."""

    applied: bool
    status: str
    statement_puid: str | None


#: Restrictions another domain may ask for: they limit reach, never take content down (that is a moderator's or an
#: order's decision, through the review queues or ``enforce_order``).
REACH_ACTIONS = frozenset({Action.LABEL, Action.DEMOTE, Action.NOT_RECOMMENDED})


def restrict(mod: Moderation, session: Session, content_id: str, *, actions: Sequence[Action], category: Category,
             facts: str, decided_by: str, source: str) -> Restricted:
    """Limit live content's reach (label, demote, not recommended) in the caller's transaction, through ``apply``:
    the same status change, ``content.actions_applied`` event, statement of reasons (so an appeal can follow) and
    platform webhook as any other restriction.

    Only published or already restricted content is limited; held, blocked or removed content is left as it is
    (``applied`` false): limiting held content would publish it. Raises ``ValueError`` for an action that is not a
    reach limit, and ``ContentNotFound`` for content never submitted.
    """
    if not actions or set(actions) - REACH_ACTIONS:
        raise ValueError(f"only {', '.join(sorted(a.value for a in REACH_ACTIONS))} may be asked for here")
    item = get_item(session, content_id)
    if ContentStatus(item.status) not in (ContentStatus.PUBLISHED, ContentStatus.RESTRICTED):
        return Restricted(False, item.status, None)
    puid = apply(mod, session, item, Outcome(
        actions=list(actions), category=category, territories=[], facts=facts, decided_by=decided_by,
        automated_detection=False, automated=True, source=source, change=Change.RESTRICT))
    return Restricted(True, item.status, puid)


@dataclass(frozen=True)
class Lifted:
    """What ``lift_reach`` did: the limits lifted, those asked for that another path holds, and the status now."""

    lifted: list[Action]
    kept: list[Action]
    status: str


_HOLDING_KINDS = (EventKind.ACTIONS_APPLIED.value, EventKind.REINSTATED.value, EventKind.PARTLY_REINSTATED.value,
                  EventKind.RESTRICTIONS_LIFTED.value)


def held_by_others(events: Iterable[ModerationEvent], owner: str) -> set[str]:
    """The content limits a decider outside ``owner`` (an actor prefix, ``factcheck:``) applied and that still
    stand, from the content's events oldest first.

    What counts: ``content.actions_applied`` by any other actor (a moderator's decision, the policy at upload, an
    order); an appeal partly reversed (its reviewer decided that what remains stands: every limit left after it);
    ``content.reinstated`` forgets everything before it (the content was put back whole); a lift forgets what it
    lifted. An appeal upheld applies nothing: it confirmed the path's own limits, which the path may still lift.
    Conservative where the log is silent: a moderator's "no violation" that cleared limits leaves them
    counted, so a later lift keeps a limit rather than lifting one a person may have applied.
    """
    held: set[str] = set()
    for event in events:
        if event.kind == EventKind.REINSTATED.value:
            held = set()
        elif event.kind == EventKind.PARTLY_REINSTATED.value:
            held = set(payload(event, PartlyReinstated).restrictions)
        elif event.kind == EventKind.RESTRICTIONS_LIFTED.value:
            held -= set(payload(event, RestrictionsLifted).lifted)
        elif event.kind == EventKind.ACTIONS_APPLIED.value and not event.actor.startswith(owner):
            held |= set(payload(event, ActionsApplied).actions)
    return held


def lift_reach(mod: Moderation, session: Session, content_id: str, *, actions: Sequence[Action], owner: str,
               decided_by: str, reason: str) -> Lifted:
    """Lift reach limits that ``owner``'s path (an actor prefix: ``factcheck:``) applied and no longer needs, in
    the caller's transaction: the inverse of ``restrict``.

    Only restricted content changes, and only the limits in ``actions`` it has. A limit another path also applied
    (``held_by_others``: a moderator, an appeal decision, the policy at upload) stays, and comes back in ``kept``.
    The content's limits shrink; when none remain it is published again (``Change.LIFT``). One
    ``content.restrictions_lifted`` event records what was lifted and kept, why and by whom, and the platform's
    webhook says ``lifted`` (``moderation.restrictions_lifted``), so the feed gate and the platform follow.

    Don't issue a statement of reasons here: statements state restrictions (DSA Art. 17) and a lift restricts
    nothing. Don't count it as an appeal's reversal: it is none (``queries.moderation_facts`` skips it).
    """
    if set(actions) - REACH_ACTIONS:
        raise ValueError(f"only {', '.join(sorted(a.value for a in REACH_ACTIONS))} may be lifted here")
    if not owner or not decided_by.startswith(owner):
        raise ValueError(f"{decided_by!r} is not of the path {owner!r} that applied the limits")
    item = get_item(session, content_id)
    wanted = [a for a in dict.fromkeys(actions) if a.value in item.restrictions]
    if ContentStatus(item.status) is not ContentStatus.RESTRICTED or not wanted:
        return Lifted([], [], item.status)
    held = held_by_others(session.scalars(select(ModerationEvent).where(
        ModerationEvent.subject == content_subject(content_id), ModerationEvent.kind.in_(_HOLDING_KINDS))
        .order_by(ModerationEvent.id)), owner)
    lifted = [a for a in wanted if a.value not in held]
    kept = [a for a in wanted if a.value in held]
    if not lifted:
        return Lifted([], kept, item.status)
    item.restrictions = sorted(set(item.restrictions) - {a.value for a in lifted})
    if not item.restrictions:
        item.status = next_status(ContentStatus(item.status), Change.LIFT).value
    item.updated_at = mod.clock.now()
    log(mod, session, content_subject(content_id), EventKind.RESTRICTIONS_LIFTED, decided_by,
        RestrictionsLifted(lifted=[a.value for a in lifted], kept=[a.value for a in kept], reason=reason[:2000],
                           status=item.status, restrictions=list(item.restrictions)))
    notify(mod, session, item, PlatformMessage.RESTRICTIONS_LIFTED, None, lifted=lifted)
    return Lifted(lifted, kept, item.status)
