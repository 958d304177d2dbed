"""The hub over HTTP. Authorities issue with a token of role ``authority`` *and* a signature by one of their keys;
providers answer with a signature by one of theirs; admins register both. Routes raise domain errors as they come:
the app's one handler answers them as problem+json."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bastion.core.auth import roles
from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.context import AppContext, context
from bastion.core.http import require
from bastion.hub import services
from bastion.hub.interfaces import InvalidHubRequest
from bastion.hub.models import Authority
from bastion.hub.services import HubState
from bastion.orders.services import read_signed
from bastion.orders.wire import (
    AuthoritySignature,
    AuthorityType,
    Clarification,
    Feedback,
    Inability,
    MessageType,
    Referral,
    RemovalOrder,
    SignedMessage,
    signature_header,
    signed_body,
)

router = APIRouter(prefix="/v1/hub", tags=["hub"])

Ctx = Annotated[AppContext, Depends(context)]
Admin = Annotated[Principal, Depends(require(roles.ADMIN))]
Reader = Annotated[Principal, Depends(require(roles.HUB_READ))]


def _authority(ctx: Ctx, principal: Reader) -> Authority | None:
    """The caller's authority; ``None`` for an admin, who sees everything and issues nothing."""
    return None if principal.role is Role.ADMIN else services.authority_of(ctx.db, principal.actor)


IssuerToken = Annotated[Principal, Depends(require(roles.HUB_ISSUE))]


def _issuer(ctx: Ctx, principal: IssuerToken) -> Authority:
    """The authority whose token issues (the role gate admits authorities alone)."""
    return services.authority_of(ctx.db, principal.actor)


Visible = Annotated[Authority | None, Depends(_authority)]
Issuer = Annotated[Authority, Depends(_issuer)]


async def _read(request: Request, ctx: AppContext, keys: Mapping[str, Ed25519PublicKey],
                expect: tuple[MessageType, ...]) -> SignedMessage:
    body = await request.body()
    # Database work runs in the thread pool, never on the event loop.
    return await run_in_threadpool(lambda: read_signed(ctx.db, request.headers, body, keys=keys.get, clock=ctx.clock,
                                                       expect=expect))


@dataclass(frozen=True)
class FromAuthority:
    """A message signed by one of the keys of the authority whose token sent it."""

    authority: Authority
    signed: SignedMessage


def _signed_by_issuer(*expect: MessageType) -> Callable[..., Awaitable[FromAuthority]]:
    async def dependency(request: Request, ctx: Ctx, authority: Issuer) -> FromAuthority:
        return FromAuthority(authority, await _read(request, ctx, services.key_lookup(authority.public_keys), expect))

    return dependency


Issued = Annotated[FromAuthority, Depends(_signed_by_issuer(MessageType.REMOVAL_ORDER, MessageType.REFERRAL))]
Clarifying = Annotated[FromAuthority, Depends(_signed_by_issuer(MessageType.CLARIFICATION))]


async def _answer(request: Request, ctx: Ctx) -> SignedMessage:
    """An Annex II or III signed by a registered provider's key (whose order it answers is checked after)."""
    keys = await run_in_threadpool(services.provider_key_lookup, ctx.db)
    return await _read(request, ctx, keys, (MessageType.FEEDBACK, MessageType.INABILITY))


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


class Registered(BaseModel):
    """A registered authority; ``token`` is its API token (role authority), shown this once."""

    id: int
    name: str
    member_state: str
    token: str


class ProviderView(BaseModel):
    id: int
    name: str
    contact_point_url: str


@router.post("/authorities", status_code=201, summary="Register a competent authority; returns its API token once",
             response_model=Registered)
def add_authority(body: AuthorityIn, principal: Admin, ctx: Ctx) -> Registered:
    done = services.register_authority(
        ctx.db, name=body.name, member_state=body.member_state, authority_type=body.authority_type,
        public_keys=body.public_keys, clock=ctx.clock, actor=principal.actor)
    return Registered(id=done.authority.id, name=done.authority.name, member_state=done.authority.member_state,
                      token=done.token)


@router.post("/providers", status_code=201, summary="Register a hosting service provider and its contact point",
             response_model=ProviderView)
