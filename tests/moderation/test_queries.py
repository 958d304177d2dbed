"""Moderation's read functions read a fixed number of statements however many rows they return (no N+1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from bastion.core.clock import SystemClock
from bastion.core.db import Database
from bastion.core.events import record
from bastion.matching.matcher import Matcher
from bastion.moderation import queries
from bastion.moderation.events import Decided, EventKind, MatchRecord, Reinstated, VerdictGiven
from bastion.moderation.kernel import Moderation, content_subject
from bastion.moderation.models import ContentItem, ModerationEvent
from bastion.moderation.policy import DEFAULT_POLICY_PATH, PolicyFile
from bastion.review.models import Case, CaseReason, CaseState

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _decided(db: Database, first: int, n: int, *, reinstate_every: int = 0) -> None:
    """``n`` uploads that matched bank entry ``first + i``, each decided a violation by a person (every
    ``reinstate_every``-th reinstated since)."""
    with db.write() as session:
        for i in range(first, first + n):
            cid = f"c-{i}"
            session.add(ContentItem(content_id=cid, account_id="a", uploader_age=30.0, account_country="DE",
                                    content_type="image", text="", url="", signals=[], verdict="review",
                                    status="removed", category="terrorist_content", created_at=NOW,
                                    updated_at=NOW))
            case = Case(content_id=cid, queue="terrorism", category="terrorist_content",
                        reason=CaseReason.UPLOAD.value, severity=1, state=CaseState.DECIDED.value, opened_at=NOW,
                        due_at=NOW, rank_at=NOW)
            session.add(case)
            session.flush()
            subject = content_subject(cid)
            record(session, ModerationEvent, subject=subject, kind=EventKind.VERDICT, actor="policy:x", at=NOW,
                   data=VerdictGiven(verdict="review", matches=[MatchRecord(
                       bank="TERROR", entry_id=i, signal_type="pdq", distance=3)]))
            record(session, ModerationEvent, subject=subject, kind=EventKind.DECISION, actor="mo", at=NOW,
                   data=Decided(case_id=case.id, violation=True, actions=["remove"], category="terrorist_content"))
            if reinstate_every and i % reinstate_every == 0:
                record(session, ModerationEvent, subject=subject, kind=EventKind.REINSTATED, actor="mo", at=NOW,
                       data=Reinstated(appeal_id=1))


def test_decisions_on_matches_reads_a_fixed_number_of_statements(db: Database) -> None:
    counts = []
    for first, n in ((0, 1), (1, 30)):
        _decided(db, first, n)
        with _statements(db) as seen, db.read() as session:
            found, cursor = queries.decisions_on_matches(session, 0)
        assert [d.entry_ids for d in found] == [(i,) for i in range(first + n)]
        assert cursor > 0
        counts.append(len(seen))
    assert counts[0] == counts[1], counts  # one read per decision before


def test_decisions_linked_reads_a_fixed_number_of_statements(db: Database) -> None:
    mod = Moderation(db, Matcher(db), PolicyFile(DEFAULT_POLICY_PATH), SystemClock())
    counts = []
    for first, n in ((0, 2), (2, 30)):
        _decided(db, first, n, reinstate_every=4)
        with _statements(db) as seen, db.read() as session:
            found = queries.decisions_linked(mod, session, banks=["TERROR"], keywords=[],
                                             category="terrorist_content")
        # a reinstated decision no longer stands
        assert sorted(d.content_id for d in found) == sorted(f"c-{i}" for i in range(first + n) if i % 4)
        counts.append(len(seen))
    assert counts[0] == counts[1], counts  # one read per content before
