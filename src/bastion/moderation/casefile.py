"""Everything a reviewer needs to decide one case, read in one transaction: the case file.

Read-only: it gathers the upload, why it was held (the policy's rule, bank matches with distances, classifier
scores), notices and appeals, and the uploader's history, from the event log and its projections.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.auth.roles import CHILD_SAFETY_ROLES
from bastion.core.auth.services import Principal
from bastion.core.events import payload
from bastion.core.sealing import SealError
from bastion.matching.services import origins_of
from bastion.moderation import appeals, previews
from bastion.moderation.events import (
    ActionsApplied,
    CaseClosed,
    ContentStatus,
    Decided,
    EventKind,
    MatchRecord,
    NoticeReceived,
    VerdictGiven,
    ViewsCrossed,
)
from bastion.moderation.interfaces import AccountNotFound, NotAllowed, PreviewUnreadable
from bastion.moderation.kernel import (
    Moderation,
    content_subject,
    get_item,
    judged_restricted,
    may_review,
    may_see,
    restricted_among,
)
from bastion.moderation.models import Account, Appeal, ContentItem, MediaPreview, ModerationEvent
from bastion.moderation.policy import Action, Category
from bastion.moderation.queries import confirmed_in
from bastion.review import services as review
from bastion.review.models import Case, CaseState

log = logging.getLogger(__name__)
#: Earlier cases of the same uploader shown on a case page.
HISTORY_CASES = 20
_SCORE_PREFIX = "classifier "


@dataclass(frozen=True)
class PriorCase:
    case_id: int
    content_id: str
    reason: str
    category: str
    state: str
    violation: bool | None
    actions: list[str]
    decided_at: dt.datetime | None


@dataclass(frozen=True)
class ReachCrossing:
    """A view threshold of the policy the content crossed: why a views case is here."""

    threshold: int
    views: int
    shares: int | None
    at: dt.datetime


@dataclass(frozen=True)
class TakenDown:
    """Who took the content down, when it is down: an order (``order:REF``), a moderator's case, or the policy."""

    by: str
    status: str
    at: dt.datetime
    case_id: int | None


@dataclass(frozen=True)
class CaseFile:
    case: Case
    item: ContentItem
    #: The policy's verdict at upload: rule, verdict, reasons, bank matches (with distances).
    rule: str
    verdict: str
    reasons: list[str]
    matches: list[dict[str, Any]]
    #: Actions the policy offers for this case first, then every other action.
    offered: list[Action]
    notices: list[dict[str, Any]]
    appeal: Appeal | None
    strikes: int
    account_status: str
    prior: list[PriorCase]
    has_preview: bool
    #: View thresholds crossed (a views case), with the reach at that moment.
    reach: list[ReachCrossing] = field(default_factory=list)
    #: Decisions on the same content in its other cases, oldest first (what was decided before).
    earlier_decisions: list[dict[str, Any]] = field(default_factory=list)
    #: Set when the content is already down: the case may be moot, or was closed for it (``closed``).
    taken_down: TakenDown | None = None
    #: Set when this case was closed unreviewed because the content was down already.
    closed: dict[str, Any] | None = None
    #: Suspected child sexual abuse material (``kernel.restricted_content``).
    restricted: bool = False
    #: This case's decision, once decided.
    decided: Decided | None = None
    #: A moderator's finding of a violation stands (what the curation loop needs).
    confirmed: bool = False
    #: An appeal case: the actions of the decision it contests (those a partial reversal may keep or lift).
    appealed_actions: list[Action] = field(default_factory=list)

    @property
    def scores(self) -> list[str]:
        """Classifier reasons, as the policy worded them (name, score and threshold)."""
        return [r for r in self.reasons if r.startswith(_SCORE_PREFIX)]


