"""The European Union's Member States, as the regulations Bastion implements name them (ISO 3166-1 alpha-2)."""

from __future__ import annotations

from bastion.core.validators import COUNTRIES

MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV",
    "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
assert MEMBER_STATES <= COUNTRIES


def member_state(value: str) -> str:
    """The code in capitals; ``ValueError`` with the reason when it is not a Member State."""
    code = value.upper()
    if code not in MEMBER_STATES:
        raise ValueError(f"{value!r} is not a Member State (ISO 3166-1 alpha-2, e.g. FR)")
    return code
