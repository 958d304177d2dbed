"""Designated entities over HTTP: the list, and changes (of category, of links, delisting) proposed with a preview,
then confirmed by another person."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import RowId, require
from bastion.designations import services
from bastion.moderation.kernel import Moderation

router = APIRouter(prefix="/v1/designations", tags=["designated entities"])


def moderation(request: Request) -> Moderation:
    mod = request.app.state.moderation
    assert isinstance(mod, Moderation)
    return mod


Mod = Annotated[Moderation, Depends(moderation)]
Reader = Annotated[Principal, Depends(require(roles.DESIGNATIONS_READ))]
Editor = Annotated[Principal, Depends(require(roles.DESIGNATIONS_EDIT))]


class EntityIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    designating_body: str = Field(min_length=1, max_length=200, description="e.g. UN Security Council")
    designated_on: dt.date
    category: str = Field(description="A policy category: terrorist_content, violent_extremism, hate_speech...")
    aliases: list[str] = Field(default_factory=list, max_length=500)
    keywords: list[str] = Field(default_factory=list, max_length=500)
    banks: list[str] = Field(default_factory=list, max_length=100, description="Banks of the entity's material")


class EntityOut(BaseModel):
    id: int
    name: str
    aliases: list[str]
    keywords: list[str]
    designating_body: str
    designated_on: str
    category: str
    banks: list[str]
    created_by: str
    updated_at: str
    delisted_on: str | None = Field(default=None, description="Taken off the list on this date: its links no "
                                                              "longer make content designated")


class LinksIn(BaseModel):
    """Each list given replaces the entity's; a list left out is kept."""

    model_config = ConfigDict(extra="forbid")

    aliases: list[str] | None = Field(default=None, max_length=500)
    keywords: list[str] | None = Field(default=None, max_length=500)
    banks: list[str] | None = Field(default=None, max_length=100)
    note: str = Field(default="", max_length=2000, description="Why (shown with the proposed change)")


class DelistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delisted_on: dt.date = Field(description="When the designating body took it off its list")
    note: str = Field(default="", max_length=2000)


class CaseToMove(BaseModel):
    case_id: int
    content_id: str
    from_queue: str
    to_queue: str
    category: str
    links: list[str] = Field(description="What links the content to the entity: bank:<name>, keyword:<word>")


class DecisionAltered(BaseModel):
    content_id: str
    case_id: int
    category: str
    actions: list[str]
    decided_by: str
    at: str
    links: list[str]


class Links(BaseModel):
    aliases: list[str]
    keywords: list[str]
    banks: list[str]


class LinksEdit(BaseModel):
    before: Links
    after: Links


class ChangePreview(BaseModel):
    """What a change would do, as it was shown when proposed."""

    open_cases: list[CaseToMove] = Field(description="Open cases it moves to another queue (a change of category)")
    past_decisions: list[DecisionAltered] = Field(description="Standing decisions it would alter, for a person")
    banks: list[str]
    links: LinksEdit | None = Field(default=None, description="A change of links: the links before and after")
    delisted_on: str | None = Field(default=None, description="A delisting: the date it takes effect from")


class ChangeResult(BaseModel):
    """What a confirmed change did."""

    change_id: int
    from_category: str
    to_category: str
    moved_cases: dict[str, str] = Field(description="Case id -> the queue it was moved to")
    past_decisions: list[str] = Field(description="Content ids of the past decisions it alters")
    bank_entries: dict[str, int] = Field(description="Bank name -> entries recategorised")


class LinksResult(BaseModel):
    """What a confirmed change of links did."""

    change_id: int
    links: Links


class DelistResult(BaseModel):
    """What a confirmed delisting did."""

    change_id: int
    delisted_on: str
    superseded_changes: list[int] = Field(description="Other proposed changes it dropped")


class NoResult(BaseModel):
    """``{}``: the change is not confirmed (yet)."""

    model_config = ConfigDict(extra="forbid")


