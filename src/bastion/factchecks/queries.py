"""The fact-checking domain's read API, for the feed gate and transparency: what partners said of which content.

The latest rating of an item (by any partner) is what counts: a partner's correction supersedes its rating.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.factchecks.events import FALSE_RATINGS
from bastion.factchecks.models import FactcheckRating


def latest_ratings(session: Session, content_ids: Iterable[str]) -> dict[str, str]:
    """Each rated item's latest rating (``events.Rating`` values); unrated items are absent."""
    ids = list(dict.fromkeys(content_ids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        latest = (select(func.max(FactcheckRating.id)).where(FactcheckRating.content_id.in_(chunk))
                  .group_by(FactcheckRating.content_id))
        for content_id, rating in session.execute(select(FactcheckRating.content_id, FactcheckRating.rating)
                                                  .where(FactcheckRating.id.in_(latest))):
            found[content_id] = rating
    return found


def false_rated(session: Session, content_ids: Iterable[str]) -> set[str]:
    """Of ``content_ids``, those whose latest rating is false or partly false: the feed gate's
    ``fact_checked_false``."""
    false = {r.value for r in FALSE_RATINGS}
    return {c for c, rating in latest_ratings(session, content_ids).items() if rating in false}


@dataclass(frozen=True)
class RatedSince:
    """What changed since a cursor: each re-rated item with whether its latest rating is false now, and the cursor
    to ask from next time (a ``factcheck_ratings`` id)."""

    cursor: int
    false: dict[str, bool]


def false_rated_since(session: Session, cursor: int, *, limit: int = 5000) -> RatedSince:
    """For a follower (the feed gate's reason source, polled every ~100 ms): the items rated after ``cursor``, each
    with ``false_rated``'s answer now; one indexed read when nothing changed. At most ``limit`` ratings a call."""
    rows = session.execute(select(FactcheckRating.id, FactcheckRating.content_id).where(FactcheckRating.id > cursor)
                           .order_by(FactcheckRating.id).limit(limit)).all()
    if not rows:
        return RatedSince(cursor, {})
    ids = [content_id for _, content_id in rows]
    false = false_rated(session, ids)
    return RatedSince(rows[-1][0], {c: c in false for c in ids})
