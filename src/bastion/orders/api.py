"""The contact point over HTTP: ``POST /v1/orders`` takes signed messages; people read and act with tokens.

``POST /v1/orders`` is authenticated by its Ed25519 signature, not a bearer token: the sender is whoever holds a key
registered with ``bastion orders trust`` (a hub, or an authority for its own Member State), and nobody else.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import Problem, require
from bastion.orders import services
from bastion.orders.interfaces import OrderError, OrderState
from bastion.orders.services import ContactPoint
from bastion.orders.wire import (
    Ack,
    ActionTaken,
    InabilityReason,
    InvalidMessage,
    MessageType,
    Refused,
    attestation,
    parse,
    signed_body,
)

router = APIRouter(prefix="/v1/orders", tags=["removal orders"])
T = TypeVar("T")


def contact_point(request: Request) -> ContactPoint:
    cp = request.app.state.contact_point
    assert isinstance(cp, ContactPoint)
    return cp


def checked(fn: Callable[[], T]) -> T:
    """Domain errors and refusals as problem+json."""
    try:
        return fn()
    except Refused as exc:
        raise Problem(exc.status, exc.title, exc.detail, reason=exc.reason.value) from None
    except OrderError as exc:
        raise Problem(exc.status, exc.title, str(exc)) from None


async def signed_message(request: Request, cp: ContactPoint,
                         expect: tuple[MessageType, ...]) -> tuple[Any, Any, Any]:
    """Read the raw body, check its signature and nonce, then parse it: (verified, message, the issuing
    authority's signature a hub forwarded, or ``None``), or a problem."""
    body = await request.body()
    # Database work runs in the thread pool, never on the event loop.
    verified = await run_in_threadpool(checked, lambda: services.accept_signed(
        cp.db, request.headers, body, keys=cp.keys, clock=cp.clock, window_seconds=cp.window_seconds))
    try:
        envelope = json.loads(body)
        message, signature = parse(envelope, expect=expect, attested=True), attestation(envelope)
    except (InvalidMessage, ValueError) as exc:
        errors = exc.errors if isinstance(exc, InvalidMessage) else []
        raise Problem(422, "Invalid message", str(exc) if isinstance(exc, InvalidMessage) else "the body is not JSON",
                      errors=errors) from None
    return verified, message, signature


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
async def receive(request: Request) -> JSONResponse:
    cp = contact_point(request)
    verified, message, signature = await signed_message(
        request, cp, (MessageType.REMOVAL_ORDER, MessageType.REFERRAL, MessageType.CLARIFICATION,
                      MessageType.REINSTATEMENT))
    body = await request.body()
    ack = await run_in_threadpool(checked, lambda: services.receive(cp, verified, message, body, signature))
    return JSONResponse(ack.model_dump(mode="json"))


class ThreatIn(BaseModel):
    content_id: str = Field(min_length=1, max_length=200)
    member_state: str | None = Field(default=None, min_length=2, max_length=2)
    explanation: str = Field(min_length=1, max_length=5000)


@router.post("/threats", status_code=202, summary="Art. 14(5): report an imminent threat to life at once")
def report_threat(body: ThreatIn, principal: Annotated[Principal, Depends(require(roles.ORDERS_ACT))],
                  request: Request) -> dict[str, Any]:
    cp = contact_point(request)
    return checked(lambda: services.report_threat_to_life(cp, body.content_id, member_state=body.member_state,
                                                          explanation=body.explanation, actor=principal.actor))


@router.get("", summary="Orders, overdue first, then by deadline", response_model=list[OrderView])
def list_orders(principal: Annotated[Principal, Depends(require(roles.ORDERS_READ))], request: Request,
                state: str | None = None) -> list[dict[str, Any]]:
    return services.list_orders(contact_point(request), state=state)


@router.get("/{reference}", summary="One order, its clock and its events", response_model=OrderDetail)
def get_order(reference: str, principal: Annotated[Principal, Depends(require(roles.ORDERS_READ))],
              request: Request) -> dict[str, Any]:
    cp = contact_point(request)
    return checked(lambda: services.get_order(cp, reference))


@router.post("/{reference}/execute", summary="Carry out a received order now (when not executed automatically)",
             response_model=OrderDetail)
def execute(reference: str, principal: Annotated[Principal, Depends(require(roles.ORDERS_ACT))],
            request: Request) -> dict[str, Any]:
    cp = contact_point(request)
    checked(lambda: services.execute(cp, reference, actor=principal.actor))
    return checked(lambda: services.get_order(cp, reference))


class InabilityIn(BaseModel):
    reason: InabilityReason
    explanation: str = Field(min_length=1, max_length=5000)


@router.post("/{reference}/inability", summary="Answer with Annex III: the order cannot be executed, and why",
             response_model=OrderDetail)
def inability(reference: str, body: InabilityIn, principal: Annotated[Principal, Depends(require(roles.ORDERS_ACT))],
              request: Request) -> dict[str, Any]:
    cp = contact_point(request)
    checked(lambda: services.declare_inability(cp, reference, body.reason, body.explanation, actor=principal.actor))
    return checked(lambda: services.get_order(cp, reference))


class PreservationIn(BaseModel):
    until: dt.datetime


@router.post("/{reference}/preservation", summary="Keep an order's removed content longer (on request)")
def extend_preservation(reference: str, body: PreservationIn,
                        principal: Annotated[Principal, Depends(require(roles.ORDERS_ACT))],
                        request: Request) -> dict[str, Any]:
    if body.until.tzinfo is None:
        raise Problem(422, "Invalid request", "until: a date and time needs its UTC offset")
    cp = contact_point(request)
    checked(lambda: services.extend_preservation(cp, reference, body.until, actor=principal.actor))
    return {"reference": reference, "preserved": checked(lambda: services.preserved(cp, reference))}