class EntityEvent(BaseModel):
    kind: str
    actor: str
    at: str
    data: dict[str, Any] = Field(description="The event's payload, by kind")


class ChangeOut(BaseModel):
    id: int
    entity_id: int
    kind: str = Field(description="category (a new policy category), links (new aliases, keywords or banks) or "
                                  "delist (taken off the list)")
    from_category: str
    to_category: str
    state: str = Field(description="proposed, confirmed, rejected or superseded")
    note: str
    preview: ChangePreview = Field(description="open_cases (to move), past_decisions (it would alter), banks")
    result: ChangeResult | LinksResult | DelistResult | NoResult = Field(
        description="Once confirmed, by kind: moved_cases, past_decisions, bank_entries (category); links (links); "
                    "delisted_on, superseded_changes (delist); {} before")
    proposed_by: str
    proposed_at: str
    decided_by: str | None
    decided_at: str | None


class EntityDetail(EntityOut):
    changes: list[ChangeOut]
    events: list[EntityEvent]


class ChangeIn(BaseModel):
    category: str
    note: str = Field(default="", max_length=2000)


@router.post("", status_code=201, summary="Designate an entity", response_model=EntityOut)
def designate(body: EntityIn, principal: Editor, mod: Mod) -> EntityOut:
    return EntityOut.model_validate(services.designate(mod, services.NewEntity(
        name=body.name, designating_body=body.designating_body, designated_on=body.designated_on,
        category=body.category, aliases=body.aliases, keywords=body.keywords, banks=body.banks), actor=principal))


@router.get("", summary="Designated entities, by name", response_model=list[EntityOut])
def list_entities(principal: Reader, mod: Mod) -> list[EntityOut]:
    return [EntityOut.model_validate(e) for e in services.list_entities(mod)]


@router.get("/{entity_id}", summary="An entity, its changes and its events", response_model=EntityDetail)
def get_entity(entity_id: RowId, principal: Reader, mod: Mod) -> EntityDetail:
    return EntityDetail.model_validate(services.get_entity(mod, entity_id))


@router.patch("/{entity_id}", status_code=202, response_model=ChangeOut,
              summary="Propose new aliases, keywords or banks: another person confirms the change, then which "
                      "content is linked follows at once")
def edit(entity_id: RowId, body: LinksIn, principal: Editor, mod: Mod) -> ChangeOut:
    return ChangeOut.model_validate(services.propose_links(mod, entity_id, services.Links(
        aliases=body.aliases, keywords=body.keywords, banks=body.banks), note=body.note, actor=principal))


@router.post("/{entity_id}/delist", status_code=202, response_model=ChangeOut,
             summary="Propose taking an entity off the list: once another person confirms it, its record stays and "
                     "its links no longer make content designated")
def delist(entity_id: RowId, body: DelistIn, principal: Editor, mod: Mod) -> ChangeOut:
    return ChangeOut.model_validate(services.propose_delist(mod, entity_id, on=body.delisted_on, note=body.note,
                                                            actor=principal))


@router.post("/{entity_id}/changes", status_code=201, response_model=ChangeOut,
             summary="Propose a new category: the preview lists the open cases and past decisions it affects")
def propose(entity_id: RowId, body: ChangeIn, principal: Editor, mod: Mod) -> ChangeOut:
    return ChangeOut.model_validate(services.propose_change(mod, entity_id, body.category, note=body.note,
                                                            actor=principal))


@router.post("/changes/{change_id}/confirm", response_model=ChangeOut,
             summary="Confirm a change another person proposed: it applies (category and open cases, links, or "
                     "delisting)")
def confirm(change_id: RowId, principal: Editor, mod: Mod) -> ChangeOut:
    return ChangeOut.model_validate(services.confirm_change(mod, change_id, actor=principal))


@router.post("/changes/{change_id}/reject", response_model=ChangeOut, summary="Reject a proposed change")
def reject(change_id: RowId, principal: Editor, mod: Mod) -> ChangeOut:
    return ChangeOut.model_validate(services.reject_change(mod, change_id, actor=principal))