def load(mod: Moderation, session: Session, case_id: int, viewer: Principal) -> CaseFile:
    """The case file, in the caller's read transaction: each row read once (the content's events serve the verdict,
    notices, decisions, reach, whether it is restricted and whether a violation stands)."""
    case = review.get_case(session, case_id)
    if not may_review(mod, case.queue, viewer):
        raise NotAllowed(f"queue {case.queue} is restricted to child-safety specialists")
    item = get_item(session, case.content_id)
    events = list(session.scalars(select(ModerationEvent)
                                  .where(ModerationEvent.subject == content_subject(item.content_id))
                                  .order_by(ModerationEvent.id)))
    queues = session.scalars(select(Case.queue).where(Case.content_id == item.content_id)).all()
    restricted = item.category == Category.CSAM.value or any(mod.restricted_queue(q) for q in queues) \
        or judged_restricted(events)
    if restricted and viewer.role not in CHILD_SAFETY_ROLES:
        raise NotAllowed("this content is restricted to child-safety specialists")
    verdict_event = next((e for e in events if e.kind == EventKind.VERDICT.value), None)
    verdict = payload(verdict_event, VerdictGiven) if verdict_event else None
    proposed = [Action(a) for a in (verdict.actions if verdict else []) if a in Action._value2member_map_]
    decisions = [(e, payload(e, Decided)) for e in events if e.kind == EventKind.DECISION.value]
    closed = next((dict(payload(e, CaseClosed).model_dump(), at=e.at) for e in events
                   if e.kind == EventKind.CASE_CLOSED.value and payload(e, CaseClosed).case_id == case.id), None)
    account = session.get(Account, item.account_id)
    appeal = session.scalar(select(Appeal).where(Appeal.case_id == case.id))
    return CaseFile(
        case=case, item=item, rule=verdict.rule or "" if verdict else "", verdict=verdict.verdict if verdict else "",
        reasons=list(verdict.reasons) if verdict else [],
        matches=_visible_matches(session, verdict.matches if verdict else [], viewer),
        offered=proposed + [a for a in Action if a not in proposed],
        notices=[dict(payload(e, NoticeReceived).model_dump(), at=e.at) for e in events
                 if e.kind == EventKind.NOTICE.value],
        appeal=appeal,
        appealed_actions=contested.actions if appeal is not None and (contested := appeals.contested_in(
            events, appeal.statement_puid)) is not None else [],
        strikes=account.strikes if account else 0, account_status=account.status if account else "active",
        prior=_prior_cases(mod, session, item, case.id, viewer),
        has_preview=session.scalar(select(MediaPreview.content_id).where(
            MediaPreview.content_id == item.content_id)) is not None,
        reach=[_crossing(e) for e in events if e.kind == EventKind.VIEWS_THRESHOLD.value],
        earlier_decisions=[dict(d.model_dump(), at=e.at, by=e.actor) for e, d in decisions if d.case_id != case.id],
        taken_down=_taken_down(item, events), closed=closed, restricted=restricted,
        decided=next((d for _e, d in reversed(decisions) if d.case_id == case.id), None),
        confirmed=confirmed_in(reversed(events)) is not None)


def _crossing(event: ModerationEvent) -> ReachCrossing:
    crossed = payload(event, ViewsCrossed)
    return ReachCrossing(crossed.threshold, crossed.views, crossed.shares, event.at)


_DOWN = (ContentStatus.REMOVED.value, ContentStatus.BLOCKED.value)


def _taken_down(item: ContentItem, events: list[ModerationEvent]) -> TakenDown | None:
    """The last action that took the content down, if it is down; the case that decided it, if a moderator did."""
    if item.status not in _DOWN:
        return None
    applied = next((e for e in reversed(events) if e.kind == EventKind.ACTIONS_APPLIED.value
                    and payload(e, ActionsApplied).status in _DOWN), None)
    if applied is None:
        return None
    decision = next((e for e in reversed(events) if e.kind == EventKind.DECISION.value and e.id < applied.id
                     and e.actor == applied.actor), None)
    return TakenDown(applied.actor, payload(applied, ActionsApplied).status, applied.at,
                     payload(decision, Decided).case_id if decision is not None else None)


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _visible_matches(session: Session, matches: list[MatchRecord], viewer: Principal) -> list[dict[str, Any]]:
    """A restricted bank's categories and origins are for child-safety roles only, as on the bank pages. Each
    match names where its entry came from (``origin``: the exchange and its record), when it came from one."""
    rows = [m.model_dump() for m in matches]
    origins = origins_of(session, [m.entry_id for m in matches])
    for row in rows:
        row["origin"] = ", ".join(o.label() for o in origins.get(row["entry_id"], []))
        if row["restricted"] and viewer.role not in CHILD_SAFETY_ROLES:
            row["category"] = ""
            row["origin"] = ""
    return rows