def add_provider(body: ProviderIn, principal: Admin, ctx: Ctx) -> ProviderView:
    provider = services.register_provider(
        ctx.db, name=body.name, contact_point_url=body.contact_point_url, member_state=body.member_state,
        languages=body.languages, public_keys=body.public_keys, clock=ctx.clock)
    return ProviderView(id=provider.id, name=provider.name, contact_point_url=provider.contact_point_url)


@router.post("/orders", summary="Issue a signed removal order or referral (Annex I)", status_code=201,
             response_model=HubOrderIssued, responses={200: {"model": HubOrderIssued,
                                                             "description": "The same reference and body again"}},
             openapi_extra=signed_body((MessageType.REMOVAL_ORDER, MessageType.REFERRAL), description=(
                 "The authority's order, signed with one of its registered keys; with its bearer token too.")))
async def issue(request: Request, ctx: Ctx, issued: Issued) -> JSONResponse:
    authority, signed = issued.authority, issued.signed
    message = signed.message
    assert isinstance(message, RemovalOrder | Referral)  # Issued expects nothing else
    # Annex I section E: the authority's own signature is kept with the order and forwarded with it.
    signature = AuthoritySignature.of(signed.signer.key_id, signature_header(request.headers), signed.body)
    view, created = await run_in_threadpool(lambda: services.issue(
        ctx.db, authority, signed.signer, message, clock=ctx.clock, signature=signature))
    return JSONResponse(HubOrderIssued.model_validate(view).model_dump(mode="json"),
                        status_code=201 if created else 200)


@router.post("/orders/{reference}/clarification", summary="Answer a provider's Annex III (signed)",
             response_model=HubOrderView, openapi_extra=signed_body((MessageType.CLARIFICATION,)))
async def clarify(reference: str, ctx: Ctx, clarifying: Clarifying) -> HubOrderView:
    authority, message = clarifying.authority, clarifying.signed.message
    assert isinstance(message, Clarification)  # Clarifying expects nothing else
    if message.order_reference != reference:
        raise InvalidHubRequest("order_reference must be the order in the path")
    return HubOrderView.model_validate(
        await run_in_threadpool(lambda: services.clarify(ctx.db, authority, message, clock=ctx.clock)))


class ScrutinyIn(BaseModel):
    infringement: bool
    reasons: str = Field(min_length=1, max_length=5000)


@router.post("/orders/{reference}/scrutiny", summary="Art. 4 scrutiny by the host Member State (within 72 h)",
             response_model=HubOrderView)
def scrutinise(reference: str, body: ScrutinyIn, ctx: Ctx, principal: IssuerToken) -> HubOrderView:
    authority = services.authority_of(ctx.db, principal.actor)  # after the body is validated: a bad one is a 422
    return HubOrderView.model_validate(services.scrutinise(
        ctx.db, authority, reference, infringement=body.infringement, reasons=body.reasons, clock=ctx.clock))


@router.get("/orders", summary="Orders the caller issued or may scrutinise (admins: all)",
            response_model=list[HubOrderView])
def list_orders(ctx: Ctx, authority: Visible) -> list[HubOrderView]:
    return [HubOrderView.model_validate(view) for view in services.list_orders(ctx.db, authority)]


@router.get("/orders/{reference}", summary="One order with its record of sending, acknowledgement and answer",
            response_model=HubOrderDetail)
def get_order(reference: str, ctx: Ctx, authority: Visible) -> HubOrderDetail:
    return HubOrderDetail.model_validate(services.get_order(ctx.db, authority, reference))


@router.post("/answers", summary="A provider's signed Annex II feedback or Annex III (signature, no token)",
             response_model=HubOrderView,
             openapi_extra=signed_body((MessageType.FEEDBACK, MessageType.INABILITY), description=(
                 "The provider's answer, signed with a key registered for the order's provider; no token.")))
async def answer(ctx: Ctx, signed: Annotated[SignedMessage, Depends(_answer)]) -> HubOrderView:
    message = signed.message
    assert isinstance(message, Feedback | Inability)  # _answer expects nothing else
    return HubOrderView.model_validate(
        await run_in_threadpool(lambda: services.record_answer(ctx.db, signed.signer, message, clock=ctx.clock)))
