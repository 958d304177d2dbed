"""The hub over HTTP. Authorities issue with a token of role ``authority`` *and* a signature by one of their keys;
providers answer with a signature by one of theirs; admins register both."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bastion.core.auth import roles
from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.context import context
from bastion.core.http import Problem, require
from bastion.hub import services
from bastion.hub.models import Authority
from bastion.hub.services import HubError, HubState
from bastion.orders.services import accept_signed
from bastion.orders.wire import (
    AuthoritySignature,
    AuthorityType,
    Clarification,
    Feedback,
    Inability,
    InvalidMessage,
    MessageType,
    Referral,
    Refused,
    RemovalOrder,
    Verified,
    WireMessage,
    parse,
    signature_header,
    signed_body,
)

router = APIRouter(prefix="/v1/hub", tags=["hub"])
T = TypeVar("T")


def checked(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except Refused as exc:
        raise Problem(exc.status, exc.title, exc.detail, reason=exc.reason.value) from None
    except HubError as exc:
        raise Problem(exc.status, exc.title, str(exc)) from None
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc)) from None


async def _signed(request: Request, keys: Any, expect: tuple[MessageType, ...]) -> tuple[Verified, WireMessage]:
    ctx = context(request)
    body = await request.body()
    # Database work runs in the thread pool, never on the event loop.
    verified = await run_in_threadpool(checked, lambda: accept_signed(ctx.db, request.headers, body, keys=keys.get,
                                                                       clock=ctx.clock))
    try:
        return verified, parse(json.loads(body), expect=expect)
    except InvalidMessage as exc:
        raise Problem(422, "Invalid message", str(exc), errors=exc.errors) from None
    except ValueError:
        raise Problem(422, "Invalid message", "the body is not JSON") from None


#: A time as the hub writes it: ISO 8601 with its UTC offset (``2026-11-29T10:00:00+00:00``).
UtcText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class HubOrderView(BaseModel):
    """An order as the hub carries it (``hub/services.py: order_view``); times are the record Art. 3(5) asks for."""

    hub_reference: str = Field(description="The hub's reference, sent to the provider as the order reference")
    kind: Literal["removal_order", "referral"]
    state: HubState
    authority: str | None
    authority_reference: str = Field(description="The issuing authority's own reference (Annex I section A)")
    provider: str | None
    linked_to: str | None = Field(description="The earlier order for the same content this one rides on (linked)")
    answer: dict[str, Any] | None = Field(description="The provider's Annex II feedback or Annex III, as received")
    scrutiny_member_state: str | None = Field(description="Art. 4: the host Member State that may scrutinise")
    authority_key_id: str | None = Field(description="The key that signed the order (issued by API); null: console")
    issued_at: UtcText
    sent_at: UtcText | None = Field(description="First attempt to deliver it to the contact point")
    acknowledged_at: UtcText | None = Field(description="When the contact point answered 2xx")
    received_at: UtcText | None = Field(description="Receipt by the provider, by its clock (from its answer)")
    answered_at: UtcText | None = Field(description="When the Annex II or III arrived")
    action_at: UtcText | None = Field(description="When the provider removed or disabled the content")
    scrutiny_until: UtcText | None


class LinkedOutcome(BaseModel):
    """The earlier order a linked one rides on, as the later authority may see it (its file number left out)."""

    hub_reference: str
    authority: str | None
    state: HubState
    received_at: UtcText | None
    action_at: UtcText | None
    answered_at: UtcText | None
    answer: dict[str, Any] | None


class HubOrderIssued(HubOrderView):
    """The answer to an issued order; ``linked_order`` only when it was linked to an earlier one."""

    linked_order: LinkedOutcome | None = None


class HubEventView(BaseModel):
    kind: str
    actor: str
    at: UtcText
    data: dict[str, Any]


class HubOrderDetail(HubOrderView):
    order: dict[str, Any] = Field(description="The order or referral as the authority issued it (Annex I)")
    linked_order: LinkedOutcome | None
    events: list[HubEventView]


class AuthorityIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    member_state: str = Field(min_length=2, max_length=2)
    authority_type: AuthorityType
    public_keys: list[str] = Field(min_length=1, max_length=10)


class ProviderIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    contact_point_url: str = Field(min_length=10, max_length=2000)
    member_state: str = Field(min_length=2, max_length=2)
    languages: list[str] = Field(default_factory=lambda: ["en"], max_length=30)
    public_keys: list[str] = Field(min_length=1, max_length=10)


@router.post("/authorities", status_code=201, summary="Register a competent authority; returns its API token once")
def add_authority(body: AuthorityIn, principal: Annotated[Principal, Depends(require(roles.ADMIN))],
                  request: Request) -> dict[str, Any]:
    ctx = context(request)
    done = checked(lambda: services.register_authority(
        ctx.db, name=body.name, member_state=body.member_state, authority_type=body.authority_type,
        public_keys=body.public_keys, clock=ctx.clock, actor=principal.actor))
    return {"id": done.authority.id, "name": done.authority.name, "member_state": done.authority.member_state,
            "token": done.token}


@router.post("/providers", status_code=201, summary="Register a hosting service provider and its contact point")
def add_provider(body: ProviderIn, principal: Annotated[Principal, Depends(require(roles.ADMIN))],
                 request: Request) -> dict[str, Any]:
    ctx = context(request)
    provider = checked(lambda: services.register_provider(
        ctx.db, name=body.name, contact_point_url=body.contact_point_url, member_state=body.member_state,
        languages=body.languages, public_keys=body.public_keys, clock=ctx.clock))
    return {"id": provider.id, "name": provider.name, "contact_point_url": provider.contact_point_url}


def _authority(request: Request, principal: Principal) -> Authority | None:
    """The caller's authority; ``None`` for an admin, who sees everything and issues nothing."""
    if principal.role is Role.ADMIN:
        return None
    return checked(lambda: services.authority_of(context(request).db, principal.actor))


