"""The Centre's HTTP intake: providers (role platform at the Centre) submit reports; admins read them.

Refusals (a refused signature, a reference reused for another report) are domain errors, answered as problem+json
by the app's one handler: no route catches them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field

from bastion.centre import services
from bastion.centre.services import Centre, Status
from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import require
from bastion.core.validators import country_code

router = APIRouter(prefix="/v1/centre", tags=["EU Centre"])


def centre(request: Request) -> Centre:
    c = request.app.state.centre
    assert isinstance(c, Centre)
    return c


CentreDep = Annotated[Centre, Depends(centre)]
Provider = Annotated[Principal, Depends(require(roles.CENTRE_SUBMIT))]
Reader = Annotated[Principal, Depends(require(roles.CENTRE_READ))]


class ContentData(BaseModel):
    content_id: str = Field(max_length=200)
    content_type: str = Field(default="", max_length=16)
    md5: str = Field(default="", pattern=r"^([0-9a-f]{32})?$")
    sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    #: The picture's PDQ hash (64 hex digits): a copy within 31 bits of one already reported is the same material.
    pdq: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    classification: str | None = None
    uploaded_at: str | None = None
    material_held: bool = False
    material_kind: str = Field(default="", pattern=r"^(known|new|solicitation)?$")


class OtherCentre(BaseModel):
    body: str = Field(max_length=100)
    country: Annotated[str, AfterValidator(lambda v: country_code(v) if v else v)] = ""
    report_id: str = Field(max_length=100)


class ProviderReport(BaseModel):
    """Art. 13 of the proposal (provisional): what a provider's report must carry to be filed at all.

    Fields it does not name are dropped, not stored: the Centre keeps what the Regulation asks for.
    """

    provider: dict[str, str]
    provider_reference: str = Field(min_length=1, max_length=100)
    reported_at: str
    content: list[ContentData] = Field(max_length=10_000)
    incident: dict[str, Any] = Field(default_factory=dict)
    material_kind: str = Field(pattern=r"^(known|new|solicitation)$")
    geography: dict[str, str] = Field(default_factory=dict)
    users: list[dict[str, str]] = Field(default_factory=list)
    also_reported_to: list[OtherCentre] = Field(default_factory=list)
    removed: bool
    urgent: bool
    urgency_reason: str = Field(default="", max_length=2000)
    legal_basis: str = Field(min_length=1, max_length=500)


class ReceivedReport(BaseModel):
    """What the Centre did with a report: forwarded (to whom), duplicate (of which), or unfounded (why)."""

    id: str
    status: Status
    reason: str | None
    duplicate_of: str | None
    forwarded_to: str | None
    urgent: bool
    provider_reference: str
    #: ISO 8601.
    received_at: str


class ReceivedReports(BaseModel):
    reports: list[ReceivedReport]


@router.post("/reports", status_code=201, summary="Receive a provider's signed report (duplicate / unfounded / "
                                                  "forwarded)")
async def receive(body: ProviderReport, request: Request, c: CentreDep, principal: Provider) -> ReceivedReport:
    """The body must carry the provider's ``Bastion-Ed25519`` signature by a key registered for its name (Art.
    13(b)); the signature and the exact bytes it covers are kept with the report."""
    raw = await request.body()
    # A refused signature (core/signing.py: Refused) is answered by the one problem+json handler, with its reason.
    signed = await run_in_threadpool(services.check_signature, c, principal.name, request.headers, raw)
    report = await run_in_threadpool(services.receive, c, principal.actor, body.model_dump(mode="json"), signed)
    return ReceivedReport.model_validate(services.report_view(report))


@router.get("/reports", summary="What came in and what happened to it")
def list_reports(c: CentreDep, _p: Reader) -> ReceivedReports:
    with c.db.read() as session:
        return ReceivedReports.model_validate({"reports": [services.report_view(r)
                                                           for r in services.list_reports(session)]})
