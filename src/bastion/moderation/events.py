"""Event kinds, content statuses, and the one pure function that moves a status.

Following Ozone's lesson: every status change goes through ``next_status`` with explicit guards, tested as a table,
instead of if-blocks spread over the services.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

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
    CASE_ESCALATED = "case.escalated"  # a moderator handed a case up to senior reviewers
    CASE_CLOSED = "case.closed"  # closed unreviewed: an order or another case had taken the content down already
    CURATED = "content.curated"  # confirmed media added to a bank (the curation loop)
    STRIKE = "account.strike"
    SUSPENDED = "account.suspended"


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


def content_restrictions(actions: Iterable[Action]) -> list[str]:
    return sorted(a.value for a in actions if a in _RESTRICTING)
