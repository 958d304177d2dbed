"""Sending items to fact-checking partners and taking their signed ratings.

An item goes out through the outbox (``FactcheckMessage.REQUEST``), in the same transaction as its ``item.sent``
event, signed with this platform's Ed25519 key. A rating comes back signed with the partner's registered key
(``core/signing.py``, the header removal orders use); its effect is the fact-check policy's actions, applied by
``moderation.actions.restrict``, so it gets the same event, statement of reasons, appeal and platform webhook as any
restriction. The rating itself is recorded here (``factcheck_events``, ``factcheck_ratings``).

Corrections: a partner's later rating of the same item supersedes its earlier one. Each rating lifts the limits
earlier ratings applied that no partner's latest rating needs any more (``_lift_superseded``), through
``moderation.actions.lift_reach``, which keeps any limit a moderator, an appeal or another path applied too.

Replays: the partner's ``rating_id`` is the idempotency key. The same id with the same body gets the first answer
again (a replayed capture changes nothing); with another body, 409. Nonces are therefore not remembered.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.core import events as event_log
from bastion.core import signing
from bastion.core.auth.services import Principal
from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.outbox.services import enqueue
from bastion.factchecks.events import (
    FactcheckKind,
    FactcheckMessage,
    PartnerAdded,
    PartnerDisabled,
    Rated,
    Rating,
    Sent,
)
from bastion.factchecks.interfaces import (
    InvalidPartner,
    InvalidRating,
    NotRequested,
    NotSendable,
    PartnerExists,
    PartnerNotFound,
    RatingConflict,
)
from bastion.factchecks.models import FactcheckEvent, FactcheckPartner, FactcheckRating, FactcheckRequest
from bastion.factchecks.policy import FactcheckPolicy
from bastion.moderation import actions as moderation
from bastion.moderation import queries as moderated
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import Action
from bastion.moderation.statements import Source

#: Orders writers of ``factcheck_ratings`` on PostgreSQL, so a follower that saw id N never later finds N-1.
RATINGS_LOCK = 0x46434B52

#: The actor prefix of everything a partner's rating does in moderation (``factcheck:<partner>``).
FACTCHECK_ACTOR = "factcheck:"

#: Where partners send ratings, named in each request so a partner needs no other configuration.
RATINGS_PATH = "/v1/factchecks/ratings"


@dataclass(frozen=True)
class FactChecks:
    """What the services need: moderation (database, clock, actions) and the fact-check policy."""

    mod: Moderation
    policy: FactcheckPolicy
    window_seconds: float = signing.DEFAULT_WINDOW_SECONDS

    @property
    def db(self) -> Database:
        return self.mod.db

    @property
    def clock(self) -> Clock:
        return self.mod.clock


def content_subject(content_id: str) -> str:
    return f"content:{content_id}"


def _log(fc: FactChecks, session: Session, subject: str, kind: FactcheckKind, actor: str, data: BaseModel,
         external_id: str | None = None) -> None:
    event_log.record(session, FactcheckEvent, subject=subject, kind=kind, actor=actor, at=fc.clock.now(), data=data,
                     external_id=external_id)


# --- partners --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerView:
    name: str
    key_id: str
    public_key: str
    url: str
    enabled: bool

    @classmethod
    def from_row(cls, row: FactcheckPartner) -> PartnerView:
        return cls(row.name, row.key_id, row.public_key, row.url, row.enabled)


def add_partner(fc: FactChecks, *, name: str, public_key: str, url: str, actor: Principal) -> PartnerView:
    """Register a partner: its name, the Ed25519 public key its ratings are signed with, and where items go."""
    if not name or len(name) > 100 or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidPartner("a partner's name is 1 to 100 letters, digits, '-', '_' or '.'")
    if not url.startswith(("https://", "http://")):
        raise InvalidPartner("url must be an http(s) URL")
    try:
        key = signing.load_public_key(public_key)
    except ValueError as exc:
        raise InvalidPartner(f"key: {exc}") from None
    kid = signing.key_id(key)
    with fc.db.write() as session:
        if session.get(FactcheckPartner, name) is not None:
            raise PartnerExists(f"partner {name!r} is already registered")
        if session.scalar(select(FactcheckPartner.name).where(FactcheckPartner.key_id == kid)) is not None:
            raise PartnerExists(f"key {kid} is already another partner's")
        row = FactcheckPartner(name=name, key_id=kid, public_key=signing.public_key_text(key), url=url,
                               enabled=True, created_by=actor.actor, created_at=fc.clock.now())
        session.add(row)
        _log(fc, session, f"partner:{name}", FactcheckKind.PARTNER_ADDED, actor.actor,
             PartnerAdded(name=name, key_id=kid, url=url))
        return PartnerView.from_row(row)


def disable_partner(fc: FactChecks, name: str, *, actor: Principal) -> PartnerView:
    """Stop accepting a partner's key and sending it items (a key leaked, a contract ended). Its ratings so far
    and the restrictions they led to stay; a new key means registering the partner again under another name."""
    with fc.db.write() as session:
        row = session.get(FactcheckPartner, name)
        if row is None:
            raise PartnerNotFound(f"no partner {name!r}")
        if row.enabled:
            row.enabled = False
            _log(fc, session, f"partner:{name}", FactcheckKind.PARTNER_DISABLED, actor.actor,
                 PartnerDisabled(name=name, key_id=row.key_id))
        return PartnerView.from_row(row)


def list_partners(db: Database) -> list[PartnerView]:
    with db.read() as session:
        return [PartnerView.from_row(r) for r in session.scalars(select(FactcheckPartner)
                                                                  .order_by(FactcheckPartner.name))]


# --- sending items ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentItem:
    request_id: str
    partner: str
    content_id: str


def send(fc: FactChecks, content_id: str, partner: str, *, actor: Principal) -> SentItem:
    """Send an item to a partner through the outbox. Suspected child sexual abuse material never leaves: it is
    answered as content that does not exist, like content never submitted."""
    with fc.db.write() as session:
        row = session.get(FactcheckPartner, partner)
        if row is None or not row.enabled:
            raise PartnerNotFound(f"no partner {partner!r}")
        view = moderated.content(session, content_id)
        if view is None or moderated.restricted(fc.mod, session, content_id):
            raise NotSendable(f"no content {content_id!r} that may be sent for fact-checking")
        request_id = f"fcr-{uuid.uuid4().hex}"
        session.add(FactcheckRequest(request_id=request_id, partner=partner, content_id=content_id,
                                     sent_by=actor.actor, sent_at=fc.clock.now()))
        message: dict[str, object] = {
            "request_id": request_id, "content_id": content_id, "content_type": view.content_type,
            "text": view.text, "url": view.url, "ratings_path": RATINGS_PATH,
            "ratings": [r.value for r in Rating],
        }
        enqueue(session, kind=FactcheckMessage.REQUEST, destination=row.url, payload=message,
                idempotency_key=f"{FactcheckMessage.REQUEST}:{request_id}", clock=fc.clock)
        _log(fc, session, content_subject(content_id), FactcheckKind.SENT, actor.actor,
             Sent(request_id=request_id, partner=partner))
        return SentItem(request_id, partner, content_id)


# --- ratings ---------------------------------------------------------------------------------------------------------


class RatingIn(BaseModel):
    """A partner's rating, the body of ``POST /v1/factchecks/ratings`` (docs/factchecks.md)."""

    model_config = ConfigDict(extra="forbid")

    rating_id: str = Field(min_length=1, max_length=200, description="The partner's own id: its idempotency key")
    content_id: str = Field(min_length=1, max_length=200)
    rating: Rating
    explanation: str = Field(default="", max_length=5000, description="Shown in the statement of reasons")
    review_url: str = Field(default="", max_length=2000, description="The partner's published article")


