"""Ratings, event kinds and payloads, and the message sent to partners. Values are storage keys: never rename."""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field

from bastion.core.outbox.kinds import MessageKind


class Rating(enum.StrEnum):
    """What a partner may say of an item. Anything else is refused (fail closed): a new value is a code change."""

    FALSE = "false"
    PARTLY_FALSE = "partly_false"
    MISSING_CONTEXT = "missing_context"
    TRUE = "true"


#: Ratings the feed gate excludes as ``fact_checked_false`` (``queries.false_rated``).
FALSE_RATINGS = frozenset({Rating.FALSE, Rating.PARTLY_FALSE})


class FactcheckKind(enum.StrEnum):
    PARTNER_ADDED = "partner.added"
    PARTNER_DISABLED = "partner.disabled"  # its key no longer accepted, nothing more sent to it
    SENT = "item.sent"  # subject content:<id>
    RATED = "item.rated"  # subject content:<id>; external_id rating:<partner>:<rating id>


class PartnerAdded(BaseModel):
    name: str
    key_id: str
    url: str


class PartnerDisabled(BaseModel):
    name: str
    key_id: str


class Sent(BaseModel):
    request_id: str
    partner: str


class Rated(BaseModel):
    partner: str
    rating_id: str
    rating: str
    body_sha256: str
    explanation: str = ""
    review_url: str = ""
    #: The restrictions the fact-check policy gave the rating, and whether moderation applied them.
    actions: list[str] = Field(default_factory=list)
    applied: bool = False
    statement_puid: str | None = None
    #: Limits earlier ratings applied that this one lifted (``services._lift_superseded``).
    lifted: list[str] = Field(default_factory=list)


PAYLOADS: dict[FactcheckKind, type[BaseModel]] = {
    FactcheckKind.PARTNER_ADDED: PartnerAdded, FactcheckKind.PARTNER_DISABLED: PartnerDisabled,
    FactcheckKind.SENT: Sent, FactcheckKind.RATED: Rated,
}


class FactcheckMessage(MessageKind):
    """What goes to partners through the outbox, signed with this platform's Ed25519 key (docs/factchecks.md)."""

    REQUEST = "factcheck.request"
