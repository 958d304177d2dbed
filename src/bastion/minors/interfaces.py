"""The minors domain's vocabulary (bands, actions, decisions) and its errors.

Values are storage keys and wire names: never rename one; retire a value by keeping it reserved here.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from bastion.core.errors import DomainError


class Band(enum.StrEnum):
    """An account's age band. ``UNKNOWN`` means nothing is known; the rules treat it as the most protective band
    that is plausible wherever that protects someone (``docs/minors.md``)."""

    UNDER_13 = "under_13"
    B13_15 = "13_15"
    B16_17 = "16_17"
    ADULT = "18_plus"
    UNKNOWN = "unknown"


#: Bands that may be a child: the targets the floor protects.
MINOR_BANDS = frozenset({Band.UNDER_13, Band.B13_15, Band.B16_17, Band.UNKNOWN})
UNDER_16_BANDS = frozenset({Band.UNDER_13, Band.B13_15, Band.UNKNOWN})
#: Bands that may be an adult: the actors the floor restrains (an unknown age may be an adult's).
ADULT_PLAUSIBLE = frozenset({Band.ADULT, Band.UNKNOWN})


class AgeBasis(enum.StrEnum):
    """What the platform's knowledge of an age rests on."""

    DECLARED = "declared"
    ESTIMATED = "estimated"
    VERIFIED = "verified"


class Action(enum.StrEnum):
    DM = "dm"
    DM_MEDIA = "dm_media"
    COMMENT = "comment"
    REPLY = "reply"
    MENTION = "mention"
    DUET = "duet"
    STITCH = "stitch"
    DOWNLOAD = "download"
    FOLLOW = "follow"
    ADD_TO_GROUP = "add_to_group"
    LIVE = "live"
    LIVE_GIFT = "live_gift"
    VIEW = "view"  # age-restricted content
    SUGGEST = "suggest"  # the target appears in the actor's "suggested accounts"
    NOTIFY = "notify"  # a push notification to the actor's own account (quiet hours), no target


#: Actions by the actor alone: no target account.
SOLO_ACTIONS = frozenset({Action.LIVE, Action.LIVE_GIFT, Action.NOTIFY})
#: The actions "what can A do to B?" answers (the console, ``bastion minors ask``): ``notify`` depends on the
#: hour at the account, not on another account.
QUESTION_ACTIONS = tuple(a for a in Action if a is not Action.NOTIFY)
#: Actions by which an adult reaches a minor: counted for grooming signals when not mutual.
CONTACT_ACTIONS = frozenset({Action.DM, Action.DM_MEDIA, Action.FOLLOW, Action.ADD_TO_GROUP, Action.MENTION,
                             Action.COMMENT, Action.REPLY})


class Decision(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Audience(enum.StrEnum):
    """A piece of content's audience setting (who may comment on or react to it)."""

    EVERYONE = "everyone"
    FOLLOWERS = "followers"
    FRIENDS = "friends"  # mutual follows
    NOBODY = "nobody"


class MinorsError(DomainError):
    title = "Minors request refused"


class RulesError(MinorsError):
    """A rules file that cannot be used; ``problems`` holds one message per problem, each naming where it is."""

    status = 422
    title = "Invalid minors rules"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class InvalidAge(MinorsError):
    status = 422
    title = "Invalid age"


class AgeNotRecorded(MinorsError):
    status = 404
    title = "No age recorded"


class SettingRefused(MinorsError):
    status = 422
    title = "Setting refused"


class PairingError(MinorsError):
    status = 409
    title = "Family pairing refused"


class LinkNotFound(MinorsError):
    status = 404
    title = "No such family link"


class CaseNotFound(MinorsError):
    status = 404
    title = "No such minors case"


class CaseAlreadyDecided(MinorsError):
    status = 409
    title = "Case already decided"


class InvalidCheck(MinorsError):
    status = 422
    title = "Invalid interaction check"


class ReportingUnavailable(MinorsError):
    status = 503
    title = "No reporting to NCMEC here"


@dataclass(frozen=True)
class ContactAttempt:
    """One attempt listed in a grooming case: when, which action, which account, and the decision."""

    at: dt.datetime
    action: str
    target: str
    decision: str


@dataclass(frozen=True)
class EnticementCase:
    """A confirmed grooming case, as the report of online enticement needs it: the adult, the case, the attempts."""

    account_id: str
    case_id: int
    attempts: Sequence[ContactAttempt]


class EnticementReporter(Protocol):
    """Drafts a report to NCMEC of online enticement of a child from a confirmed grooming case, in the caller's
    transaction, and returns the draft's id. ``reporting/`` sits beside ``minors/``, not below it: ``web/app.py``
    wires ``reporting.services.draft_enticement`` in through this."""

    def __call__(self, session: Session, case: EnticementCase, *, actor: str) -> str: ...
