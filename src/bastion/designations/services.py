"""Designated entities and the changes made to them: their category, their links, taking them off the list.

A change of category (from the hate-speech policy to the violent-extremism policy, say) is proposed with a preview:
the open cases it would move to the new category's queue, the past decisions it would alter, and the linked banks'
entries it would recategorise. Nothing applies until a senior moderator or an admin *other than the proposer* confirms
it (four eyes: one person cannot re-designate an entity alone); then, in one
transaction, the entity's category changes, the open cases move (``moderation.decisions.move_case``, found afresh),
the linked banks' entries of the old category take the new one (so future matches are judged under the new policy)
and the change is an event. Past decisions are shown for people to revisit, never rewritten.

Links are bank names (content that matched one of the banks at upload) and keywords (whole words of the content's
text, aliases included). Links decide which content is designated, so editing them and taking an entity off the list
(delisting) are proposed changes too, confirmed by another person. A delisted entity keeps its record and history
but no longer makes content designated; each applied change is an event, which the feed gate's follower re-reads
everything on.
Child sexual abuse material is out of scope: restricted banks cannot be linked, restricted
content and queues are never listed or moved.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core import events as event_log
from bastion.core.auth.services import Principal, person_of
from bastion.designations.events import (
    CategoryChanged,
    ChangeKind,
    ChangeProposed,
    ChangeRejected,
    ChangeState,
    Delisted,
    Designated,
    DesignationKind,
    InvalidStep,
    LinksChanged,
    Step,
    next_state,
)
from bastion.designations.interfaces import (
    ChangeConflict,
    ChangeNotFound,
    EntityExists,
    EntityNotFound,
    InvalidDesignation,
    SamePerson,
)
from bastion.designations.models import DesignatedEntity, DesignationChange, DesignationEvent
from bastion.matching import services as banks
from bastion.moderation import decisions
from bastion.moderation import queries as moderated
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import Category


def _log(mod: Moderation, session: Session, entity_id: int, kind: DesignationKind, actor: str,
         data: Any) -> None:
    event_log.record(session, DesignationEvent, subject=f"entity:{entity_id}", kind=kind, actor=actor,
                     at=mod.clock.now(), data=data)


def _category(value: str) -> Category:
    try:
        category = Category(value)
    except ValueError:
        known = ", ".join(c.value for c in Category if c is not Category.CSAM)
        raise InvalidDesignation(f"unknown category {value!r} (known: {known})") from None
    if category is Category.CSAM:
        raise InvalidDesignation("designations are not for child sexual abuse material")
    return category


def _words(values: list[str], what: str) -> list[str]:
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if any(len(v) > 200 for v in cleaned) or len(cleaned) > 500:
        raise InvalidDesignation(f"{what}: at most 500, each at most 200 characters")
    return cleaned


@dataclass(frozen=True)
class NewEntity:
    name: str
    designating_body: str
    designated_on: dt.date
    category: str
    aliases: list[str]
    keywords: list[str]
    banks: list[str]


def entity_view(row: DesignatedEntity) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "aliases": list(row.aliases), "keywords": list(row.keywords),
            "designating_body": row.designating_body, "designated_on": row.designated_on.isoformat(),
            "category": row.category, "banks": list(row.banks), "created_by": row.created_by,
            "updated_at": row.updated_at.isoformat(),
            "delisted_on": row.delisted_on.isoformat() if row.delisted_on else None}


def change_view(row: DesignationChange) -> dict[str, Any]:
    return {"id": row.id, "entity_id": row.entity_id, "kind": row.kind, "from_category": row.from_category,
            "to_category": row.to_category, "state": row.state, "note": row.note, "preview": dict(row.preview),
            "result": dict(row.result), "proposed_by": row.proposed_by, "proposed_at": row.proposed_at.isoformat(),
            "decided_by": row.decided_by, "decided_at": row.decided_at.isoformat() if row.decided_at else None}


def applied(change: dict[str, Any]) -> str:
    """One line on what a confirmed change did, as the console and the CLI say it."""
    result = change["result"]
    if change["kind"] == ChangeKind.LINKS.value:
        links = result["links"]
        return (f"change {change['id']} applied: banks {', '.join(links['banks']) or 'none'}; keywords "
                f"{', '.join(links['keywords']) or 'none'}; aliases {', '.join(links['aliases']) or 'none'}")
    if change["kind"] == ChangeKind.DELIST.value:
        return f"change {change['id']} applied: delisted on {result['delisted_on']}"
    return (f"change {change['id']} applied: {len(result['moved_cases'])} open cases moved, "
            f"{sum(result['bank_entries'].values())} bank entries recategorised, "
            f"{len(result['past_decisions'])} past decisions to revisit")


def designate(mod: Moderation, entity: NewEntity, *, actor: Principal) -> dict[str, Any]:
    """Add an entity to the list. Its banks must exist and must not be restricted (child sexual abuse material)."""
    name, body = entity.name.strip(), entity.designating_body.strip()
    if not name or len(name) > 200 or not body or len(body) > 200:
        raise InvalidDesignation("name and designating_body are 1 to 200 characters")
    category = _category(entity.category)
    linked = _words(entity.banks, "banks")
    with mod.db.write() as session:
        _check_banks(session, linked, actor)
        if session.scalar(select(DesignatedEntity.id).where(DesignatedEntity.name == name)) is not None:
            raise EntityExists(f"{name!r} is already designated")
        now = mod.clock.now()
        row = DesignatedEntity(name=name, aliases=_words(entity.aliases, "aliases"),
                               keywords=_words(entity.keywords, "keywords"), designating_body=body,
                               designated_on=entity.designated_on, category=category.value, banks=linked,
                               created_by=actor.actor, created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        _log(mod, session, row.id, DesignationKind.DESIGNATED, actor.actor, Designated(
            name=name, category=category.value, designating_body=body,
            designated_on=entity.designated_on.isoformat(), banks=linked, keywords=list(row.keywords)))
        return entity_view(row)


def _check_banks(session: Session, names: list[str], actor: Principal) -> None:
    for bank_name in names:
        bank = banks.visible_bank(session, bank_name, actor)
        if bank.restricted:
            raise InvalidDesignation(f"bank {bank_name!r} is restricted: designations never link to it")


def _listed(session: Session, entity_id: int) -> DesignatedEntity:
    row = _entity(session, entity_id)
    if row.delisted_on is not None:
        raise ChangeConflict(f"{row.name} was delisted on {row.delisted_on.isoformat()}")
    return row


@dataclass(frozen=True)
class Links:
    """An edit of an entity's links: each field given replaces the list; ``None`` keeps it."""

    aliases: list[str] | None = None
    keywords: list[str] | None = None
    banks: list[str] | None = None


