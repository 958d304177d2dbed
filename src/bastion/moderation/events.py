"""Event kinds, content statuses, and the one pure function that moves a status.

Following Ozone's lesson: every status change goes through ``next_status`` with explicit guards, tested as a table,
instead of if-blocks spread over the services.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from pydantic import BaseModel, Field

from bastion.core.outbox.kinds import MessageKind
from bastion.moderation.policy import Action


class EventKind(enum.StrEnum):
    """Values are storage keys: never rename; retire a value by keeping it reserved here."""

    SUBMITTED = "content.submitted"
    #: The content_id again with a different request (other media, account, text...): judged, recorded, refused.
    RESUBMITTED = "content.resubmitted"
    VERDICT = "content.verdict"  # the policy's automatic verdict at upload
    SHADOW_VERDICT = "content.shadow_verdict"  # a shadow rule held: recorded and counted, never applied
    NOTICE = "content.notice"  # a report by a user or trusted flagger
    VIEWS_THRESHOLD = "content.views_threshold"
    CASE_OPENED = "case.opened"
    DECISION = "content.decision"  # a moderator's decision
    ACTIONS_APPLIED = "content.actions_applied"
    STATEMENT_ISSUED = "content.statement_issued"
    APPEAL_FILED = "content.appeal_filed"
    APPEAL_DECIDED = "content.appeal_decided"
    REINSTATED = "content.reinstated"
    #: An appeal partly reversed the decision: some of its actions lifted, the others stand (a new statement says so).
    PARTLY_REINSTATED = "content.partly_reinstated"
    #: Reach limits lifted by the path that applied them, no longer needed (a fact-checker's correction): not an
    #: appeal's reversal, and counted as none (``queries.moderation_facts``).
    RESTRICTIONS_LIFTED = "content.restrictions_lifted"
    CASE_ESCALATED = "case.escalated"  # a moderator handed a case up to senior reviewers
    CASE_CLOSED = "case.closed"  # closed unreviewed: an order or another case had taken the content down already
    CURATED = "content.curated"  # confirmed media added to a bank (the curation loop)
    CASE_MOVED = "case.moved"  # an open case sent to another category's queue (a designation changed, say)
    STRIKE = "account.strike"
    SUSPENDED = "account.suspended"


# --- payloads: what each kind of event carries (written with ``core.events.record``, read with ``payload``) --------
# Enum values are stored as their text (a retired category or action still reads back); lists default to empty, so
# an event written before a field existed reads back too.


class MatchRecord(BaseModel):
    """A bank match as judged at upload: the bank, entry and distance are for reviewers, never for the platform."""

    bank: str
    entry_id: int
    signal_type: str
    category: str = ""
    distance: int
    #: Matched a flipped or rotated copy (dihedral matching).
    variant: bool = False
    #: A restricted (child sexual abuse material) bank: the content is for child-safety roles only.
    restricted: bool = False


class Submitted(BaseModel):
    account_id: str
    content_type: str
    signals: int
    #: The fingerprint of the request (``intake.request_fingerprint``); empty for content recorded before it.
    request_sha256: str = ""
    #: The content's language as the platform gave it (ISO 639); empty when not given or recorded before it existed.
    language: str = ""
    #: A livestream (``Submission.live``).
    live: bool = False


class VerdictGiven(BaseModel):
    """The policy's verdict at upload (``content.verdict``)."""

    verdict: str
    rule: str | None = None
    #: For reviewers: rules, banks, distances, scores.
    reasons: list[str] = Field(default_factory=list)
    #: For the platform: what was found and how, nothing more; ``None`` on events written before it existed.
    public_reasons: list[str] | None = None
    actions: list[str] = Field(default_factory=list)
    matches: list[MatchRecord] = Field(default_factory=list)


class Resubmitted(BaseModel):
    """A conflicting request for a content id, judged and recorded on it (``content.resubmitted``)."""

    account_id: str
    request_sha256: str
    signals: list[dict[str, object]] = Field(default_factory=list)
    verdict: str
    rule: str | None = None
    reasons: list[str] = Field(default_factory=list)
    matches: list[MatchRecord] = Field(default_factory=list)


class ShadowVerdict(BaseModel):
    rule: str
    would_be: str
    reason: str = ""


class NoticeReceived(BaseModel):
    category: str
    explanation: str
    trusted_flagger: bool
    notifier: str


class ViewsCrossed(BaseModel):
    threshold: int
    views: int
    shares: int | None = None


class CaseOpened(BaseModel):
    case_id: int
    queue: str
    reason: str


