"""The feed's reasons, the plug-in that feeds reasons from other domains into the eligibility view, and its errors."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from sqlalchemy.orm import Session

from bastion.core.errors import DomainError


class Reason(enum.StrEnum):
    """Why a candidate is kept out of a feed: stable codes an appeal and a statement of reasons can cite.

    Values are storage and wire keys: never rename one; retire a value by keeping it reserved here.
    """

    REMOVED = "removed"  # removed, or blocked at upload
    HELD_FOR_REVIEW = "held_for_review"
    NOT_RECOMMENDED = "not_recommended"  # restricted to "not eligible for recommendation"
    BORDERLINE = "borderline"
    AGE_RESTRICTED = "age_restricted"  # age-restricted, and the viewer is (or may be) a minor
    CRISIS_EXCLUSION = "crisis_exclusion"  # a livestream from a country an active crisis excludes
    DISABLED_IN_TERRITORY = "disabled_in_territory"  # disabled where the viewer is, or the viewer's country unknown
    FACT_CHECKED_FALSE = "fact_checked_false"  # rated false by a fact-checker (a reason source)
    DESIGNATED_ENTITY = "designated_entity"  # by or about a designated dangerous entity (a reason source)
    UNKNOWN = "unknown"  # never submitted to Bastion: nothing vouches for it


#: The readable text of each reason (for the platform, appeals and statements of reasons).
REASON_TEXT: dict[Reason, str] = {
    Reason.REMOVED: "The content was removed or refused at upload.",
    Reason.HELD_FOR_REVIEW: "The content is held until a moderator has reviewed it.",
    Reason.NOT_RECOMMENDED: "The content is not eligible for recommendation.",
    Reason.BORDERLINE: "The content is borderline: allowed, but not recommended.",
    Reason.AGE_RESTRICTED: "The content is age-restricted and the viewer is, or may be, a minor.",
    Reason.CRISIS_EXCLUSION: "Livestreams from this country are kept out of feeds during an active crisis.",
    Reason.DISABLED_IN_TERRITORY: ("The content is disabled in the viewer's country (or the viewer's country was not "
                                   "given, and it is disabled somewhere)."),
    Reason.FACT_CHECKED_FALSE: "An independent fact-checker rated the content false.",
    Reason.DESIGNATED_ENTITY: "The content is by or about a designated dangerous organisation or individual.",
    Reason.UNKNOWN: "The content is unknown to moderation: it was never submitted.",
}


@dataclass(frozen=True)
class ReasonChanges:
    """What a reason source reports since its cursor: each content id's reasons from this source *now* (an empty
    set: none any more), and the cursor to ask from next time."""

    cursor: int
    reasons: Mapping[str, frozenset[Reason]]


class ReasonSource(Protocol):
    """Reasons another domain holds about content (fact-checks, designated entities), followed by the view.

    Registered once, at start (``web/app.py: feed_reason_sources``), and checked there: unique names. The view
    calls ``changes(session, 0)`` when it loads, then ``changes(session, cursor)`` on every refresh (about every
    100 ms), so keep it an indexed read of what changed since ``cursor`` (an event log's id, say).

    Don't: return reasons the feed does not define (add a ``Reason`` first), or read another domain's tables.
    """

    @property
    def name(self) -> str: ...

    def changes(self, session: Session, cursor: int) -> ReasonChanges: ...


class FeedError(DomainError):
    pass


class InvalidViewer(FeedError):
    status, title = 422, "Invalid viewer"


class CrisisNotFound(FeedError):
    status, title = 404, "Crisis not found"


class InvalidCrisis(FeedError):
    status, title = 422, "Invalid crisis"


class CrisisConflict(FeedError):
    status, title = 409, "Crisis conflict"


class CrisisForbidden(FeedError):
    """Naming the exchanges a crisis shares with is the exchanges' administrators' decision."""

    status, title = 403, "Forbidden"


class SharedHash(NamedTuple):
    """A hash of the crisis bank to share: its value, its category, and whether its bank is restricted."""

    signal_type: str
    value: str
    category: str
    restricted: bool


class HashSharing(Protocol):
    """Sharing a crisis's confirmed perpetrator content with hash exchanges (the exchanges domain's
    ``CrisisSharing`` satisfies it, wired in ``web/app.py`` and the CLI; feed never imports that domain).

    Don't: send anything from here. ``queue`` writes outbox messages in the caller's transaction."""

    def check_targets(self, session: Session, names: Sequence[str]) -> list[str]:
        """The names, each an exchange that takes shared hashes; refuses (a ``DomainError``) any other."""
        ...

    def queue(self, session: Session, *, subject: str, names: Sequence[str], hashes: Sequence[SharedHash],
              tags: Sequence[str], description: str) -> list[str]:
        """Queue the hashes to the exchanges; returns what was done, in words for the timeline."""
        ...
