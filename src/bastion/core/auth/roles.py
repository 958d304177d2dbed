"""Roles and which of them each kind of work needs. Values are storage keys: never rename one."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    CURATOR = "curator"
    MODERATOR = "moderator"
    SENIOR_MODERATOR = "senior_moderator"
    CHILD_SAFETY = "child_safety"
    ANALYST = "analyst"
    AUTHORITY = "authority"
    PLATFORM = "platform"


#: Roles allowed to see and change banks marked ``restricted`` (child sexual abuse material).
CHILD_SAFETY_ROLES = frozenset({Role.ADMIN, Role.CHILD_SAFETY})

# What each group of routes needs, in one place so a reviewer sees the whole policy at once.
HASH = frozenset(
    {Role.ADMIN, Role.CURATOR, Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CHILD_SAFETY, Role.ANALYST, Role.PLATFORM}
)
MATCH = frozenset(
    {Role.ADMIN, Role.CURATOR, Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CHILD_SAFETY, Role.PLATFORM}
)
READ_BANKS = frozenset(
    {Role.ADMIN, Role.CURATOR, Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CHILD_SAFETY, Role.ANALYST}
)
CURATE_BANKS = frozenset({Role.ADMIN, Role.CURATOR, Role.CHILD_SAFETY})
METRICS = frozenset({Role.ADMIN, Role.ANALYST})
ADMIN = frozenset({Role.ADMIN})


def parse_role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {raw!r} (known: {known})") from None
