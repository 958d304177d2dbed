"""The contact point over HTTP: ``POST /v1/orders`` takes signed messages; people read and act with tokens.

``POST /v1/orders`` is authenticated by its Ed25519 signature, not a bearer token: the sender is whoever holds a key
registered with ``bastion orders trust`` (a hub, or an authority for its own Member State), and nobody else. Routes
raise domain errors as they come: the app's one handler answers them as problem+json.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import require
from bastion.orders import services
from bastion.orders.events import OrderState
from bastion.orders.services import ContactPoint
from bastion.orders.wire import (
    Ack,
    ActionTaken,
    InabilityReason,
    MessageType,
    SignedMessage,
    signed_body,
)

router = APIRouter(prefix="/v1/orders", tags=["removal orders"])


def contact_point(request: Request) -> ContactPoint:
    cp = request.app.state.contact_point
    assert isinstance(cp, ContactPoint)
    return cp


async def signed_message(request: Request, cp: Annotated[ContactPoint, Depends(contact_point)]) -> SignedMessage:
    """The signed body, its signature and nonce checked, then parsed (``services.read_signed``)."""
    body = await request.body()
    # Database work runs in the thread pool, never on the event loop.
    return await run_in_threadpool(lambda: services.read_signed(
        cp.db, request.headers, body, keys=cp.keys, clock=cp.clock, window_seconds=cp.window_seconds,
        expect=services.RECEIVED_TYPES, attested=True))


CP = Annotated[ContactPoint, Depends(contact_point)]
Signed = Annotated[SignedMessage, Depends(signed_message)]
Reader = Annotated[Principal, Depends(require(roles.ORDERS_READ))]
Actor = Annotated[Principal, Depends(require(roles.ORDERS_ACT))]


#: A time as the contact point writes it: ISO 8601 with its UTC offset (``2026-11-29T10:00:00+00:00``).
UtcText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class OrderView(BaseModel):
    """A received order and its one-hour clock (``orders/services.py: order_view``)."""

    reference: str = Field(description="The sender's order reference (the hub's, for an order through the hub)")
    kind: Literal["removal_order", "referral"]
    state: OrderState
    provider_reference: str = Field(description="This platform's reference (Annex II/III section A)")
    received_at: UtcText
    deadline_at: UtcText = Field(description="One hour after receipt, or after the last clarification")
    seconds_left: int | None = Field(description="Of the hour, while waiting for action; negative when overdue")
    overdue: bool
    action: ActionTaken | None
    action_at: UtcText | None
    content_ids: list[str] = Field(description="The content this order took down")
    escalations: int


class OrderEventView(BaseModel):
    kind: str
    actor: str
    at: UtcText
    data: dict[str, Any]


class OrderDetail(OrderView):
    order: dict[str, Any] = Field(description="The order as received (Annex I)")
    events: list[OrderEventView]


@router.post("", summary="Receive a signed removal order, referral, clarification or reinstatement",
             response_model=Ack, openapi_extra=signed_body(
                 (MessageType.REMOVAL_ORDER, MessageType.REFERRAL, MessageType.CLARIFICATION,
                  MessageType.REINSTATEMENT), attested=True, description=(
                     "Signed by a key this platform trusts (bastion orders trust): a hub's, or an authority's for "
                     "its own Member State. The same reference again is the same order: the same answer.")))
async def receive(cp: CP, signed: Signed) -> Ack:
    return await run_in_threadpool(services.receive, cp, signed)


class ThreatIn(BaseModel):
    content_id: str = Field(min_length=1, max_length=200)
    member_state: str | None = Field(default=None, min_length=2, max_length=2)
    explanation: str = Field(min_length=1, max_length=5000)


class ThreatSent(BaseModel):
    """Where an Art. 14(5) report went (each through the outbox, signed)."""

    content_id: str
    sent_to: list[str] = Field(description="The authorities (and Europol) the report is sent to")


@router.post("/threats", status_code=202, summary="Art. 14(5): report an imminent threat to life at once",
             response_model=ThreatSent)
def report_threat(body: ThreatIn, principal: Actor, cp: CP) -> ThreatSent:
    return ThreatSent.model_validate(services.report_threat_to_life(
        cp, body.content_id, member_state=body.member_state, explanation=body.explanation, actor=principal.actor))


@router.get("", summary="Orders, overdue first, then by deadline", response_model=list[OrderView])
def list_orders(principal: Reader, cp: CP, state: str | None = None) -> list[OrderView]:
    return [OrderView.model_validate(view) for view in services.list_orders(cp, state=state)]


@router.get("/{reference}", summary="One order, its clock and its events", response_model=OrderDetail)
def get_order(reference: str, principal: Reader, cp: CP) -> OrderDetail:
    return OrderDetail.model_validate(services.get_order(cp, reference))


@router.post("/{reference}/execute", summary="Carry out a received order now (when not executed automatically)",
             response_model=OrderDetail)
def execute(reference: str, principal: Actor, cp: CP) -> OrderDetail:
    services.execute(cp, reference, actor=principal.actor)
    return OrderDetail.model_validate(services.get_order(cp, reference))


class InabilityIn(BaseModel):
    reason: InabilityReason
    explanation: str = Field(min_length=1, max_length=5000)


@router.post("/{reference}/inability", summary="Answer with Annex III: the order cannot be executed, and why",
             response_model=OrderDetail)
def inability(reference: str, body: InabilityIn, principal: Actor, cp: CP) -> OrderDetail:
    services.declare_inability(cp, reference, body.reason, body.explanation, actor=principal.actor)
    return OrderDetail.model_validate(services.get_order(cp, reference))


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a date and time needs its UTC offset")
    return value


class PreservationIn(BaseModel):
    until: Annotated[dt.datetime, AfterValidator(_aware)]


class PreservedItem(BaseModel):
    """One removed item kept sealed for an order, opened; ``data`` is null once purged."""

    content_id: str
    keep_until: UtcText
    purged_at: UtcText | None
    data: dict[str, Any] | None = Field(description="The item as it was removed, and the order")


class PreservedView(BaseModel):
    reference: str
    preserved: list[PreservedItem]


@router.post("/{reference}/preservation", summary="Keep an order's removed content longer (on request)",
             response_model=PreservedView)
def extend_preservation(reference: str, body: PreservationIn, principal: Actor, cp: CP) -> PreservedView:
    services.extend_preservation(cp, reference, body.until, actor=principal.actor)
    return PreservedView(reference=reference, preserved=[PreservedItem.model_validate(item)
                                                         for item in services.preserved(cp, reference)])