def _open(mod: Moderation, session: Session, case_id: int, viewer: Principal) -> tuple[Case, ContentItem]:
    """The case and its content, if ``viewer`` may see them: restricted queues and suspected child sexual abuse
    material (whatever queue a case about it is in) are for child-safety roles only."""
    case = review.get_case(session, case_id)
    if not may_review(mod, case.queue, viewer):
        raise NotAllowed(f"queue {case.queue} is restricted to child-safety specialists")
    item = get_item(session, case.content_id)
    if not may_see(mod, session, item, viewer):
        raise NotAllowed("this content is restricted to child-safety specialists")
    return case, item


def _prior_cases(mod: Moderation, session: Session, item: ContentItem, this_case: int,
                 viewer: Principal) -> list[PriorCase]:
    """The uploader's other cases the viewer may open (cases about restricted content are left out)."""
    found = [(c, i) for c, i in session.execute(
        select(Case, ContentItem).join(ContentItem, ContentItem.content_id == Case.content_id)
        .where(ContentItem.account_id == item.account_id, Case.id != this_case)
        .order_by(Case.opened_at.desc()).limit(HISTORY_CASES)).tuples()
        if viewer.role in CHILD_SAFETY_ROLES or not mod.restricted_queue(c.queue)]
    hidden = set() if viewer.role in CHILD_SAFETY_ROLES else restricted_among(mod, session, [i for _c, i in found])
    rows = [c for c, i in found if i.content_id not in hidden]
    decisions: dict[int, Decided] = {}
    if rows:
        for event in session.scalars(select(ModerationEvent).where(
                ModerationEvent.subject.in_({content_subject(c.content_id) for c in rows}),
                ModerationEvent.kind == EventKind.DECISION.value)):
            decided = payload(event, Decided)
            decisions[decided.case_id] = decided
    return [PriorCase(c.id, c.content_id, c.reason, c.category, c.state,
                      decisions[c.id].violation if c.id in decisions else None,
                      list(decisions[c.id].actions) if c.id in decisions else [], c.decided_at)
            for c in rows]


def preview_jpeg(mod: Moderation, case_id: int, viewer: Principal, *, clear: bool) -> bytes | None:
    """The case's media preview, blurred and grey unless ``clear``; ``None`` when none was kept."""
    if mod.sealer is None:
        return None
    with mod.db.read() as session:
        case, _item = _open(mod, session, case_id, viewer)
        stored = session.get(MediaPreview, case.content_id)
        if stored is None:
            return None
        try:
            jpeg = mod.sealer.open(stored.sealed, case.content_id)
        except SealError:
            log.error("the preview of %s does not open: the media key changed, or the row was altered",
                      case.content_id)
            raise PreviewUnreadable("the preview cannot be opened: the media key has changed (BASTION_MEDIA_KEY or "
                                    "its key file) or the stored preview was altered") from None
    return jpeg if clear else previews.blurred(jpeg)


def is_open_for(case: Case, viewer: Principal) -> bool:
    """Whether ``viewer`` holds the live claim on ``case`` (the decision form is shown to them only)."""
    return case.state == CaseState.CLAIMED.value and case.claimed_by == viewer.actor


# --- searching cases, an account's history ------------------------------------------------------------------------

#: Rows per page of the case list.
PAGE_SIZE = 50
#: Rows of each kind on an account page, newest first.
ACCOUNT_ROWS = 200


@dataclass(frozen=True)
class CaseFilter:
    """What the case list is narrowed to; empty fields filter nothing. ``content`` matches a content id's start."""

    content: str = ""
    account: str = ""
    queue: str = ""
    state: str = ""
    page: int = 1


@dataclass(frozen=True)
class CaseRow:
    case: Case
    account_id: str
    content_status: str


@dataclass(frozen=True)
class CasePage:
    rows: list[CaseRow]
    has_next: bool


def _visible_queues(mod: Moderation, viewer: Principal) -> list[str]:
    return [q.name for q in mod.policy.queues if may_review(mod, q.name, viewer)]