class RatingAnswer(BaseModel):
    rating_id: str
    content_id: str
    rating: Rating
    actions: list[str] = Field(description="The fact-check policy's restrictions for this rating")
    applied: bool = Field(description="Whether moderation applied them (only to published or restricted content)")
    status: str = Field(description="The content's status afterwards")
    statement_puid: str | None = Field(description="The statement of reasons issued, which the uploader may appeal")
    lifted: list[str] = Field(default_factory=list, description="Limits earlier ratings applied that no partner's "
                                                                "latest rating needs now, lifted by this one")
    replay: bool = Field(default=False, description="The same rating was received before: the first answer")


def _partner_key(db: Database) -> Callable[[str], Ed25519PublicKey | None]:
    def keys(kid: str) -> Ed25519PublicKey | None:
        with db.read() as session:
            text = session.scalar(select(FactcheckPartner.public_key).where(
                FactcheckPartner.key_id == kid, FactcheckPartner.enabled.is_(True)))
        return signing.load_public_key(text) if text else None

    return keys


def _parse(body: bytes) -> RatingIn:
    try:
        return RatingIn.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise InvalidRating(problems) from None


def receive(fc: FactChecks, headers: Mapping[str, str], body: bytes) -> RatingAnswer:
    """Check a rating's signature, then record it and apply the policy's restriction, once per rating id."""
    verified = signing.verify(headers, body, keys=_partner_key(fc.db), now=fc.clock.now(),
                              window_seconds=fc.window_seconds)
    rating = _parse(body)
    digest = hashlib.sha256(body).hexdigest()
    try:
        return _record(fc, verified.key_id, rating, digest)
    except IntegrityError:  # the same rating id, written by a concurrent request: answer as a repeat
        return _record(fc, verified.key_id, rating, digest)