class Decided(BaseModel):
    """A moderator's decision (``content.decision``); on an appeal case ``violation`` means the decision stands."""

    case_id: int
    violation: bool
    actions: list[str] = Field(default_factory=list)
    category: str = ""
    note: str = ""
    reason: str = ""


class ActionsApplied(BaseModel):
    actions: list[str]
    territories: list[str] = Field(default_factory=list)
    #: The content's status once the actions were carried out.
    status: str
    #: The category the actions were taken under; empty on events written before it was recorded.
    category: str = ""


class StatementIssued(BaseModel):
    puid: str


class AppealFiled(BaseModel):
    appeal_id: int
    case_id: int
    statement_puid: str


class AppealOutcome(enum.StrEnum):
    """How an appeal ends (DSA Art. 20; the transparency template's Part 7 counts each). Values are storage keys."""

    UPHELD = "upheld"  # the decision stands whole
    PARTLY_REVERSED = "partly_reversed"  # some of its actions lifted, the others stand
    REVERSED = "reversed"  # the content reinstated


class AppealDecided(BaseModel):
    appeal_id: int
    #: An ``AppealOutcome`` value.
    outcome: str
    #: A partial reversal: the contested decision's actions lifted and those that stand (empty otherwise).
    lifted: list[str] = Field(default_factory=list)
    standing: list[str] = Field(default_factory=list)


class Reinstated(BaseModel):
    """Content put back: by an appeal reversed (``appeal_id``) or an order found to infringe (``order``)."""

    appeal_id: int | None = None
    order: str | None = None


class PartlyReinstated(BaseModel):
    """An appeal partly reversed: ``lifted`` undone, ``standing`` kept, the content's status and limits after it, and
    the statement of reasons issued for what stands (empty when only account actions stand: nothing new to state)."""

    appeal_id: int
    lifted: list[str]
    standing: list[str]
    status: str
    restrictions: list[str] = Field(default_factory=list)
    statement_puid: str = ""


class RestrictionsLifted(BaseModel):
    """Reach limits lifted (``actions.lift_reach``): ``lifted`` undone, ``kept`` asked for but held by another path
    (a moderator, an appeal, the policy at upload), why, and the content's status and limits after it. The actor is
    who lifted them."""

    lifted: list[str]
    kept: list[str] = Field(default_factory=list)
    reason: str = ""
    status: str
    restrictions: list[str] = Field(default_factory=list)


class CaseEscalated(BaseModel):
    case_id: int
    note: str


class CaseClosed(BaseModel):
    case_id: int
    removed_by: str
    status: str


class Curated(BaseModel):
    bank: str
    entry_ids: list[int]
    skipped: list[str]


class CaseMoved(BaseModel):
    case_id: int
    from_queue: str
    to_queue: str
    category: str
    #: Why, in words: which change moved it (``designation 3: hate_speech -> violent_extremism``).
    reason: str = ""


class StrikeCounted(BaseModel):
    strikes: int


class Suspended(BaseModel):
    action: str
    #: ISO 8601 text; ``None`` for a permanent suspension.
    until: str | None = None


#: Each kind's payload model: what ``record`` writes and ``payload`` reads for it.
PAYLOADS: dict[EventKind, type[BaseModel]] = {
    EventKind.SUBMITTED: Submitted, EventKind.RESUBMITTED: Resubmitted, EventKind.VERDICT: VerdictGiven,
    EventKind.SHADOW_VERDICT: ShadowVerdict, EventKind.NOTICE: NoticeReceived, EventKind.VIEWS_THRESHOLD: ViewsCrossed,
    EventKind.CASE_OPENED: CaseOpened, EventKind.DECISION: Decided, EventKind.ACTIONS_APPLIED: ActionsApplied,
    EventKind.STATEMENT_ISSUED: StatementIssued, EventKind.APPEAL_FILED: AppealFiled,
    EventKind.APPEAL_DECIDED: AppealDecided, EventKind.REINSTATED: Reinstated,
    EventKind.PARTLY_REINSTATED: PartlyReinstated, EventKind.RESTRICTIONS_LIFTED: RestrictionsLifted,
    EventKind.CASE_ESCALATED: CaseEscalated,
    EventKind.CASE_CLOSED: CaseClosed, EventKind.CURATED: Curated, EventKind.CASE_MOVED: CaseMoved,
    EventKind.STRIKE: StrikeCounted, EventKind.SUSPENDED: Suspended,
}


