"""The hub's order states, event kinds, their payloads, and the one pure function that moves a state.

Every step the hub takes is a ``HubEvent`` written with ``core.events.record``; its payload is the model of its kind
here (each model names its ``KIND``). Every change of a hub order's state goes through ``next_state``, tested as a
table over every (state, change) pair.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from bastion.core.events import payload, record
from bastion.hub.interfaces import HubConflict
from bastion.hub.models import HubEvent
from bastion.orders.wire import Feedback, Inability


class HubState(enum.StrEnum):
    """Where an order stands at the hub. Values are storage keys: never rename."""

    QUEUED = "queued"  # in the outbox, not yet acknowledged
    DELIVERED = "delivered"  # the contact point acknowledged it
    EXECUTED = "executed"  # Annex II received
    UNABLE = "unable"  # Annex III received; waiting for the authority's clarification
    LINKED = "linked"  # same content as an earlier order: not sent
    ENDED = "ended"  # scrutiny found an infringement; reinstatement sent
    FAILED = "failed"  # the contact point refused it for good, or every attempt failed: a person must act


class HubEventKind(enum.StrEnum):
    """Values are storage keys: never rename; retire a value by keeping it reserved here."""

    ISSUED = "order.issued"
    LINKED = "order.linked"
    ALSO_ORDERED = "order.also_ordered"  # on the first order: a later authority asked for the same content
    COPY_TO_HOST = "order.copy_to_host_state"
    SENT = "order.sent"
    ACKNOWLEDGED = "order.acknowledged"
    FEEDBACK = "order.feedback"
    INABILITY = "order.inability"
    CLARIFIED = "order.clarified"
    SCRUTINY_CLEARED = "order.scrutiny_cleared"
    ENDED = "order.ended"
    UNLINKED = "order.unlinked"  # the order it was linked to ended, failed or could not be executed: sent on its own
    FAILED = "order.delivery_failed"  # the contact point refused it for good, or every attempt failed


# --- payloads, one model per kind ---------------------------------------------------------------------------------


class HubPayload(BaseModel):
    """A hub event's data. ``extra="forbid"``: a stored payload that grew a field fails at the read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    KIND: ClassVar[HubEventKind]


class ByPerson(HubPayload):
    """A step an authority's person took in the console (``via``, ``user``), or by API (``via`` left out)."""

    via: Literal["console", "api"] | None = None
    user: str | None = None


class Issued(ByPerson):
    """By API, ``key`` is the authority's key that signed the order; from the console, ``user`` issued it."""

    KIND = HubEventKind.ISSUED
    kind: Literal["removal_order", "referral"]
    urls: int
    key: str | None = None


class Linked(HubPayload):
    KIND = HubEventKind.LINKED
    linked_to: str


class AlsoOrdered(HubPayload):
    KIND = HubEventKind.ALSO_ORDERED
    by: str
    hub_reference: str


class CopyToHost(HubPayload):
    KIND = HubEventKind.COPY_TO_HOST
    member_state: str
    until: dt.datetime


class Sent(HubPayload):
    KIND = HubEventKind.SENT
    attempt: int


class Acknowledged(HubPayload):
    KIND = HubEventKind.ACKNOWLEDGED
    status: int | None


class FeedbackReceived(HubPayload):
    KIND = HubEventKind.FEEDBACK
    answer: Feedback


class InabilityReceived(HubPayload):
    """An Annex III; ``ignored`` says why it changed nothing (the order was executed already)."""

    KIND = HubEventKind.INABILITY
    answer: Inability
    ignored: str | None = None


class Clarified(ByPerson):
    KIND = HubEventKind.CLARIFIED
    explanation: str


class ScrutinyCleared(ByPerson):
    KIND = HubEventKind.SCRUTINY_CLEARED
    reasons: str


class Ended(ByPerson):
    KIND = HubEventKind.ENDED
    reasons: str


class Unlinked(HubPayload):
    KIND = HubEventKind.UNLINKED
    reason: str
    was_linked_to: str


class DeliveryFailed(HubPayload):
    KIND = HubEventKind.FAILED
    attempt: int
    status: int | None
    error: str