def _links(row: DesignatedEntity) -> dict[str, list[str]]:
    return {"aliases": list(row.aliases), "keywords": list(row.keywords), "banks": list(row.banks)}


def _propose(mod: Moderation, session: Session, row: DesignatedEntity, kind: ChangeKind, *, to: str, note: str,
             preview: dict[str, Any], proposal: dict[str, Any], actor: Principal) -> DesignationChange:
    """Record a proposed change and its event; nothing else moves until another person confirms it."""
    preview = {"links": None, "delisted_on": None, **preview}  # every kind's preview has the same keys
    change = DesignationChange(entity_id=row.id, kind=kind.value, proposal=proposal, from_category=row.category,
                               to_category=to, state=ChangeState.PROPOSED.value, note=note[:2000], preview=preview,
                               result={}, proposed_by=actor.actor, proposed_at=mod.clock.now())
    session.add(change)
    session.flush()
    _log(mod, session, row.id, DesignationKind.CHANGE_PROPOSED, actor.actor, ChangeProposed(
        change_id=change.id, from_category=row.category, to_category=to, kind=kind,
        open_cases=len(preview["open_cases"]), past_decisions=len(preview["past_decisions"]), note=note[:2000]))
    return change


def propose_links(mod: Moderation, entity_id: int, links: Links, *, note: str, actor: Principal) -> dict[str, Any]:
    """Propose new aliases, keywords or banks (same checks as when designated). Links decide which content is
    designated (and kept out of the feed), so an edit is confirmed by another person, as a change of category is."""
    with mod.db.write() as session:
        row = _listed(session, entity_id)
        before = _links(row)
        after = dict(before)
        if links.banks is not None:
            after["banks"] = _words(links.banks, "banks")
            _check_banks(session, after["banks"], actor)
        if links.aliases is not None:
            after["aliases"] = _words(links.aliases, "aliases")
        if links.keywords is not None:
            after["keywords"] = _words(links.keywords, "keywords")
        if after == before:
            raise InvalidDesignation(f"{row.name} already has these links: nothing to change")
        preview = {"open_cases": [], "past_decisions": [], "banks": after["banks"],
                   "links": {"before": before, "after": after}}
        return change_view(_propose(mod, session, row, ChangeKind.LINKS, to=row.category, note=note,
                                    preview=preview, proposal=after, actor=actor))


