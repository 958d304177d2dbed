"""The designations domain's read API (for the feed gate's ``designated_entity`` and for transparency)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.designations.events import LINKING_KINDS
from bastion.designations.models import DesignatedEntity, DesignationEvent
from bastion.moderation import queries as moderated


@dataclass(frozen=True)
class Entity:
    id: int
    name: str
    category: str
    banks: list[str]
    #: Keywords, aliases and the name: the words that link a text to it.
    words: list[str]


def entities(session: Session) -> list[Entity]:
    """The entities on the list now (delisted ones left out)."""
    return [Entity(r.id, r.name, r.category, list(r.banks), list(r.keywords) + list(r.aliases) + [r.name])
            for r in session.scalars(select(DesignatedEntity).where(DesignatedEntity.delisted_on.is_(None))
                                     .order_by(DesignatedEntity.id))]


def designated_content(session: Session, content_ids: Iterable[str]) -> dict[str, list[str]]:
    """Of ``content_ids``, those linked to a designated entity (a match in one of its banks at upload, or one of its
    words in the text), each with the entities' names: the feed gate's ``designated_entity``. Three queries per 500
    ids, whatever the number of entities. Restricted material is the child-safety path's, not this one's."""
    listed = entities(session)
    by_link: dict[str, set[str]] = {}
    for entity in listed:
        for bank in entity.banks:
            by_link.setdefault(f"bank:{bank}", set()).add(entity.name)
        for word in entity.words:
            by_link.setdefault(f"keyword:{word}", set()).add(entity.name)
    if not by_link:
        return {}
    links = moderated.linked(session, list(dict.fromkeys(content_ids)),
                             banks=sorted({b for e in listed for b in e.banks}),
                             keywords=sorted({w for e in listed for w in e.words}))
    return {c: sorted(set().union(*(by_link.get(link, set()) for link in found))) for c, found in links.items()}


@dataclass(frozen=True)
class DesignatedSince:
    """Content whose link to designated entities changed, each with the entities' names now (an empty list: no
    longer designated), and the cursor to ask from next (a ``moderation_events`` id)."""

    cursor: int
    content: dict[str, list[str]]


class DesignatedFollower:
    """Follows what makes content designated, for a poller such as the feed gate's reason source: new content
    (moderation's submissions since the cursor), and any change of the list (an entity designated, its links edited,
    or delisted): then every item is looked at again, once per change (rare), and the items it had reported that are
    no longer linked are reported with no names. One follower per poller: it remembers what it has seen."""

    def __init__(self) -> None:
        self._list_seen = -1
        self._reported: set[str] = set()

    def since(self, session: Session, cursor: int) -> DesignatedSince:
        latest = session.scalar(select(func.max(DesignationEvent.id)).where(
            DesignationEvent.kind.in_([k.value for k in LINKING_KINDS]))) or 0
        if latest == 0:  # nothing designated yet: nothing to link, and no reason to read the submissions
            return DesignatedSince(cursor, {})
        if latest != self._list_seen or cursor == 0:
            new = moderated.submitted_since(session, 0, limit=None)
            self._list_seen = latest
            found = designated_content(session, new.content_ids) if new.content_ids else {}
            gone: dict[str, list[str]] = {c: [] for c in self._reported - set(found)}
            self._reported = set(found)
            return DesignatedSince(new.cursor, {**gone, **found})
        new = moderated.submitted_since(session, cursor)
        found = designated_content(session, new.content_ids) if new.content_ids else {}
        self._reported |= set(found)
        return DesignatedSince(new.cursor, found)
