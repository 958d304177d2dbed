"""The fact-checking domain's errors (``DomainError``s: each carries how to answer it)."""

from __future__ import annotations

from bastion.core.errors import DomainError


class FactcheckError(DomainError):
    status = 400
    title = "Bad request"


class InvalidPolicy(FactcheckError):
    status = 500
    title = "Invalid fact-check policy"


class PartnerNotFound(FactcheckError):
    status = 404
    title = "Partner not found"


class PartnerExists(FactcheckError):
    status = 409
    title = "Partner exists"


class InvalidPartner(FactcheckError):
    status = 422
    title = "Invalid partner"


class NotSendable(FactcheckError):
    """Content that may not leave Bastion (suspected child sexual abuse material) or does not exist."""

    status = 404
    title = "Content not found"


class InvalidRating(FactcheckError):
    """A rating body that does not parse, or names a rating Bastion does not know (fail closed)."""

    status = 422
    title = "Invalid rating"


class NotRequested(FactcheckError):
    """A partner rated content that was never sent to it."""

    status = 403
    title = "Not sent to this partner"


class RatingConflict(FactcheckError):
    """The same rating id again with another body: the first one stands."""

    status = 409
    title = "Conflict"
