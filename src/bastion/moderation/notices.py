"""Notices and reach: a report by a user or trusted flagger (DSA Art. 16, 22), or a view threshold crossed, sends
content (back) to a reviewer."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bastion.core.auth.services import Principal
from bastion.moderation.events import ContentStatus, EventKind, NoticeReceived, ViewsCrossed
from bastion.moderation.kernel import Moderation, content_subject, get_item, log, open_case
from bastion.moderation.models import ModerationEvent
from bastion.moderation.policy import Category, views_crossed
from bastion.review.models import CaseReason


def record_notice(mod: Moderation, content_id: str, *, category: Category, explanation: str, trusted_flagger: bool,
                  notifier: str, actor: Principal, external_id: str | None = None) -> int | None:
    """A report opens a case (or raises the open one); trusted flaggers' reports rank higher (DSA Art. 22).

    ``external_id`` makes it idempotent: a notice recorded under it before is not recorded again (``None``).
    """
    try:
        with mod.db.write() as session:
            item = get_item(session, content_id)
            if external_id is not None and session.scalar(select(ModerationEvent.id).where(
                    ModerationEvent.external_id == external_id)) is not None:
                return None
            log(mod, session, content_subject(content_id), EventKind.NOTICE, actor.actor, NoticeReceived(
                category=category.value, explanation=explanation[:2000], trusted_flagger=trusted_flagger,
                notifier=notifier), external_id=external_id)
            return open_case(mod, session, item, category=category, reason=CaseReason.NOTICE,
                             severity=4 if trusted_flagger else 2).id
    except IntegrityError:
        if external_id is None:
            raise
        return None  # recorded at the same moment by another worker


def record_metrics(mod: Moderation, content_id: str, *, views: int, shares: int, actor: Principal) -> list[int]:
    """Update reach; each view threshold of the policy crossed sends live content back for review, once."""
    with mod.db.write() as session:
        item = get_item(session, content_id)
        before = item.views
        item.views, item.shares = max(item.views, views), max(item.shares, shares)
        crossed = views_crossed(mod.policy, before, item.views)
        live = item.status in (ContentStatus.PUBLISHED.value, ContentStatus.RESTRICTED.value)
        for threshold in crossed if live else []:
            log(mod, session, content_subject(content_id), EventKind.VIEWS_THRESHOLD, actor.actor,
                ViewsCrossed(threshold=threshold, views=item.views, shares=item.shares),
                external_id=f"views:{content_id}:{threshold}")
            category = Category(item.category) if item.category else Category.BORDERLINE
            open_case(mod, session, item, category=category, reason=CaseReason.VIEWS, severity=3)
        return crossed if live else []
