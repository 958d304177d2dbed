"""The contact point's order states, event kinds, their payloads, and the one pure function that moves a state.

Every step of an order is an ``OrderEvent`` written with ``core.events.record``; its payload is the model of its
kind here (each model names its ``KIND``, so a payload cannot be written under another kind). Every change of an
order's state goes through ``next_state``, tested as a table over every (state, change) pair.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from bastion.core.events import payload, record
from bastion.orders.interfaces import OrderConflict
from bastion.orders.models import OrderEvent
from bastion.orders.wire import ActionTaken, InabilityReason


class OrderState(enum.StrEnum):
    """Where a received order stands. Values are storage keys: never rename."""

    RECEIVED = "received"  # the one-hour clock runs
    EXECUTED = "executed"  # removed or disabled; Annex II sent
    UNABLE = "unable"  # Annex III sent; the clock waits for a clarification
    REINSTATED = "reinstated"  # scrutiny found an infringement; the content is back
    REFERRED = "referred"  # a voluntary referral, waiting to be put to moderators
    REFERRAL_IN_REVIEW = "referral_in_review"


class OrderEventKind(enum.StrEnum):
    """Values are storage keys: never rename; retire a value by keeping it reserved here."""

    RECEIVED = "order.received"
    REPEATED = "order.repeated"  # the same order again (a retry): same answer
    EXECUTED = "order.executed"
    UNABLE = "order.unable"
    CLARIFIED = "order.clarified"
    ESCALATED = "order.escalated"
    OVERDUE = "order.overdue"
    REINSTATED = "order.reinstated"
    REFERRAL_RECEIVED = "referral.received"
    REFERRAL_IN_REVIEW = "referral.in_review"
    PRESERVED = "order.preserved"  # removed content sealed and kept (Art. 6)
    PRESERVATION_EXTENDED = "order.preservation_extended"
    PURGED = "order.purged"
    NOT_PRESERVED = "order.not_preserved"  # no media key configured: nothing could be kept sealed
    PROVIDER_INFORMED = "order.content_provider_informed"  # Art. 11: reasons and redress sent to the uploader
    THREAT_REPORTED = "threat.reported"  # Art. 14(5): subject is "threat:<digest of the content id>"


# --- payloads, one model per kind ---------------------------------------------------------------------------------


class OrderPayload(BaseModel):
    """An order event's data. ``extra="forbid"``: a stored payload that grew a field fails at the read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    KIND: ClassVar[OrderEventKind]


class Received(OrderPayload):
    """A removal order recorded; ``authority_signature`` says what became of the issuing authority's own
    signature on an order a hub forwarded (``none``, ``verified``, ``not checked (key not trusted here)``)."""

    KIND = OrderEventKind.RECEIVED
    sender: str
    issuing_member_state: str
    urls: int
    nonce: str
    authority_signature: str
    authority_key: str | None = None


class ReferralReceived(Received):
    KIND = OrderEventKind.REFERRAL_RECEIVED


class Repeated(OrderPayload):
    KIND = OrderEventKind.REPEATED
    nonce: str