PAYLOADS: dict[HubEventKind, type[HubPayload]] = {
    model.KIND: model for model in (
        Issued, Linked, AlsoOrdered, CopyToHost, Sent, Acknowledged, FeedbackReceived, InabilityReceived, Clarified,
        ScrutinyCleared, Ended, Unlinked, DeliveryFailed)}


def write(session: Session, subject: str, actor: str, at: dt.datetime, data: HubPayload) -> HubEvent:
    """Append a hub event of ``data``'s kind, in the caller's transaction."""
    return record(session, HubEvent, subject=subject, kind=data.KIND, actor=actor, at=at, data=data)


def read(event: HubEvent) -> HubPayload:
    """A hub event's payload, validated against its kind's model."""
    return payload(event, PAYLOADS[HubEventKind(event.kind)])


# --- the one transition function ----------------------------------------------------------------------------------


class HubChange(enum.StrEnum):
    """What happens to an order at the hub, as far as its state cares."""

    ISSUE = "issue"
    LINK = "link"  # same content as an earlier order in force: not sent
    UNLINK = "unlink"  # the earlier order no longer carries it: sent on its own
    ACKNOWLEDGE = "acknowledge"  # the contact point answered 2xx
    FAIL = "fail"  # refused for good, or every attempt failed
    FEEDBACK = "feedback"  # Annex II
    INABILITY = "inability"  # Annex III
    CLARIFY = "clarify"  # the authority's clarification after an Annex III
    END = "end"  # Art. 4 scrutiny found an infringement


class InvalidHubTransition(HubConflict):
    """A step the order's state does not allow: answered 409."""


_ANY = frozenset(HubState)
#: change -> (states it acts on, resulting state, states where it is a repeat or late and changes nothing). ``None``
#: stands for an order not issued yet; every other (state, change) pair is refused.
_TRANSITIONS: dict[HubChange, tuple[frozenset[HubState | None], HubState, frozenset[HubState]]] = {
    HubChange.ISSUE: (frozenset({None}), HubState.QUEUED, _ANY),  # the same reference and body again
    HubChange.LINK: (frozenset({HubState.QUEUED}), HubState.LINKED, frozenset()),
    HubChange.UNLINK: (frozenset({HubState.LINKED}), HubState.QUEUED, frozenset()),
    # a 2xx recorded late (the answer came first, or the order failed meanwhile) changes nothing
    HubChange.ACKNOWLEDGE: (frozenset({HubState.QUEUED}), HubState.DELIVERED, _ANY - {HubState.QUEUED}),
    HubChange.FAIL: (frozenset({HubState.QUEUED}), HubState.FAILED, _ANY - {HubState.QUEUED}),
    # the provider's answer is the record, whatever the hub saw of the delivery; an ended order stays ended
    HubChange.FEEDBACK: (_ANY - {HubState.ENDED}, HubState.EXECUTED, frozenset({HubState.ENDED})),
    # a late or reordered Annex III never undoes an Annex II: the content was removed
    HubChange.INABILITY: (_ANY - {HubState.ENDED, HubState.EXECUTED}, HubState.UNABLE,
                          frozenset({HubState.ENDED, HubState.EXECUTED})),
    HubChange.CLARIFY: (frozenset({HubState.UNABLE}), HubState.DELIVERED, frozenset()),
    HubChange.END: (_ANY - {HubState.ENDED}, HubState.ENDED, frozenset({HubState.ENDED})),
}
#: Why a refused change is refused, in the words of the one who asked.
_REFUSALS = {HubChange.CLARIFY: "only an unexecutable order is clarified"}


def next_state(current: HubState | None, change: HubChange, *, reference: str = "") -> HubState:
    """The state ``change`` moves an order in ``current`` to (``current`` itself: a repeat or a late step, nothing
    to do); ``InvalidHubTransition`` (409) when the state does not allow it. ``reference`` only names the order."""
    acts_on, result, repeats = _TRANSITIONS[change]
    if current in acts_on:
        return result
    if current is not None and current in repeats:
        return current
    name = f"order {reference}" if reference else "the order"
    raise InvalidHubTransition(f"{name} is {current.value if current else 'not issued'}; "
                               f"{_REFUSALS.get(change, 'it cannot ' + change.value)}")
