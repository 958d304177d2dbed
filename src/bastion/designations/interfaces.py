"""The designations domain's errors (``DomainError``s: each carries how to answer it)."""

from __future__ import annotations

from bastion.core.errors import DomainError


class DesignationError(DomainError):
    status = 400
    title = "Bad request"


class EntityNotFound(DesignationError):
    status = 404
    title = "Entity not found"


class ChangeNotFound(DesignationError):
    status = 404
    title = "Change not found"


class EntityExists(DesignationError):
    status = 409
    title = "Entity exists"


class InvalidDesignation(DesignationError):
    status = 422
    title = "Invalid designation"


class ChangeConflict(DesignationError):
    """The change was decided already, or the entity's category moved since it was proposed."""

    status = 409
    title = "Conflict"


class SamePerson(DesignationError):
    """Four eyes: whoever proposed a change may withdraw (reject) it, never confirm it."""

    status = 403
    title = "Another person must confirm"