def search(mod: Moderation, session: Session, viewer: Principal, wanted: CaseFilter) -> CasePage:
    """Cases matching ``wanted``, newest first, one page; what the viewer may not see is never listed."""
    query = (select(Case, ContentItem).join(ContentItem, ContentItem.content_id == Case.content_id)
             .order_by(Case.opened_at.desc(), Case.id.desc()))
    if viewer.role not in CHILD_SAFETY_ROLES:
        query = query.where(Case.queue.in_(_visible_queues(mod, viewer)))
    if wanted.content:
        escaped = wanted.content.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Case.content_id.like(f"{escaped}%", escape="\\"))
    if wanted.account:
        query = query.where(ContentItem.account_id == wanted.account)
    if wanted.queue:
        query = query.where(Case.queue == wanted.queue)
    if wanted.state == "escalated":
        query = query.where(Case.escalated.is_(True), Case.state != CaseState.DECIDED.value)
    elif wanted.state:
        query = query.where(Case.state == wanted.state)
    start = (max(1, wanted.page) - 1) * PAGE_SIZE
    found = session.execute(query.offset(start).limit(PAGE_SIZE + 1)).all()
    hidden = set() if viewer.role in CHILD_SAFETY_ROLES else \
        restricted_among(mod, session, [item for _case, item in found[:PAGE_SIZE]])
    rows = [CaseRow(case, item.account_id, item.status) for case, item in found[:PAGE_SIZE]
            if item.content_id not in hidden]
    return CasePage(rows, len(found) > PAGE_SIZE)


@dataclass(frozen=True)
class AccountHistory:
    """Everything Bastion knows of one uploader, as Ozone's account view: what they posted and what was decided."""

    account_id: str
    strikes: int
    status: str
    suspended_until: dt.datetime | None
    uploads: list[ContentItem]
    cases: list[Case]
    decisions: list[ModerationEvent]
    #: Strikes and suspensions, from the account's own events.
    account_events: list[ModerationEvent]
    #: Uploads restricted to child-safety roles are left out for others, without a trace (not even a count).
    appeals: list[Appeal]


def account_history(mod: Moderation, session: Session, account_id: str, viewer: Principal) -> AccountHistory:
    """The account's uploads, cases, decisions, strikes and appeals; restricted content only for child-safety roles.

    Raises ``AccountNotFound`` when Bastion has never seen the account.
    """
    account = session.get(Account, account_id)
    items = list(session.scalars(select(ContentItem).where(ContentItem.account_id == account_id)
                                 .order_by(ContentItem.created_at.desc()).limit(ACCOUNT_ROWS)))
    if account is None and not items:
        raise AccountNotFound(f"no account {account_id!r} has uploaded anything")
    hidden = set() if viewer.role in CHILD_SAFETY_ROLES else restricted_among(mod, session, items)
    visible = [i for i in items if i.content_id not in hidden]
    ids = [i.content_id for i in visible]
    queues = set(_visible_queues(mod, viewer))
    cases = [c for c in session.scalars(select(Case).where(Case.content_id.in_(ids))
                                        .order_by(Case.opened_at.desc()).limit(ACCOUNT_ROWS))
             if c.queue in queues or viewer.role in CHILD_SAFETY_ROLES]
    decisions = list(session.scalars(select(ModerationEvent).where(
        ModerationEvent.subject.in_([content_subject(i) for i in ids]),
        ModerationEvent.kind == EventKind.DECISION.value).order_by(ModerationEvent.id.desc()).limit(ACCOUNT_ROWS)))
    account_events = list(session.scalars(select(ModerationEvent).where(
        ModerationEvent.subject == f"account:{account_id}").order_by(ModerationEvent.id.desc())
        .limit(ACCOUNT_ROWS)))
    appeals = list(session.scalars(select(Appeal).where(Appeal.account_id == account_id, Appeal.content_id.in_(ids))
                                   .order_by(Appeal.filed_at.desc()).limit(ACCOUNT_ROWS)))
    return AccountHistory(account_id, account.strikes if account else 0, account.status if account else "active",
                          account.suspended_until if account else None, visible, cases, decisions, account_events,
                          appeals)
