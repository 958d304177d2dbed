"""Background work of moderation: dropping the sealed previews of published uploads no review needs any more.

Every upload keeps a small sealed preview (``services.submit``), so a case opened later by a notice or by reach
shows the reviewer the media. Held, blocked and removed content keeps its preview (appeals, orders); published
content keeps it for ``published_preview_days``, unless a case about it is still undecided.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CursorResult, delete, select

from bastion.core.db import Database
from bastion.moderation.events import ContentStatus
from bastion.moderation.models import ContentItem, MediaPreview
from bastion.review.models import Case, CaseState

#: Statuses whose previews expire: the content is up, and no decision against it is pending.
_LIVE = (ContentStatus.PUBLISHED.value, ContentStatus.RESTRICTED.value)


def prune_previews(db: Database, now: dt.datetime, days: int) -> int:
    """Delete the previews of live content older than ``days`` with no undecided case; returns how many."""
    cutoff = now - dt.timedelta(days=days)
    with db.write() as session:
        pending = select(Case.content_id).where(Case.state != CaseState.DECIDED.value)
        live = select(ContentItem.content_id).where(ContentItem.status.in_(_LIVE))
        done = session.execute(
            delete(MediaPreview).where(MediaPreview.created_at < cutoff, MediaPreview.content_id.in_(live),
                                       MediaPreview.content_id.not_in(pending))
            .execution_options(synchronize_session=False))
        assert isinstance(done, CursorResult)
        return int(done.rowcount)
