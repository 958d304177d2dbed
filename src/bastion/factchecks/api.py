"""Fact-checking over HTTP: partners (admins), items sent (moderators), ratings received (signed by a partner).

``POST /v1/factchecks/ratings`` is authenticated by the partner's Ed25519 signature (``Bastion-Ed25519``, as removal
orders), not a bearer token: the sender is whichever registered partner holds the key. docs/factchecks.md has the
wire, with a worked example.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import require
from bastion.core.signing import SIGNATURE_HEADER
from bastion.factchecks import services
from bastion.factchecks.services import FactChecks, RatingAnswer, RatingIn

router = APIRouter(prefix="/v1/factchecks", tags=["fact-checking"])


def factchecks(request: Request) -> FactChecks:
    fc = request.app.state.factchecks
    assert isinstance(fc, FactChecks)
    return fc


FC = Annotated[FactChecks, Depends(factchecks)]
Admin = Annotated[Principal, Depends(require(roles.FACTCHECK_PARTNERS))]
Sender = Annotated[Principal, Depends(require(roles.FACTCHECK_SEND))]
Reader = Annotated[Principal, Depends(require(roles.FACTCHECK_READ))]


class PartnerIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    public_key: str = Field(min_length=1, max_length=100,
                            description="The partner's Ed25519 public key: URL-safe base64 of its 32 bytes")
    url: str = Field(min_length=1, max_length=2000, description="Where items to check are POSTed")


class PartnerOut(BaseModel):
    name: str
    key_id: str = Field(description="The key= of the partner's signature header")
    public_key: str
    url: str
    enabled: bool


class SendIn(BaseModel):
    content_id: str = Field(min_length=1, max_length=200)
    partner: str = Field(min_length=1, max_length=100)


class SentOut(BaseModel):
    request_id: str
    partner: str
    content_id: str


class RatingOut(BaseModel):
    partner: str
    rating_id: str
    rating: str
    received_at: str
    answer: RatingAnswer = Field(description="What the partner was answered when it sent the rating")


@router.post("/partners", status_code=201, summary="Register a fact-checking partner and its signing key",
             response_model=PartnerOut)
def add_partner(body: PartnerIn, principal: Admin, fc: FC) -> PartnerOut:
    view = services.add_partner(fc, name=body.name, public_key=body.public_key, url=body.url, actor=principal)
    return PartnerOut.model_validate(services.as_dict(view))


@router.post("/partners/{name}/disable", summary="Stop accepting a partner's key and sending it items",
             response_model=PartnerOut)
def disable_partner(name: str, principal: Admin, fc: FC) -> PartnerOut:
    return PartnerOut.model_validate(services.as_dict(services.disable_partner(fc, name, actor=principal)))


@router.get("/partners", summary="Fact-checking partners", response_model=list[PartnerOut])
def list_partners(principal: Reader, fc: FC) -> list[PartnerOut]:
    return [PartnerOut.model_validate(services.as_dict(p)) for p in services.list_partners(fc.db)]


@router.post("/requests", status_code=202, summary="Send an item to a partner (through the outbox, signed)",
             response_model=SentOut)
def send(body: SendIn, principal: Sender, fc: FC) -> SentOut:
    return SentOut.model_validate(services.as_dict(services.send(fc, body.content_id, body.partner,
                                                                 actor=principal)))


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """A model's JSON schema with its ``$defs`` written in place (the route's schema stands alone in the OpenAPI)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inlined(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inlined(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inlined(v, defs) for v in node]
    return node


_RATING_SCHEMA = RatingIn.model_json_schema()
_RATING_STANDALONE = _inlined(_RATING_SCHEMA, _RATING_SCHEMA.get("$defs", {}))
_SIGNED_RATING: dict[str, Any] = {
    "parameters": [{"name": SIGNATURE_HEADER, "in": "header", "required": True,
                    "description": "key=<partner key id>,t=<Unix seconds>,nonce=<1-64 of A-Z a-z 0-9 . _ : + / = ->,"
                                   "sig=<Ed25519 signature> over the canonical statement (docs/factchecks.md)",
                    "schema": {"type": "string"}}],
    "requestBody": {"required": True, "description": "The rating as exact JSON bytes, signed by the partner's key.",
                    "content": {"application/json": {"schema": _RATING_STANDALONE}}},
}


@router.post("/ratings", summary="Receive a partner's signed rating and apply the policy's restriction",
             response_model=RatingAnswer, openapi_extra=_SIGNED_RATING)
async def receive(request: Request, fc: FC) -> RatingAnswer:
    body = await request.body()
    return await run_in_threadpool(services.receive, fc, request.headers, body)


@router.get("/content/{content_id}", summary="The ratings an item received, oldest first",
            response_model=list[RatingOut])
def ratings(content_id: str, principal: Reader, fc: FC) -> list[RatingOut]:
    return [RatingOut.model_validate(services.as_dict(r)) for r in services.ratings_of(fc, content_id)]