def _record(fc: FactChecks, key_id: str, rating: RatingIn, digest: str) -> RatingAnswer:
    with fc.db.write() as session:
        fc.db.serialize_writers(session, RATINGS_LOCK)
        partner = session.scalar(select(FactcheckPartner.name).where(FactcheckPartner.key_id == key_id))
        assert partner is not None  # the signature was just checked against its key
        seen = session.scalar(select(FactcheckRating).where(FactcheckRating.partner == partner,
                                                            FactcheckRating.rating_id == rating.rating_id))
        if seen is not None:
            if seen.body_sha256 != digest:
                raise RatingConflict(f"rating {rating.rating_id!r} was received before with another body")
            return RatingAnswer.model_validate({**seen.answer, "replay": True})
        if session.scalar(select(FactcheckRequest.request_id).where(
                FactcheckRequest.partner == partner, FactcheckRequest.content_id == rating.content_id)
                .limit(1)) is None or moderated.restricted(fc.mod, session, rating.content_id):
            # suspected child sexual abuse material since it was sent: answered as content never sent, so the partner
            # learns nothing of it (not even its status)
            raise NotRequested(f"content {rating.content_id!r} was not sent to {partner} for fact-checking")
        actions = fc.policy.actions(rating.rating)
        if actions:
            facts = f"Rated {rating.rating.value.replace('_', ' ')} by the fact-checking partner {partner}."
            if rating.explanation:
                facts += f" {rating.explanation}"
            done = moderation.restrict(fc.mod, session, rating.content_id, actions=actions,
                                       category=fc.policy.category, facts=facts[:5000],
                                       decided_by=f"{FACTCHECK_ACTOR}{partner}", source=Source.OTHER_NOTIFICATION)
        else:
            done = moderation.Restricted(False, moderated.content_status(session, rating.content_id), None)
        lift = _lift_superseded(fc, session, partner, rating)
        answer = RatingAnswer(rating_id=rating.rating_id, content_id=rating.content_id, rating=rating.rating,
                              actions=[a.value for a in actions], applied=done.applied,
                              status=lift.status if lift else done.status, statement_puid=done.statement_puid,
                              lifted=[a.value for a in lift.lifted] if lift else [])
        session.add(FactcheckRating(partner=partner, rating_id=rating.rating_id, content_id=rating.content_id,
                                    rating=rating.rating.value, body_sha256=digest,
                                    answer=answer.model_dump(mode="json"), received_at=fc.clock.now()))
        _log(fc, session, content_subject(rating.content_id), FactcheckKind.RATED, f"{FACTCHECK_ACTOR}{partner}",
             Rated(partner=partner, rating_id=rating.rating_id, rating=rating.rating.value, body_sha256=digest,
                   explanation=rating.explanation, review_url=rating.review_url, actions=answer.actions,
                   applied=done.applied, statement_puid=done.statement_puid, lifted=answer.lifted),
             external_id=f"rating:{partner}:{rating.rating_id}")
        session.flush()
        return answer


def _lift_superseded(fc: FactChecks, session: Session, partner: str, rating: RatingIn) -> moderation.Lifted | None:
    """After ``partner``'s ``rating``: lift the limits earlier ratings of the item applied that no partner's latest
    rating calls for now (``None`` when there are none).

    Still needed: the policy's actions for each partner's latest rating of the item (``rating`` for ``partner``;
    a disabled partner's ratings still stand). Lifted: those of earlier ratings' actions moderation applied (their
    stored answers) that are not needed, less any a moderator, an appeal or another path applied too
    (``lift_reach``: it keeps those).
    """
    rows = session.scalars(select(FactcheckRating).where(FactcheckRating.content_id == rating.content_id)
                           .order_by(FactcheckRating.id)).all()
    latest = {r.partner: Rating(r.rating) for r in rows} | {partner: rating.rating}
    needed = {a for r in latest.values() for a in fc.policy.actions(r)}
    applied = dict.fromkeys(Action(a) for r in rows if r.answer.get("applied") for a in r.answer.get("actions", ()))
    stale = [a for a in applied if a not in needed and a in moderation.REACH_ACTIONS]
    if not stale:
        return None
    said = f"Rated {rating.rating.value.replace('_', ' ')} by the fact-checking partner {partner} " \
           f"(rating {rating.rating_id}): no partner's latest rating of the item calls for these limits any more."
    return moderation.lift_reach(fc.mod, session, rating.content_id, actions=stale, owner=FACTCHECK_ACTOR,
                                 decided_by=f"{FACTCHECK_ACTOR}{partner}", reason=said)


@dataclass(frozen=True)
class RatingView:
    partner: str
    rating_id: str
    rating: str
    received_at: str
    answer: dict[str, Any]


def ratings_of(fc: FactChecks, content_id: str) -> list[RatingView]:
    """The ratings an item received, oldest first."""
    with fc.db.read() as session:
        rows = session.scalars(select(FactcheckRating).where(FactcheckRating.content_id == content_id)
                               .order_by(FactcheckRating.id))
        return [RatingView(r.partner, r.rating_id, r.rating, r.received_at.isoformat(), dict(r.answer))
                for r in rows]


def as_dict(view: PartnerView | SentItem | RatingView) -> dict[str, Any]:
    """A frozen view as JSON-ready data (the API's and the CLI's shape)."""
    data: dict[str, Any] = json.loads(json.dumps(asdict(view), default=str))
    return data
