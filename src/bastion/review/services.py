"""Queues of cases: open, claim, release, finish.

A claim is a lease: it expires, so a moderator who walks away does not lock a case forever. Finishing a case is a
guarded update (only the holder of a live claim, only once), so no case is decided twice, even when a lease ran out
and someone else took it. On PostgreSQL the next case is picked with ``FOR UPDATE SKIP LOCKED``: any number of
moderators and API processes share one queue without waiting on each other.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.review.interfaces import CaseNotFound, NotYourClaim
from bastion.review.models import Case, CaseReason, CaseState

DEFAULT_LEASE_SECONDS = 15 * 60


def open_or_raise(
    session: Session,
    *,
    content_id: str,
    queue: str,
    category: str,
    reason: CaseReason,
    severity: int,
    reach: int,
    sla_minutes: int,
    clock: Clock,
    excluded_reviewer: str | None = None,
    takes_over: bool = False,
) -> Case:
    """Open a case, or raise the open one of the same content and reason (more severity, more reach).

    ``takes_over`` (a restricted queue: suspected child sexual abuse material) moves every undecided case of the
    content into ``queue``, claims dropped, so no other queue keeps a case about it.
    """
    now = clock.now()
    if takes_over:
        for other in session.scalars(select(Case).where(
                Case.content_id == content_id, Case.state != CaseState.DECIDED.value, Case.queue != queue)):
            _move(other, queue, category, now + dt.timedelta(minutes=sla_minutes))
    existing = session.scalar(
        select(Case).where(Case.content_id == content_id, Case.reason == reason.value,
                           Case.state != CaseState.DECIDED.value)
    )
    if existing is not None:
        existing.severity = max(existing.severity, severity)
        existing.reach = max(existing.reach, reach)
        existing.rank_at = rank_at(existing.due_at, existing.opened_at, existing.severity, existing.reach)
        return existing
    due = now + dt.timedelta(minutes=sla_minutes)
    case = Case(content_id=content_id, queue=queue, category=category, reason=reason.value, severity=severity,
                reach=reach, state=CaseState.OPEN.value, opened_at=now, due_at=due,
                rank_at=rank_at(due, now, severity, reach), excluded_reviewer=excluded_reviewer)
    session.add(case)
    session.flush()
    return case


def move(session: Session, case_id: int, *, queue: str, category: str, sla_minutes: int, clock: Clock) -> Case:
    """Send an undecided case to another queue and category (claims dropped; its deadline never later)."""
    case = get_case(session, case_id)
    _move(case, queue, category, clock.now() + dt.timedelta(minutes=sla_minutes))
    return case


def _move(case: Case, queue: str, category: str, due_at: dt.datetime) -> None:
    case.queue, case.category = queue, category
    case.state, case.claimed_by, case.claim_expires_at = CaseState.OPEN.value, None, None
    case.due_at = min(case.due_at, due_at)
    case.rank_at = rank_at(case.due_at, case.opened_at, case.severity, case.reach)


#: Views at which reach has brought a case forward as far as it can (a quarter of its SLA).
FULL_REACH = 1_000_000


def rank_at(due_at: dt.datetime, opened_at: dt.datetime, severity: int, reach: int) -> dt.datetime:
    """When a case falls due for ordering: its SLA deadline brought forward by severity and reach.

    Each severity step above 1 brings it forward by a quarter of its SLA, reach by up to another quarter
    (logarithmic in views), so waiting time still counts: a mild case that has waited long enough overtakes a
    fresh severe one, and no case starves.
    """
    sla = due_at - opened_at
    reach_share = min(1.0, math.log10(1 + max(0, reach)) / math.log10(1 + FULL_REACH))
    return due_at - sla * ((max(1, severity) - 1) / 4 + reach_share / 4)


def _claimable(now: dt.datetime, reviewer: str) -> ColumnElement[bool]:
    return and_(
        or_(Case.state == CaseState.OPEN.value,
            and_(Case.state == CaseState.CLAIMED.value, Case.claim_expires_at < now)),
        or_(Case.excluded_reviewer.is_(None), Case.excluded_reviewer != reviewer),
    )


def claim_next(db: Database, *, queues: Sequence[str], reviewer: str, clock: Clock,
               lease_seconds: int = DEFAULT_LEASE_SECONDS, escalations: bool = False,
               passing: Sequence[int] = ()) -> Case | None:
    """The reviewer's live claim if they hold one, else the most urgent claimable case of ``queues``.

    Escalated cases go only to reviewers who take ``escalations`` (senior moderators), and to them first.
    ``passing``: cases this reviewer skipped, left to others (a skip that handed back the same case is no skip).
    """
    now = clock.now()
    with db.write() as session:
        held = session.scalar(
            select(Case).where(Case.claimed_by == reviewer, Case.state == CaseState.CLAIMED.value,
                               Case.claim_expires_at > now, Case.queue.in_(queues)).limit(1)
        )
        if held is not None:
            return held
        order = (Case.rank_at, Case.id)
        query = select(Case).where(Case.queue.in_(queues), _claimable(now, reviewer))
        if passing:
            query = query.where(Case.id.not_in(list(passing)))
        query = query.order_by(Case.escalated.desc(), *order) if escalations \
            else query.where(Case.escalated.is_(False)).order_by(*order)
        case = session.scalar(query.limit(1).with_for_update(skip_locked=True))
        if case is None:
            return None
        case.state = CaseState.CLAIMED.value
        case.claimed_by = reviewer
        case.claim_expires_at = now + dt.timedelta(seconds=lease_seconds)
        return case


def release(db: Database, case_id: int, *, reviewer: str, clock: Clock) -> None:
    with db.write() as session:
        done = _rowcount(session.execute(
            update(Case)
            .where(Case.id == case_id, Case.claimed_by == reviewer, Case.state == CaseState.CLAIMED.value)
            .values(state=CaseState.OPEN.value, claimed_by=None, claim_expires_at=None)
        ))
        if not done:
            raise _why_not(session, case_id)


def escalate(session: Session, case_id: int, *, reviewer: str, note: str, clock: Clock) -> Case:
    """Hand a claimed case up, inside the caller's transaction: it goes back to the queue for senior reviewers."""
    now = clock.now()
    done = _rowcount(session.execute(
        update(Case)
        .where(Case.id == case_id, Case.claimed_by == reviewer, Case.state == CaseState.CLAIMED.value,
               Case.claim_expires_at > now)
        .values(state=CaseState.OPEN.value, claimed_by=None, claim_expires_at=None, escalated=True,
                escalation_note=note[:2000])
        .execution_options(synchronize_session=False)
    ))
    if not done:
        raise _why_not(session, case_id)
    case = session.get(Case, case_id, populate_existing=True)
    assert case is not None
    return case


