from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest

from bastion.core.clock import FrozenClock, SystemClock
from bastion.core.db import Database
from bastion.review import services as review
from bastion.review.interfaces import NotYourClaim
from bastion.review.models import CaseReason

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _open(db: Database, clock: FrozenClock | SystemClock, n: int, **kw: object) -> list[int]:
    ids = []
    with db.write() as session:
        for i in range(n):
            args: dict[str, object] = {"content_id": f"c{i}", "queue": "general", "category": "hate_speech",
                                       "reason": CaseReason.UPLOAD, "severity": 2, "reach": 0, "sla_minutes": 60,
                                       "clock": clock, **kw}
            ids.append(review.open_or_raise(session, **args).id)  # type: ignore[arg-type]
    return ids


def test_priority_claims_leases_and_single_decision(db: Database) -> None:
    clock = FrozenClock(T0)
    with db.write() as session:
        low = review.open_or_raise(session, content_id="low", queue="q", category="c", reason=CaseReason.UPLOAD,
                                   severity=1, reach=10, sla_minutes=60, clock=clock).id
        far = review.open_or_raise(session, content_id="far", queue="q", category="c", reason=CaseReason.UPLOAD,
                                   severity=3, reach=1_000_000, sla_minutes=60, clock=clock).id
        urgent = review.open_or_raise(session, content_id="urgent", queue="q", category="c",
                                      reason=CaseReason.UPLOAD, severity=5, reach=0, sla_minutes=60, clock=clock).id
    first = review.claim_next(db, queues=["q"], reviewer="ann", clock=clock, lease_seconds=60)
    assert first is not None and first.id == urgent
    assert review.claim_next(db, queues=["q"], reviewer="ann", clock=clock).id == urgent  # type: ignore[union-attr]
    second = review.claim_next(db, queues=["q"], reviewer="bob", clock=clock)
    assert second is not None and second.id == far
    clock.advance(seconds=61)  # ann's lease ran out: the case goes to whoever asks next
    taken = review.claim_next(db, queues=["q"], reviewer="cat", clock=clock)
    assert taken is not None and taken.id == urgent
    with pytest.raises(NotYourClaim), db.write() as session:
        review.finish(session, urgent, reviewer="ann", clock=clock)
    with db.write() as session:
        review.finish(session, urgent, reviewer="cat", clock=clock)
    with pytest.raises(NotYourClaim, match="decided already"), db.write() as session:
        review.finish(session, urgent, reviewer="cat", clock=clock)
    assert low


def test_raise_instead_of_duplicate_and_excluded_reviewer(db: Database) -> None:
    clock = FrozenClock(T0)
    with db.write() as session:
        a = review.open_or_raise(session, content_id="x", queue="q", category="c", reason=CaseReason.NOTICE,
                                 severity=2, reach=5, sla_minutes=60, clock=clock)
        b = review.open_or_raise(session, content_id="x", queue="q", category="c", reason=CaseReason.NOTICE,
                                 severity=4, reach=50, sla_minutes=60, clock=clock)
        assert (a.id, b.severity, b.reach) == (b.id, 4, 50)
        review.open_or_raise(session, content_id="y", queue="q", category="c", reason=CaseReason.APPEAL,
                             severity=3, reach=0, sla_minutes=60, clock=clock, excluded_reviewer="ann")
    got = review.claim_next(db, queues=["q"], reviewer="ann", clock=clock)
    assert got is not None and got.content_id == "x"
    assert review.claim_next(db, queues=["q"], reviewer="ann", clock=clock).content_id == "x"  # type: ignore[union-attr]
    other = review.claim_next(db, queues=["q"], reviewer="bob", clock=clock)
    assert other is not None and other.content_id == "y"


def test_queue_overview(db: Database) -> None:
    clock = FrozenClock(T0)
    _open(db, clock, 3)
    clock.advance(minutes=5)
    review.claim_next(db, queues=["general"], reviewer="ann", clock=clock)
    with db.read() as session:
        (general, empty) = review.queue_overview(session, ["general", "terrorism"])
    assert (general.open, general.claimed, general.oldest_opened_at) == (2, 1, T0)
    assert general.next_due_at == T0 + dt.timedelta(minutes=60)
    assert (empty.queue, empty.open, empty.oldest_opened_at) == ("terrorism", 0, None)


def test_sixteen_moderators_decide_each_case_exactly_once(db: Database) -> None:
    """On PostgreSQL this exercises FOR UPDATE SKIP LOCKED; on SQLite, serialised writers."""
    clock = SystemClock()
    ids = _open(db, clock, 1000)
    decided: Counter[int] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def moderator(name: str) -> None:
        try:
            while (case := review.claim_next(db, queues=["general"], reviewer=name, clock=clock)) is not None:
                with db.write() as session:
                    review.finish(session, case.id, reviewer=name, clock=clock)
                with lock:
                    decided[case.id] += 1
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=moderator, args=(f"m{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(decided) == sorted(ids)
    assert set(decided.values()) == {1}


def test_rank_brings_the_deadline_forward_by_severity_and_reach() -> None:
    due = T0 + dt.timedelta(minutes=60)
    assert review.rank_at(due, T0, 1, 0) == due
    assert review.rank_at(due, T0, 3, 0) == due - dt.timedelta(minutes=30)
    assert review.rank_at(due, T0, 5, review.FULL_REACH) == due - dt.timedelta(minutes=75)
    forward = due - review.rank_at(due, T0, 1, 1000)  # half the reach bonus: reach counts logarithmically
    assert abs(forward.total_seconds() - 7.5 * 60) < 1


def _open_one(db: Database, clock: FrozenClock, content_id: str, severity: int, reach: int = 0) -> int:
    with db.write() as session:
        return review.open_or_raise(session, content_id=content_id, queue="general", category="hate_speech",
                                    reason=CaseReason.UPLOAD, severity=severity, reach=reach, sla_minutes=60,
                                    clock=clock).id


def test_waiting_time_lets_a_milder_case_overtake_a_fresh_severe_one(db: Database) -> None:
    clock = FrozenClock(T0)
    mild = _open_one(db, clock, "mild", severity=2)  # ranks at T0 + 45 min
    clock.advance(minutes=20)
    severe = _open_one(db, clock, "severe", severity=3)  # ranks at T0 + 20 + 30 = T0 + 50 min
    first = review.claim_next(db, queues=["general"], reviewer="a", clock=clock)
    assert first is not None and first.id == mild  # it waited long enough to go first
    second = review.claim_next(db, queues=["general"], reviewer="b", clock=clock)
    assert second is not None and second.id == severe


def test_a_fresh_severe_case_goes_before_a_mild_one_until_reach_brings_that_forward(db: Database) -> None:
    clock = FrozenClock(T0)
    mild = _open_one(db, clock, "mild", severity=2)  # T0 + 45
    clock.advance(minutes=10)
    severe = _open_one(db, clock, "severe", severity=3)  # T0 + 40: severity outweighs 10 minutes of waiting
    peek = review.claim_next(db, queues=["general"], reviewer="a", clock=clock)
    assert peek is not None and peek.id == severe
    review.release(db, severe, reviewer="a", clock=clock)
    assert _open_one(db, clock, "mild", severity=2, reach=review.FULL_REACH) == mild  # viral: T0 + 30
    nxt = review.claim_next(db, queues=["general"], reviewer="b", clock=clock)
    assert nxt is not None and nxt.id == mild
