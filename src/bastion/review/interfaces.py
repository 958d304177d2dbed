"""The review domain's errors."""

from __future__ import annotations

from bastion.core.errors import DomainError


class ReviewError(DomainError):
    status = 400
    title = "Bad request"


class CaseNotFound(ReviewError):
    status = 404
    title = "Case not found"


class NotYourClaim(ReviewError):
    """The case is not claimed by this reviewer (never claimed, claim expired and taken, or decided already)."""

    status = 409
    title = "Case not claimed by you"