def finish(session: Session, case_id: int, *, reviewer: str, clock: Clock) -> Case:
    """Mark a case decided inside the caller's transaction; only the holder of a live claim can, and only once."""
    now = clock.now()
    done = _rowcount(session.execute(
        update(Case)
        .where(Case.id == case_id, Case.claimed_by == reviewer, Case.state == CaseState.CLAIMED.value,
               Case.claim_expires_at > now)
        .values(state=CaseState.DECIDED.value, decided_by=reviewer, decided_at=now, claim_expires_at=None)
        .execution_options(synchronize_session=False)
    ))
    if not done:
        raise _why_not(session, case_id)
    case = session.get(Case, case_id, populate_existing=True)
    assert case is not None
    return case


def close_moot(session: Session, content_id: str, *, by: str, queues: Sequence[str], clock: Clock,
               keep: int | None = None) -> list[int]:
    """Close the undecided cases of ``queues`` about content another path has already taken down (an order, another
    case), inside the caller's transaction; ``by`` is recorded as who decided. Appeals stay open: they contest the
    removal itself. Returns the closed cases' ids."""
    now = clock.now()
    query = select(Case.id).where(Case.content_id == content_id, Case.state != CaseState.DECIDED.value,
                                  Case.reason != CaseReason.APPEAL.value, Case.queue.in_(queues))
    if keep is not None:
        query = query.where(Case.id != keep)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(Case).where(Case.id.in_(ids), Case.state != CaseState.DECIDED.value)
                        .values(state=CaseState.DECIDED.value, decided_by=by, decided_at=now, claimed_by=None,
                                claim_expires_at=None)
                        .execution_options(synchronize_session=False))
    return ids


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _why_not(session: Session, case_id: int) -> Exception:
    case = session.get(Case, case_id)
    if case is None:
        return CaseNotFound(f"no case {case_id}")
    if case.state == CaseState.DECIDED.value:
        return NotYourClaim(f"case {case_id} was decided already by {case.decided_by}")
    return NotYourClaim(f"case {case_id} is not claimed by you (claim it first; claims expire)")


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise CaseNotFound(f"no case {case_id}")
    return case


@dataclass
class QueueStatus:
    queue: str
    open: int = 0
    claimed: int = 0
    escalated: int = 0
    oldest_opened_at: dt.datetime | None = None
    next_due_at: dt.datetime | None = None


def queue_overview(session: Session, queues: Sequence[str]) -> list[QueueStatus]:
    """Counts and ages of undecided cases per queue; every named queue is listed, even when empty."""
    by_queue = {q: QueueStatus(q) for q in queues}
    rows = session.execute(
        select(Case.queue, Case.state, Case.escalated, func.count(), func.min(Case.opened_at), func.min(Case.due_at))
        .where(Case.state != CaseState.DECIDED.value, Case.queue.in_(queues))
        .group_by(Case.queue, Case.state, Case.escalated)
    )
    for queue, state, escalated, n, oldest, due in rows:
        status = by_queue[queue]
        if state == CaseState.OPEN.value:
            status.open += n
        else:
            status.claimed += n
        status.escalated += n if escalated else 0
        status.oldest_opened_at = _earliest(status.oldest_opened_at, _utc(oldest))
        status.next_due_at = _earliest(status.next_due_at, _utc(due))
    return list(by_queue.values())


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aggregates bypass the column type, so SQLite hands back naive datetimes."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


#: Bounds of the deadline chart's buckets, in minutes left: overdue, then under each bound, then the rest.
DEADLINE_BUCKETS = (15, 60, 240)


def deadline_buckets(session: Session, queues: Sequence[str], now: dt.datetime) -> dict[str, list[int]]:
    """Undecided cases per queue by time left: [overdue, <15 min, <1 h, <4 h, later] (the queues page's chart)."""
    counts = {q: [0] * (len(DEADLINE_BUCKETS) + 2) for q in queues}
    rows = session.execute(select(Case.queue, Case.due_at)
                           .where(Case.state != CaseState.DECIDED.value, Case.queue.in_(queues)))
    for queue, due in rows:
        left = (due - now).total_seconds() / 60
        slot = 0 if left < 0 else 1 + sum(left >= bound for bound in DEADLINE_BUCKETS)
        counts[queue][slot] += 1
    return counts
