"""The designations domain's read API (for the feed gate's ``designated_entity`` and for transparency)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.designations.models import DesignatedEntity


@dataclass(frozen=True)
class Entity:
    id: int
    name: str
    category: str
    banks: list[str]
    #: Keywords, aliases and the name: the words that link a text to it.
    words: list[str]


def entities(session: Session) -> list[Entity]:
    return [Entity(r.id, r.name, r.category, list(r.banks), list(r.keywords) + list(r.aliases) + [r.name])
            for r in session.scalars(select(DesignatedEntity).order_by(DesignatedEntity.id))]


def entities_linked_to_banks(session: Session, bank_names: Iterable[str]) -> list[Entity]:
    """Entities whose material is in any of ``bank_names`` (a match's bank names an entity's content)."""
    wanted = set(bank_names)
    return [e for e in entities(session) if wanted & set(e.banks)]


def entities_named_in(session: Session, text: str) -> list[Entity]:
    """Entities a text names by a keyword, an alias or its name (whole words, case-insensitive)."""
    return [e for e in entities(session) if any(
        re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE) for w in e.words if w.strip())]
