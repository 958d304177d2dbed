"""Appeals (DSA Art. 20): the uploader contests a decision; another moderator decides, and a reversal reinstates."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.auth.services import Principal
from bastion.moderation.events import (
    AppealDecided,
    AppealFiled,
    Change,
    ContentStatus,
    EventKind,
    PlatformMessage,
    Reinstated,
    next_status,
)
from bastion.moderation.interfaces import StatementNotFound
from bastion.moderation.kernel import Moderation, content_subject, get_item, log, notify, open_case
from bastion.moderation.models import Appeal, ContentItem, StatementOfReasons
from bastion.moderation.policy import Category
from bastion.review.models import Case, CaseReason


def file_appeal(mod: Moderation, statement_puid: str, text: str, *, actor: Principal) -> Appeal:
    """The uploader contests a decision; the case goes to a moderator other than the one who decided."""
    with mod.db.write() as session:
        statement = session.get(StatementOfReasons, statement_puid)
        if statement is None:
            raise StatementNotFound(f"no statement of reasons {statement_puid!r}")
        item = get_item(session, statement.content_id)
        case = open_case(mod, session, item, category=Category(item.category or Category.BORDERLINE.value),
                         reason=CaseReason.APPEAL, severity=3,
                         queue=None if item.category else mod.policy.default_queue,
                         excluded_reviewer=statement.decided_by)
        appeal = Appeal(content_id=item.content_id, statement_puid=statement_puid, account_id=statement.account_id,
                        text=text[:5000], state="open", case_id=case.id, filed_at=mod.clock.now())
        session.add(appeal)
        session.flush()
        log(mod, session, content_subject(item.content_id), EventKind.APPEAL_FILED, actor.actor,
            AppealFiled(appeal_id=appeal.id, case_id=case.id, statement_puid=statement_puid))
        return appeal


def decide_appeal(mod: Moderation, session: Session, item: ContentItem, case: Case, *, upheld: bool,
                  reviewer: Principal) -> dict[str, object]:
    """The appeal case's decision (``decisions.decide``): upheld keeps the decision, reversed reinstates."""
    appeal = session.scalar(select(Appeal).where(Appeal.case_id == case.id))
    assert appeal is not None
    appeal.state = "upheld" if upheld else "reversed"
    appeal.decided_at = mod.clock.now()
    log(mod, session, content_subject(item.content_id), EventKind.APPEAL_DECIDED, reviewer.actor,
        AppealDecided(appeal_id=appeal.id, outcome=appeal.state))
    if not upheld:
        item.status = next_status(ContentStatus(item.status), Change.REINSTATE).value
        item.restrictions = []
        log(mod, session, content_subject(item.content_id), EventKind.REINSTATED, reviewer.actor,
            Reinstated(appeal_id=appeal.id))
        notify(mod, session, item, PlatformMessage.REINSTATED, appeal.statement_puid)
    return {"case_id": case.id, "content_id": item.content_id, "status": item.status, "appeal": appeal.state}