class ContentStatus(enum.StrEnum):
    PUBLISHED = "published"  # visible, no restriction
    HELD = "held"  # waiting for review, not visible
    BLOCKED = "blocked"  # refused at upload, never published
    REMOVED = "removed"  # taken down after publication or review
    RESTRICTED = "restricted"  # visible with limits (age gate, demotion, label, territories)


class Change(enum.StrEnum):
    """What happened, as far as the status cares."""

    ALLOW = "allow"
    HOLD = "hold"
    PUBLISH_LIMITED = "publish_limited"  # published with limits while a review waits
    BLOCK = "block"
    REMOVE = "remove"
    RESTRICT = "restrict"
    CLEAR = "clear"  # reviewed: no violation
    REINSTATE = "reinstate"  # an appeal or scrutiny reversed the decision
    REINSTATE_LIMITED = "reinstate_limited"  # an appeal lifted a removal (or some limits) but some limits stand
    #: The last limits lifted by the path that applied them (``actions.lift_reach``): restricted content is published
    #: again. Neither CLEAR (it would publish held content) nor REINSTATE (removed or blocked content).
    LIFT = "lift"


class InvalidTransition(ValueError):
    pass


_LIVE = frozenset({ContentStatus.PUBLISHED, ContentStatus.HELD, ContentStatus.RESTRICTED})
_DOWN = frozenset({ContentStatus.REMOVED, ContentStatus.BLOCKED, ContentStatus.RESTRICTED})

#: change -> (statuses it may start from; None means a new item), resulting status
_TRANSITIONS: dict[Change, tuple[frozenset[ContentStatus | None], ContentStatus]] = {
    Change.ALLOW: (frozenset({None}), ContentStatus.PUBLISHED),
    Change.HOLD: (frozenset({None}), ContentStatus.HELD),
    Change.PUBLISH_LIMITED: (frozenset({None}), ContentStatus.RESTRICTED),
    Change.BLOCK: (frozenset({None}), ContentStatus.BLOCKED),
    Change.REMOVE: (frozenset(_LIVE), ContentStatus.REMOVED),
    Change.RESTRICT: (frozenset(_LIVE), ContentStatus.RESTRICTED),
    Change.CLEAR: (frozenset(_LIVE), ContentStatus.PUBLISHED),
    Change.REINSTATE: (frozenset(_DOWN), ContentStatus.PUBLISHED),
    Change.REINSTATE_LIMITED: (frozenset(_DOWN), ContentStatus.RESTRICTED),
    Change.LIFT: (frozenset({ContentStatus.RESTRICTED}), ContentStatus.PUBLISHED),
}


def next_status(current: ContentStatus | None, change: Change) -> ContentStatus:
    allowed, result = _TRANSITIONS[change]
    if current not in allowed:
        raise InvalidTransition(f"cannot {change.value} content that is {current.value if current else 'new'}")
    return result


_REMOVING = frozenset({Action.REMOVE})
_RESTRICTING = frozenset({Action.DISABLE_IN_TERRITORIES, Action.AGE_RESTRICT, Action.DEMOTE, Action.NOT_RECOMMENDED,
                          Action.LABEL})


def change_for_actions(actions: Iterable[Action]) -> Change | None:
    """A decision's effect on the content: removal beats restriction; account-only actions leave it as it is."""
    chosen = set(actions)
    if chosen & _REMOVING:
        return Change.REMOVE
    if chosen & _RESTRICTING:
        return Change.RESTRICT
    return None


def change_after_partial_reversal(standing: Iterable[Action]) -> Change | None:
    """How the content moves when an appeal lifts some actions and ``standing`` stay: a standing removal keeps it
    down (``None``); standing limits put it back with them; only account actions standing put it back whole."""
    kept = set(standing)
    if kept & _REMOVING:
        return None
    if kept & _RESTRICTING:
        return Change.REINSTATE_LIMITED
    return Change.REINSTATE


def content_restrictions(actions: Iterable[Action]) -> list[str]:
    return sorted(a.value for a in actions if a in _RESTRICTING)


class PlatformMessage(MessageKind):
    """What moderation tells the platform's webhook (signed with the webhook secret). Values are storage keys."""

    VERDICT = "content.verdict"
    ACTION = "moderation.action"
    CLEARED = "moderation.cleared"
    REINSTATED = "moderation.reinstated"
    #: An appeal lifted some actions: ``actions`` are those that stand, ``lifted`` those undone.
    PARTLY_REINSTATED = "moderation.partly_reinstated"
    #: Reach limits lifted outside an appeal (a fact-checker's correction): ``lifted`` those undone, ``restrictions``
    #: those in force; no statement of reasons.
    RESTRICTIONS_LIFTED = "moderation.restrictions_lifted"