def propose_delist(mod: Moderation, entity_id: int, *, on: dt.date, note: str, actor: Principal) -> dict[str, Any]:
    """Propose taking an entity off the list (its designating body revoked it); another person confirms it. Once
    confirmed, its record, links and history stay for the past decisions that cite it; its links stop making content
    designated, its other proposed changes are superseded, and its banks keep their entries (the material may still
    break the rules: curating them is the banks' job)."""
    with mod.db.write() as session:
        row = _listed(session, entity_id)
        if on < row.designated_on:
            raise InvalidDesignation(f"delisted_on {on.isoformat()} is before designated_on "
                                     f"{row.designated_on.isoformat()}")
        preview = {"open_cases": [], "past_decisions": [], "banks": list(row.banks), "delisted_on": on.isoformat()}
        return change_view(_propose(mod, session, row, ChangeKind.DELIST, to=row.category, note=note,
                                    preview=preview, proposal={"delisted_on": on.isoformat(), "note": note[:2000]},
                                    actor=actor))


def list_entities(mod: Moderation) -> list[dict[str, Any]]:
    with mod.db.read() as session:
        return [entity_view(r) for r in session.scalars(select(DesignatedEntity).order_by(DesignatedEntity.name))]


def _entity(session: Session, entity_id: int) -> DesignatedEntity:
    row = session.get(DesignatedEntity, entity_id)
    if row is None:
        raise EntityNotFound(f"no designated entity {entity_id}")
    return row


def entity_by_name(mod: Moderation, name: str) -> dict[str, Any]:
    with mod.db.read() as session:
        row = session.scalar(select(DesignatedEntity).where(DesignatedEntity.name == name))
        if row is None:
            raise EntityNotFound(f"no designated entity named {name!r}")
        return entity_view(row)


def get_entity(mod: Moderation, entity_id: int) -> dict[str, Any]:
    """The entity, its changes (newest first) and its events."""
    with mod.db.read() as session:
        row = _entity(session, entity_id)
        changes = session.scalars(select(DesignationChange).where(DesignationChange.entity_id == entity_id)
                                  .order_by(DesignationChange.id.desc()))
        events = event_log.history(session, DesignationEvent, f"entity:{entity_id}")
        return {**entity_view(row), "changes": [change_view(c) for c in changes],
                "events": [{"kind": e.kind, "actor": e.actor, "at": e.at.isoformat(), "data": e.data}
                           for e in events]}


def _preview(mod: Moderation, session: Session, row: DesignatedEntity, to: Category) -> dict[str, Any]:
    """What changing ``row`` to ``to`` would do, as a person is shown it before confirming."""
    words = list(row.keywords) + list(row.aliases) + [row.name]
    cases = []
    for case in moderated.open_cases_linked(mod, session, banks=row.banks, keywords=words):
        queue = decisions.queue_after_move(mod, session, case.case_id, to)
        if queue is not None:
            cases.append({"case_id": case.case_id, "content_id": case.content_id, "from_queue": case.queue,
                          "to_queue": queue, "category": case.category, "links": case.links})
    past = [{"content_id": d.content_id, "case_id": d.case_id, "category": d.category, "actions": d.actions,
             "decided_by": d.decided_by, "at": d.at.isoformat(), "links": d.links}
            for d in moderated.decisions_linked(mod, session, banks=row.banks, keywords=words, category=row.category)]
    return {"open_cases": cases, "past_decisions": past, "banks": list(row.banks)}


def propose_change(mod: Moderation, entity_id: int, category: str, *, note: str, actor: Principal
                   ) -> dict[str, Any]:
    """Propose a new category for an entity, with its preview; nothing changes until it is confirmed."""
    to = _category(category)
    with mod.db.write() as session:
        row = _listed(session, entity_id)
        if to.value == row.category:
            raise InvalidDesignation(f"{row.name} is already {row.category}")
        return change_view(_propose(mod, session, row, ChangeKind.CATEGORY, to=to.value, note=note,
                                    preview=_preview(mod, session, row, to), proposal={}, actor=actor))


def _step(change: DesignationChange, step: Step) -> None:
    try:
        change.state = next_state(ChangeState(change.state), step).value
    except InvalidStep as exc:
        raise ChangeConflict(str(exc)) from None


def _change(session: Session, change_id: int) -> DesignationChange:
    change = session.get(DesignationChange, change_id)
    if change is None:
        raise ChangeNotFound(f"no designation change {change_id}")
    return change


