"""The hub's errors: each a ``DomainError``, answered by the API's, the console's and the CLI's one handler."""

from __future__ import annotations

from bastion.core.errors import DomainError


class HubError(DomainError):
    status = 400
    title = "Bad request"


class HubNotFound(HubError):
    status = 404
    title = "Not found"


class HubConflict(HubError):
    status = 409
    title = "Conflict"


class HubForbidden(HubError):
    status = 403
    title = "Forbidden"


class InvalidHubRequest(HubError):
    """Bad input found by the hub itself (a key that is not one, a Member State that is not one)."""

    status = 422
    title = "Invalid request"
