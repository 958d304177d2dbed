"""Event kinds and their payloads, and the one pure function that moves a family link's state."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel

from bastion.core.outbox.kinds import MessageKind


class EventKind(enum.StrEnum):
    """Values are storage keys: never rename; retire a value by keeping it reserved here."""

    AGE_RECORDED = "age.recorded"
    AGE_CONTESTED = "age.contested"
    AGE_CONTEST_DECIDED = "age.contest_decided"
    DENIED = "interaction.denied"
    #: An adult reached a minor without a mutual follow, and was let through: counted for grooming signals.
    CONTACT = "interaction.contact"
    SETTING_CHANGED = "setting.changed"
    CASE_OPENED = "case.opened"
    CASE_RAISED = "case.raised"  # reserved
    CASE_DECIDED = "case.decided"
    PAIRING_OFFERED = "family.offered"
    LINKED = "family.linked"
    LIMITS_SET = "family.limits_set"
    UNLINKED = "family.unlinked"


class MinorsMessage(MessageKind):
    """What the minors domain tells the platform's webhook (signed with the webhook secret); the payload's ``kind``
    names the event. Values are storage keys."""

    CASE_DECIDED = "minors.case.decided"
    LINKED = "minors.family.linked"
    LIMITS_SET = "minors.family.limits_set"
    UNLINKED = "minors.family.unlinked"


#: The message each event the platform hears about is sent as; no other event is sent.
MESSAGE_FOR = {EventKind.CASE_DECIDED: MinorsMessage.CASE_DECIDED, EventKind.LINKED: MinorsMessage.LINKED,
               EventKind.LIMITS_SET: MinorsMessage.LIMITS_SET, EventKind.UNLINKED: MinorsMessage.UNLINKED}


class CaseKind(enum.StrEnum):
    UNDER_13 = "under_13"
    GROOMING = "grooming"


class CaseState(enum.StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"  # under 13: the account is to be removed; grooming: the signals are real
    DISMISSED = "dismissed"


def next_case_state(current: CaseState, confirmed: bool) -> CaseState:
    """A case is decided once: open to confirmed or dismissed."""
    if current is not CaseState.OPEN:
        raise InvalidCaseTransition(f"the case is already {current.value}")
    return CaseState.CONFIRMED if confirmed else CaseState.DISMISSED


class InvalidCaseTransition(ValueError):
    pass


class LinkState(enum.StrEnum):
    PENDING = "pending"
    LINKED = "linked"
    UNLINKED = "unlinked"


class LinkChange(enum.StrEnum):
    CONFIRM = "confirm"  # the code was entered on the teen's account
    SET_LIMITS = "set_limits"
    UNLINK = "unlink"


class InvalidLinkTransition(ValueError):
    pass


_LINK_TRANSITIONS: dict[LinkChange, tuple[frozenset[LinkState], LinkState]] = {
    LinkChange.CONFIRM: (frozenset({LinkState.PENDING}), LinkState.LINKED),
    LinkChange.SET_LIMITS: (frozenset({LinkState.LINKED}), LinkState.LINKED),
    LinkChange.UNLINK: (frozenset({LinkState.PENDING, LinkState.LINKED}), LinkState.UNLINKED),
}


def next_link_state(current: LinkState, change: LinkChange) -> LinkState:
    allowed, result = _LINK_TRANSITIONS[change]
    if current not in allowed:
        raise InvalidLinkTransition(f"cannot {change.value.replace('_', ' ')} a link that is {current.value}")
    return result


class AgeRecorded(BaseModel):
    basis: str
    years: float
    method: str = ""
    confidence: float | None = None
    band: str
    observed_at: str


class AgeContested(BaseModel):
    statement: str
    band: str


class AgeContestDecided(BaseModel):
    upheld: bool
    band_before: str
    band_after: str
    note: str = ""


class Denied(BaseModel):
    action: str
    target: str | None
    actor_band: str
    target_band: str | None
    rule: str
    content_id: str | None = None


class Contact(BaseModel):
    action: str
    target: str
    target_band: str


class SettingChanged(BaseModel):
    setting: str
    before: Any
    after: Any
    band: str
    by: str


class CaseOpened(BaseModel):
    case_id: int
    kind: str
    queue: str
    reason: str


class FamilyChange(BaseModel):
    link_id: int
    parent_id: str
    teen_id: str | None
    limits: dict[str, Any] = {}
    by: str = ""


class CaseDecided(BaseModel):
    case_id: int
    kind: str
    state: str
    note: str = ""
    #: The draft report to NCMEC of online enticement a confirmed grooming case gave (child-safety roles only).
    report_id: str | None = None