def confirm_change(mod: Moderation, change_id: int, *, actor: Principal) -> dict[str, Any]:
    """Apply a proposed change, confirmed by a person other than its proposer (four eyes); one event. Other
    proposals for the entity are superseded: their previews assumed the entity as it was."""
    with mod.db.write() as session:
        change = _change(session, change_id)
        row = _entity(session, change.entity_id)
        _step(change, Step.CONFIRM)
        if person_of(session, change.proposed_by) == person_of(session, actor.actor):
            raise SamePerson(f"change {change.id} was proposed by {change.proposed_by}: another person (a senior "
                             "moderator or an admin) confirms it, not a credential of the same person")
        if row.delisted_on is not None:  # defensive: delisting supersedes the others
            raise ChangeConflict(f"{row.name} was delisted on {row.delisted_on.isoformat()}")
        if row.category != change.from_category:  # defensive: a confirmed change supersedes the others
            raise ChangeConflict(f"{row.name} is {row.category} now, not {change.from_category}; propose again")
        superseded = []
        for other in session.scalars(select(DesignationChange).where(
                DesignationChange.entity_id == row.id, DesignationChange.id != change.id,
                DesignationChange.state == ChangeState.PROPOSED.value)):
            _step(other, Step.SUPERSEDE)
            superseded.append(other.id)
        change.decided_by, change.decided_at = actor.actor, mod.clock.now()
        kind = ChangeKind(change.kind)
        if kind is ChangeKind.LINKS:
            _apply_links(mod, session, row, change, actor)
        elif kind is ChangeKind.DELIST:
            _apply_delist(mod, session, row, change, superseded, actor)
        else:
            _apply_category(mod, session, row, change, actor)
        return change_view(change)


def _apply_category(mod: Moderation, session: Session, row: DesignatedEntity, change: DesignationChange,
                    actor: Principal) -> None:
    """The entity's category, its open cases (found afresh), its banks' entries; its banks checked again (one may
    have been made again as a restricted bank since it was linked)."""
    _check_banks(session, list(row.banks), actor)
    to = Category(change.to_category)
    past = [d["content_id"] for d in _preview(mod, session, row, to)["past_decisions"]]
    words = list(row.keywords) + list(row.aliases) + [row.name]
    reason = f"designation change {change.id}: {row.name}, {change.from_category} -> {change.to_category}"
    moved: dict[str, str] = {}
    for case in moderated.open_cases_linked(mod, session, banks=row.banks, keywords=words):
        queue = decisions.move_case(mod, session, case.case_id, to, by=actor.actor, reason=reason)
        if queue is not None:
            moved[str(case.case_id)] = queue
    entries = {b: banks.recategorise_entries(mod.db, session, b, old=change.from_category, new=to.value,
                                             actor=actor, clock=mod.clock) for b in row.banks}
    row.category, row.updated_at = to.value, mod.clock.now()
    result = CategoryChanged(change_id=change.id, from_category=change.from_category, to_category=to.value,
                             moved_cases=moved, past_decisions=past, bank_entries=entries)
    change.result = result.model_dump(mode="json")
    _log(mod, session, row.id, DesignationKind.CATEGORY_CHANGED, actor.actor, result)


def _apply_links(mod: Moderation, session: Session, row: DesignatedEntity, change: DesignationChange,
                 actor: Principal) -> None:
    """The proposed links, checked again (a bank may have become restricted since). Which content is linked
    follows at once: the feed gate's follower looks at every item again."""
    before, after = _links(row), {k: list(v) for k, v in change.proposal.items()}
    if before != change.preview["links"]["before"]:  # defensive: a confirmed change supersedes the others
        raise ChangeConflict(f"{row.name}'s links changed since change {change.id} was proposed; propose again")
    _check_banks(session, after["banks"], actor)
    row.aliases, row.keywords, row.banks = after["aliases"], after["keywords"], after["banks"]
    row.updated_at = mod.clock.now()
    event = LinksChanged(**after, before=before, change_id=change.id)
    change.result = {"change_id": change.id, "links": after}
    _log(mod, session, row.id, DesignationKind.LINKS_CHANGED, actor.actor, event)


def _apply_delist(mod: Moderation, session: Session, row: DesignatedEntity, change: DesignationChange,
                  superseded: list[int], actor: Principal) -> None:
    on = dt.date.fromisoformat(change.proposal["delisted_on"])
    row.delisted_on, row.updated_at = on, mod.clock.now()
    change.result = {"change_id": change.id, "delisted_on": on.isoformat(), "superseded_changes": superseded}
    _log(mod, session, row.id, DesignationKind.DELISTED, actor.actor,
         Delisted(delisted_on=on.isoformat(), note=change.proposal.get("note", ""), superseded_changes=superseded,
                  change_id=change.id))


def reject_change(mod: Moderation, change_id: int, *, actor: Principal) -> dict[str, Any]:
    with mod.db.write() as session:
        change = _change(session, change_id)
        _step(change, Step.REJECT)
        change.decided_by, change.decided_at = actor.actor, mod.clock.now()
        _log(mod, session, change.entity_id, DesignationKind.CHANGE_REJECTED, actor.actor,
             ChangeRejected(change_id=change.id))
        return change_view(change)