class ActedOn(BaseModel):
    """One item of an executed order: its status after, and whether this order took it down."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    content_id: str
    status: str
    acted: bool


class Executed(OrderPayload):
    KIND = OrderEventKind.EXECUTED
    action: ActionTaken
    content: list[ActedOn]
    seconds_since_receipt: float
    within_hour: bool
    category: str


class Unable(OrderPayload):
    KIND = OrderEventKind.UNABLE
    reason: InabilityReason
    explanation: str


class Clarified(OrderPayload):
    """Counts only: the identification itself is on the order (``ReceivedOrder.clarified``)."""

    KIND = OrderEventKind.CLARIFIED
    explanation: str
    urls: int
    content_ids: int


class Escalated(OrderPayload):
    KIND = OrderEventKind.ESCALATED
    minutes: int


class Overdue(OrderPayload):
    KIND = OrderEventKind.OVERDUE
    minutes: float


class Reinstated(OrderPayload):
    KIND = OrderEventKind.REINSTATED
    member_state: str
    reasons: str
    content_ids: list[str]


class ReferralInReview(OrderPayload):
    KIND = OrderEventKind.REFERRAL_IN_REVIEW
    content_ids: list[str]


class Preserved(OrderPayload):
    KIND = OrderEventKind.PRESERVED
    content_ids: list[str]
    keep_until: dt.datetime


class PreservationExtended(OrderPayload):
    KIND = OrderEventKind.PRESERVATION_EXTENDED
    until: dt.datetime


class Purged(OrderPayload):
    KIND = OrderEventKind.PURGED
    content_id: str
    kept_since: dt.datetime


class NotPreserved(OrderPayload):
    KIND = OrderEventKind.NOT_PRESERVED
    reason: str


class ProviderInformed(OrderPayload):
    KIND = OrderEventKind.PROVIDER_INFORMED
    content_ids: list[str]
    sent: bool


class ThreatReported(OrderPayload):
    KIND = OrderEventKind.THREAT_REPORTED
    content_id: str
    recipient: str
    member_state: str | None


PAYLOADS: dict[OrderEventKind, type[OrderPayload]] = {
    model.KIND: model for model in (
        Received, ReferralReceived, Repeated, Executed, Unable, Clarified, Escalated, Overdue, Reinstated,
        ReferralInReview, Preserved, PreservationExtended, Purged, NotPreserved, ProviderInformed, ThreatReported)}


def write(session: Session, subject: str, actor: str, at: dt.datetime, data: OrderPayload) -> OrderEvent:
    """Append an order event of ``data``'s kind, in the caller's transaction."""
    return record(session, OrderEvent, subject=subject, kind=data.KIND, actor=actor, at=at, data=data)


def read(event: OrderEvent) -> OrderPayload:
    """An order event's payload, validated against its kind's model."""
    return payload(event, PAYLOADS[OrderEventKind(event.kind)])


# --- the one transition function ----------------------------------------------------------------------------------


class OrderChange(enum.StrEnum):
    """What happens to an order, as far as its state cares."""

    RECEIVE_ORDER = "receive_order"
    RECEIVE_REFERRAL = "receive_referral"
    EXECUTE = "execute"  # remove or disable its content (Annex II)
    DECLARE_UNABLE = "declare_unable"  # Annex III, by a person or because nothing matched
    CLARIFY = "clarify"  # the authority's clarification after an Annex III: the hour restarts
    REINSTATE = "reinstate"  # Art. 4(4): the order ceased to have effect
    REFER = "refer"  # a referral put to moderators


class InvalidOrderTransition(OrderConflict):
    """A step the order's state does not allow: answered 409."""


_ANY = frozenset(OrderState)
#: change -> (states it acts on, resulting state, states where it is a repeat and changes nothing). ``None`` stands
#: for an order not received yet; every other (state, change) pair is refused.
_TRANSITIONS: dict[OrderChange, tuple[frozenset[OrderState | None], OrderState, frozenset[OrderState]]] = {
    OrderChange.RECEIVE_ORDER: (frozenset({None}), OrderState.RECEIVED, _ANY),  # a repeat: the same answer
    OrderChange.RECEIVE_REFERRAL: (frozenset({None}), OrderState.REFERRED, _ANY),
    # a retry, the worker after a crash, a person pressing twice: an order not waiting is left alone
    OrderChange.EXECUTE: (frozenset({OrderState.RECEIVED}), OrderState.EXECUTED, _ANY - {OrderState.RECEIVED}),
    OrderChange.DECLARE_UNABLE: (frozenset({OrderState.RECEIVED}), OrderState.UNABLE, frozenset()),
    # a clarification of an order that is not waiting for one (repeated, or late) is answered with its status
    OrderChange.CLARIFY: (frozenset({OrderState.UNABLE}), OrderState.RECEIVED, _ANY - {OrderState.UNABLE}),
    OrderChange.REINSTATE: (_ANY - {OrderState.REINSTATED}, OrderState.REINSTATED, frozenset({OrderState.REINSTATED})),
    OrderChange.REFER: (frozenset({OrderState.REFERRED}), OrderState.REFERRAL_IN_REVIEW,
                        _ANY - {OrderState.REFERRED}),
}


#: Why a refused change is refused, in the words of the one who asked.
_REFUSALS = {OrderChange.DECLARE_UNABLE: "not waiting for action"}


def next_state(current: OrderState | None, change: OrderChange, *, reference: str = "") -> OrderState:
    """The state ``change`` moves an order in ``current`` to (``current`` itself: a repeat, nothing to do);
    ``InvalidOrderTransition`` (409) when the state does not allow it. ``reference`` only names the order."""
    acts_on, result, repeats = _TRANSITIONS[change]
    if current in acts_on:
        return result
    if current is not None and current in repeats:
        return current
    name = f"order {reference!r}" if reference else "the order"
    raise InvalidOrderTransition(f"{name} is {current.value if current else 'not received'}, "
                                 f"{_REFUSALS.get(change, 'which does not allow ' + change.value.replace('_', ' '))}")