@router.post("/orders", summary="Issue a signed removal order or referral (Annex I)", status_code=201,
             response_model=HubOrderIssued, responses={200: {"model": HubOrderIssued,
                                                             "description": "The same reference and body again"}},
             openapi_extra=signed_body((MessageType.REMOVAL_ORDER, MessageType.REFERRAL), description=(
                 "The authority's order, signed with one of its registered keys; with its bearer token too.")))
async def issue(principal: Annotated[Principal, Depends(require(roles.HUB_ISSUE))],
                request: Request) -> JSONResponse:
    authority = await run_in_threadpool(_authority, request, principal)
    assert authority is not None
    verified, message = await _signed(request, services.key_lookup(authority.public_keys),
                                      (MessageType.REMOVAL_ORDER, MessageType.REFERRAL))
    assert isinstance(message, RemovalOrder | Referral)
    ctx = context(request)
    # Annex I section E: the authority's own signature is kept with the order and forwarded with it.
    signature = AuthoritySignature.of(verified.key_id, signature_header(request.headers), await request.body())
    view, created = await run_in_threadpool(
        checked, lambda: services.issue(ctx.db, authority, verified, message, clock=ctx.clock, signature=signature))
    return JSONResponse(view, status_code=201 if created else 200)


@router.post("/orders/{reference}/clarification", summary="Answer a provider's Annex III (signed)",
             response_model=HubOrderView, openapi_extra=signed_body((MessageType.CLARIFICATION,)))
async def clarify(reference: str, principal: Annotated[Principal, Depends(require(roles.HUB_ISSUE))],
                  request: Request) -> dict[str, Any]:
    authority = await run_in_threadpool(_authority, request, principal)
    assert authority is not None
    _verified, message = await _signed(request, services.key_lookup(authority.public_keys),
                                       (MessageType.CLARIFICATION,))
    assert isinstance(message, Clarification)
    if message.order_reference != reference:
        raise Problem(422, "Invalid message", "order_reference must be the order in the path")
    ctx = context(request)
    return await run_in_threadpool(checked, lambda: services.clarify(ctx.db, authority, message, clock=ctx.clock))


class ScrutinyIn(BaseModel):
    infringement: bool
    reasons: str = Field(min_length=1, max_length=5000)


@router.post("/orders/{reference}/scrutiny", summary="Art. 4 scrutiny by the host Member State (within 72 h)",
             response_model=HubOrderView)
def scrutinise(reference: str, body: ScrutinyIn, principal: Annotated[Principal, Depends(require(roles.HUB_ISSUE))],
               request: Request) -> dict[str, Any]:
    authority = _authority(request, principal)
    assert authority is not None
    ctx = context(request)
    return checked(lambda: services.scrutinise(ctx.db, authority, reference, infringement=body.infringement,
                                               reasons=body.reasons, clock=ctx.clock))


@router.get("/orders", summary="Orders the caller issued or may scrutinise (admins: all)",
            response_model=list[HubOrderView])
def list_orders(principal: Annotated[Principal, Depends(require(roles.HUB_READ))],
                request: Request) -> list[dict[str, Any]]:
    return services.list_orders(context(request).db, _authority(request, principal))


@router.get("/orders/{reference}", summary="One order with its record of sending, acknowledgement and answer",
            response_model=HubOrderDetail)
def get_order(reference: str, principal: Annotated[Principal, Depends(require(roles.HUB_READ))],
              request: Request) -> dict[str, Any]:
    authority = _authority(request, principal)
    return checked(lambda: services.get_order(context(request).db, authority, reference))


@router.post("/answers", summary="A provider's signed Annex II feedback or Annex III (signature, no token)",
             response_model=HubOrderView,
             openapi_extra=signed_body((MessageType.FEEDBACK, MessageType.INABILITY), description=(
                 "The provider's answer, signed with a key registered for the order's provider; no token.")))
async def answer(request: Request) -> dict[str, Any]:
    ctx = context(request)
    keys = await run_in_threadpool(services.provider_key_lookup, ctx.db)
    verified, message = await _signed(request, keys, (MessageType.FEEDBACK, MessageType.INABILITY))
    assert isinstance(message, Feedback | Inability)
    return await run_in_threadpool(checked, lambda: services.record_answer(ctx.db, verified, message,
                                                                           clock=ctx.clock))
