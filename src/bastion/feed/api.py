"""The feed gate and crisis mode over HTTP (``docs/feed.md``).

The platform's recommender asks ``POST /v1/feed/filter`` (``roles.FEED``); admins and senior moderators run crises
(``roles.CRISIS_ACT``), analysts read them (``roles.CRISIS_READ``). Domain errors are answered by the one
problem+json handler.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import Problem, RowId, require
from bastion.core.uploads import spooled
from bastion.feed import crisis
from bastion.feed.crisis import Crises, CrisisProtocol, CrisisState
from bastion.feed.gate import MAX_CANDIDATES, FeedGate
from bastion.feed.interfaces import REASON_TEXT, Reason
from bastion.feed.models import Crisis
from bastion.orders import services as orders

router = APIRouter(prefix="/v1", tags=["feed"])
_ID = r"^[A-Za-z0-9._:@-]{1,200}$"


def feed_gate(request: Request) -> FeedGate:
    gate = request.app.state.feed_gate
    assert isinstance(gate, FeedGate)
    return gate


def crises(request: Request) -> Crises:
    service = request.app.state.crises
    assert isinstance(service, Crises)
    return service


def _refresh(request: Request) -> None:
    """A crisis change, and material banked, are in force in this process at once (the others follow within a
    refresh interval)."""
    request.app.state.feed_gate.view.refresh()
    request.app.state.matcher.refresh()


Gate = Annotated[FeedGate, Depends(feed_gate)]
C = Annotated[Crises, Depends(crises)]
Platform = Annotated[Principal, Depends(require(roles.FEED))]
Actor = Annotated[Principal, Depends(require(roles.CRISIS_ACT))]
Reader = Annotated[Principal, Depends(require(roles.CRISIS_READ))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the gate ------------------------------------------------------------------------------------------------------


class ViewerIn(_In):
    account_id: str = Field(pattern=_ID)
    age: float | None = Field(default=None, ge=0, le=150,
                              description="the viewer's age in years now; left out: the band the minors domain "
                                          "recorded, else unknown (treated as a minor)")
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$",
                                description="where the viewer is (ISO 3166-1 alpha-2); left out: content disabled "
                                            "in any territory is excluded (disabled_in_territory)")


class FilterIn(_In):
    viewer: Annotated[str, Field(pattern=_ID)] | ViewerIn = Field(
        description="an account id, or {account_id, age, country}")
    candidates: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(max_length=MAX_CANDIDATES)


class ExcludedOut(BaseModel):
    content_id: str
    reasons: list[Reason]


class FilterOut(BaseModel):
    eligible: list[str] = Field(description="the candidates the feed may show, in the order given")
    excluded: list[ExcludedOut] = Field(description="the others, each with every reason that holds")
    reasons: dict[str, str] = Field(description="the readable text of each reason cited")


@router.post("/feed/filter", summary="Which candidates a viewer's feed may show, and why not the others",
             response_model=FilterOut)
async def filter_feed(body: FilterIn, gate: Gate, principal: Platform) -> Response:
    # On the event loop: judging is a few hundred microseconds of dictionary lookups, less than a hop to a thread;
    # only a viewer whose age must be read from the database goes to one.
    if isinstance(body.viewer, str):
        viewer = await run_in_threadpool(gate.viewer, body.viewer)
    elif body.viewer.age is None:
        viewer = await run_in_threadpool(gate.viewer, body.viewer.account_id)
    else:
        viewer = gate.viewer(body.viewer.account_id, body.viewer.age)
    if not isinstance(body.viewer, str):
        viewer = viewer.in_country(body.viewer.country)
    result = gate.filter(viewer, body.candidates)
    # Written directly: a 500-candidate answer validated field by field would cost more than judging it.
    answer = {"eligible": result.eligible, "excluded": [e.to_json() for e in result.excluded],
              "reasons": result.reasons_used()}
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")


class ReasonOut(BaseModel):
    code: Reason
    text: str


@router.get("/feed/reasons", summary="Every reason the gate may give, with its readable text",
            response_model=list[ReasonOut])
def feed_reasons(principal: Platform) -> list[ReasonOut]:
    return [ReasonOut(code=r, text=REASON_TEXT[r]) for r in Reason]


# --- crises --------------------------------------------------------------------------------------------------------


class HashIn(_In):
    signal_type: str = Field(min_length=1, max_length=64)
    value: str = Field(min_length=1, max_length=100_000)


class CrisisIn(_In):
    protocol: CrisisProtocol
    reference: str = Field(min_length=1, max_length=200, description="the protocol's reference for the crisis")
    level: str = Field(default="", max_length=32, description="the GIFCT CIP level (required for gifct_cip)")
    title: str = Field(default="", max_length=2000)
    countries: list[str] = Field(default_factory=list, max_length=300,
                                 description="ISO 3166-1 alpha-2 codes of the countries affected")
    categories: list[str] = Field(default_factory=lambda: list(crisis.DEFAULT_CATEGORIES), min_length=1,
                                  max_length=10)
    material: list[HashIn] = Field(default_factory=list, max_length=10_000,
                                   description="hashes of the known material, banked at once")
    exclude_live: bool = Field(default=True, description="keep livestreams from the countries out of feeds")
    review_threshold_factor: float = Field(default=0.8, ge=0.1, le=1.0)
    severity_boost: int = Field(default=1, ge=0, le=4)
    bank_confirmed: bool = Field(default=True, description="bank every removal moderators confirm in the crisis "
                                                           "categories while it is active")
    share_with: list[str] = Field(default_factory=list, max_length=20,
                                  description="exchanges (by name) its confirmed perpetrator content is shared with; "
                                              "admins only, exchanges that take shared hashes only")


class CrisisOut(BaseModel):
    id: int
    protocol: str
    reference: str
    level: str
    title: str
    countries: list[str]
    categories: list[str]
    bank: str
    exclude_live: bool
    review_threshold_factor: float
    severity_boost: int
    bank_confirmed: bool
    share_with: list[str]
    state: str
    activated_by: str
    activated_at: dt.datetime
    deactivated_at: dt.datetime | None

    @classmethod
    def of(cls, row: Crisis) -> CrisisOut:
        return cls(id=row.id, protocol=row.protocol, reference=row.reference, level=row.level, title=row.title,
                   countries=list(row.countries), categories=list(row.categories), bank=row.bank,
                   exclude_live=row.exclude_live, review_threshold_factor=row.review_threshold_factor,
                   severity_boost=row.severity_boost, bank_confirmed=row.bank_confirmed,
                   share_with=list(row.share_with or []), state=row.state,
                   activated_by=row.activated_by,
                   activated_at=row.activated_at, deactivated_at=row.deactivated_at)


class TimelineEventOut(BaseModel):
    at: dt.datetime
    kind: str
    actor: str
    summary: str


class MinuteOut(BaseModel):
    minute: dt.datetime
    blocked: int


class CrisisDetail(CrisisOut):
    rules: list[str]
    events: list[TimelineEventOut]
    blocked_per_minute: list[MinuteOut]
    blocked: int
    variants_found: int
    held: int


def _detail(t: crisis.Timeline) -> CrisisDetail:
    base: dict[str, Any] = CrisisOut.of(t.crisis).model_dump()
    return CrisisDetail(**base, rules=t.rules,
                        events=[TimelineEventOut(at=e.at, kind=e.kind, actor=e.actor, summary=e.summary)
                                for e in t.events],
                        blocked_per_minute=[MinuteOut(minute=m, blocked=n) for m, n in t.blocked_per_minute],
                        blocked=t.blocked, variants_found=t.variants_found, held=t.held)


@router.post("/crises", status_code=201, summary="Activate a crisis: its rules apply at once", response_model=CrisisOut)
def activate_crisis(body: CrisisIn, c: C, principal: Actor, request: Request) -> CrisisOut:
    row = crisis.activate(c, crisis.NewCrisis(
        protocol=body.protocol, reference=body.reference, countries=body.countries, level=body.level,
        title=body.title, categories=body.categories, material=[(m.signal_type, m.value) for m in body.material],
        exclude_live=body.exclude_live, review_threshold_factor=body.review_threshold_factor,
        severity_boost=body.severity_boost, bank_confirmed=body.bank_confirmed, share_with=body.share_with),
        actor=principal)
    _refresh(request)
    return CrisisOut.of(row)


@router.get("/crises", summary="Crises, newest first", response_model=list[CrisisOut])
def list_crises(c: C, principal: Reader, state: CrisisState | None = None) -> list[CrisisOut]:
    with c.db.read() as session:
        return [CrisisOut.of(r) for r in crisis.list_crises(session, state=state)]


@router.get("/crises/{crisis_id}", summary="A crisis, its rules and its timeline", response_model=CrisisDetail)
def get_crisis(crisis_id: RowId, c: C, principal: Reader) -> CrisisDetail:
    with c.db.read() as session:
        return _detail(crisis.timeline(session, crisis_id))


class DeactivateIn(_In):
    note: str = Field(default="", max_length=5000)


@router.post("/crises/{crisis_id}/deactivate", summary="End a crisis: its rules stop at once",
             response_model=CrisisOut)
def deactivate_crisis(crisis_id: RowId, body: DeactivateIn, c: C, principal: Actor, request: Request) -> CrisisOut:
    row = crisis.deactivate(c, crisis_id, actor=principal, note=body.note)
    _refresh(request)
    return CrisisOut.of(row)


class MaterialIn(_In):
    material: list[HashIn] = Field(min_length=1, max_length=10_000)


class BankedOut(BaseModel):
    entry_ids: list[int]
    skipped: list[str]


@router.post("/crises/{crisis_id}/material", summary="Bank more known material (variants found, shared hashes)",
             response_model=BankedOut)
def bank_material(crisis_id: RowId, body: MaterialIn, c: C, principal: Actor, request: Request) -> BankedOut:
    banked = crisis.bank_material(c, crisis_id, [(m.signal_type, m.value) for m in body.material], actor=principal)
    _refresh(request)
    return BankedOut(entry_ids=banked.entry_ids, skipped=banked.skipped)


MATERIAL_FORM: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["media"],
    "properties": {"media": {"type": "string", "format": "binary",
                             "description": "an image or video of the known material"}}}}}}}


@router.post("/crises/{crisis_id}/material-file", openapi_extra=MATERIAL_FORM, response_model=BankedOut,
             summary="Bank a file of known material: its hashes, and for an image those of its border crops")
async def bank_material_file(crisis_id: RowId, request: Request, c: C, principal: Actor) -> BankedOut:
    form = await request.form(max_files=1, max_fields=2)
    media = form.get("media")
    if not isinstance(media, UploadFile):
        raise Problem(422, "Invalid request", "a file part named 'media' is required")
    settings = request.app.state.ctx.settings
    async with spooled(media, settings.max_upload_bytes, settings.spool_dir) as path:
        material = await run_in_threadpool(crisis.material_from_file, path)
    banked = await run_in_threadpool(lambda: crisis.bank_material(c, crisis_id, material, actor=principal))
    await run_in_threadpool(_refresh, request)
    return BankedOut(entry_ids=banked.entry_ids, skipped=banked.skipped)


class ContentIn(_In):
    content_id: str = Field(pattern=_ID)


@router.post("/crises/{crisis_id}/perpetrator-content",
             summary="Bank confirmed perpetrator content at once (a moderator's confirmed violation)",
             response_model=BankedOut)
def bank_perpetrator(crisis_id: RowId, body: ContentIn, c: C, principal: Actor, request: Request) -> BankedOut:
    banked = crisis.bank_perpetrator_content(c, crisis_id, body.content_id, actor=principal)
    _refresh(request)
    return BankedOut(entry_ids=banked.entry_ids, skipped=banked.skipped)


class NoteIn(_In):
    text: str = Field(min_length=1, max_length=5000)


@router.post("/crises/{crisis_id}/notes", status_code=204, summary="Add a note to the crisis timeline")
def add_note(crisis_id: RowId, body: NoteIn, c: C, principal: Actor) -> Response:
    crisis.add_note(c, crisis_id, body.text, actor=principal)
    return Response(status_code=204)


class ThreatIn(_In):
    content_id: str = Field(pattern=_ID)
    member_state: str | None = Field(default=None, min_length=2, max_length=2)
    explanation: str = Field(min_length=1, max_length=5000)


class ThreatOut(BaseModel):
    content_id: str
    sent_to: list[str]


@router.post("/crises/{crisis_id}/threats", status_code=202,
             summary="Report an imminent threat to life (Art. 14(5)) and record it on the crisis",
             response_model=ThreatOut)
def report_threat(crisis_id: RowId, body: ThreatIn, c: C, principal: Actor, request: Request) -> ThreatOut:
    crisis.check_may_report(c, crisis_id)
    sent = orders.report_threat_to_life(request.app.state.contact_point, body.content_id,
                                        member_state=body.member_state, explanation=body.explanation,
                                        actor=principal.actor)
    crisis.record_threat(c, crisis_id, body.content_id, sent["sent_to"], actor=principal.actor)
    return ThreatOut(content_id=body.content_id, sent_to=list(sent["sent_to"]))
