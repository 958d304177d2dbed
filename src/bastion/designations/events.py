"""Event kinds, payloads and the one pure function that moves a change of category. Values are storage keys."""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field


class DesignationKind(enum.StrEnum):
    DESIGNATED = "entity.designated"
    CHANGE_PROPOSED = "entity.change_proposed"
    CATEGORY_CHANGED = "entity.category_changed"  # a confirmed change, applied
    CHANGE_REJECTED = "entity.change_rejected"
    LINKS_CHANGED = "entity.links_changed"  # aliases, keywords or banks edited
    DELISTED = "entity.delisted"  # taken off the list by its designating body: links no longer apply


class Designated(BaseModel):
    name: str
    category: str
    designating_body: str
    designated_on: str
    banks: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)


class ChangeKind(enum.StrEnum):
    """What a proposed change would do once another person confirms it (four eyes for each)."""

    CATEGORY = "category"  # a new policy category: open cases move, banks' entries are recategorised
    LINKS = "links"  # new aliases, keywords or banks: which content is designated follows
    DELIST = "delist"  # taken off the list: its links no longer make content designated


class ChangeProposed(BaseModel):
    change_id: int
    from_category: str
    to_category: str
    open_cases: int
    past_decisions: int
    note: str = ""
    kind: ChangeKind = ChangeKind.CATEGORY


class CategoryChanged(BaseModel):
    change_id: int
    from_category: str
    to_category: str
    #: Case id -> the queue it was moved to.
    moved_cases: dict[str, str] = Field(default_factory=dict)
    #: Content ids of the past decisions the change would alter, as confirmed (for people to revisit).
    past_decisions: list[str] = Field(default_factory=list)
    #: Bank name -> entries recategorised (future matches follow the new category).
    bank_entries: dict[str, int] = Field(default_factory=dict)


class ChangeRejected(BaseModel):
    change_id: int


class LinksChanged(BaseModel):
    """The entity's links after the edit, and what they were before."""

    aliases: list[str]
    keywords: list[str]
    banks: list[str]
    before: dict[str, list[str]] = Field(default_factory=dict)
    #: The confirmed change that applied the edit (``None`` for events written before edits needed four eyes).
    change_id: int | None = None


class Delisted(BaseModel):
    delisted_on: str
    note: str = ""
    #: Proposed changes of category dropped with it (their previews no longer hold).
    superseded_changes: list[int] = Field(default_factory=list)
    #: The confirmed change that delisted it (``None`` for events written before delisting needed four eyes).
    change_id: int | None = None


PAYLOADS: dict[DesignationKind, type[BaseModel]] = {
    DesignationKind.DESIGNATED: Designated, DesignationKind.CHANGE_PROPOSED: ChangeProposed,
    DesignationKind.CATEGORY_CHANGED: CategoryChanged, DesignationKind.CHANGE_REJECTED: ChangeRejected,
    DesignationKind.LINKS_CHANGED: LinksChanged, DesignationKind.DELISTED: Delisted,
}

#: The kinds that change which content is linked to a designated entity (a follower looks at every item again).
LINKING_KINDS = (DesignationKind.DESIGNATED, DesignationKind.LINKS_CHANGED, DesignationKind.DELISTED)


class ChangeState(enum.StrEnum):
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    #: Another change of the same entity was confirmed first: this one's preview no longer holds.
    SUPERSEDED = "superseded"


class Step(enum.StrEnum):
    CONFIRM = "confirm"
    REJECT = "reject"
    SUPERSEDE = "supersede"


class InvalidStep(ValueError):
    pass


_TRANSITIONS: dict[Step, tuple[frozenset[ChangeState], ChangeState]] = {
    Step.CONFIRM: (frozenset({ChangeState.PROPOSED}), ChangeState.CONFIRMED),
    Step.REJECT: (frozenset({ChangeState.PROPOSED}), ChangeState.REJECTED),
    Step.SUPERSEDE: (frozenset({ChangeState.PROPOSED}), ChangeState.SUPERSEDED),
}


def next_state(current: ChangeState, step: Step) -> ChangeState:
    """A change is decided once: only a proposed change may be confirmed, rejected or superseded."""
    allowed, result = _TRANSITIONS[step]
    if current not in allowed:
        raise InvalidStep(f"cannot {step.value} a change that is {current.value}")
    return result
