"""The eligibility view: the entry of each content state (a table), following the log, gaps, reason sources."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest
from sqlalchemy.orm import Session

from bastion.core.db import Database
from bastion.core.events import record
from bastion.feed.gate import FeedGate, Viewer
from bastion.feed.interfaces import Reason, ReasonChanges, ReasonSource
from bastion.feed.view import EligibilityView, Entry, entry_for
from bastion.minors.interfaces import Band
from bastion.moderation.events import EventKind, Submitted
from bastion.moderation.models import ContentItem, ModerationEvent
from bastion.moderation.queries import FeedFacts

R = Reason
NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def _facts(status: str = "published", restrictions: tuple[str, ...] = (), category: str = "",
           live: bool = False, territories: tuple[str, ...] = ()) -> FeedFacts:
    return FeedFacts("c", status, restrictions, category, "video", "fr", live, territories)


@pytest.mark.parametrize(("facts", "entry"), [
    (_facts(), Entry((), False, None)),
    (_facts("removed"), Entry((R.REMOVED,), False, None)),
    (_facts("blocked"), Entry((R.REMOVED,), False, None)),  # blocked at upload counts as removed
    (_facts("held"), Entry((R.HELD_FOR_REVIEW,), False, None)),
    (_facts(""), Entry((R.HELD_FOR_REVIEW,), False, None)),  # a status the gate does not know: fail closed
    (_facts("restricted", ("not_recommended",)), Entry((R.NOT_RECOMMENDED,), False, None)),
    (_facts("restricted", ("demote", "label")), Entry((), False, None)),  # ranked lower or labelled: still eligible
    (_facts("restricted", ("age_restrict",)), Entry((), True, None)),
    (_facts(category="borderline"), Entry((R.BORDERLINE,), False, None)),
    (_facts("restricted", ("age_restrict", "not_recommended"), "borderline"),
     Entry((R.NOT_RECOMMENDED, R.BORDERLINE), True, None)),
    (_facts(live=True), Entry((), False, "FR")),
    # disabled in some territories: judged per viewer; disabled with no territory recorded: everywhere (fail closed)
    (_facts("restricted", ("disable_in_territories",), territories=("AT", "DE")),
     Entry((), False, None, frozenset({"AT", "DE"}))),
    (_facts("restricted", ("disable_in_territories",)), Entry((R.DISABLED_IN_TERRITORY,), False, None)),
])
def test_entry_of_each_state(facts: FeedFacts, entry: Entry) -> None:
    assert entry_for(facts) == entry


def test_reasons_from_sources_join_and_do_not_repeat() -> None:
    assert entry_for(_facts("removed"), [R.FACT_CHECKED_FALSE, R.REMOVED]).reasons == (R.REMOVED,
                                                                                      R.FACT_CHECKED_FALSE)


def _item(session: Session, content_id: str, status: str = "published", event_id: int | None = None) -> None:
    session.add(ContentItem(content_id=content_id, account_id="a", uploader_age=30.0, account_country="DE",
                            content_type="text", verdict="allow", status=status, restrictions=[], category="",
                            created_at=NOW, updated_at=NOW))
    event = record(session, ModerationEvent, subject=f"content:{content_id}", kind=EventKind.SUBMITTED, actor="t",
                   at=NOW, data=Submitted(account_id="a", content_type="text", signals=0))
    if event_id is not None:
        event.id = event_id


def test_the_view_follows_the_log_and_asks_again_for_skipped_ids(db: Database) -> None:
    view = EligibilityView(db)
    with db.write() as session:
        _item(session, "first")
    assert view.load() == 1
    with db.write() as session:  # id 5 committed while ids 2-4 are not yet (as on PostgreSQL)
        _item(session, "late-5", event_id=5)
    view.refresh()
    assert "late-5" in view.entries and view.freshness.applied_event_id == 5
    with db.write() as session:
        _item(session, "late-3", event_id=3)
    view.refresh()
    assert "late-3" in view.entries  # the gap was asked for again
    with db.write() as session:
        session.get(ContentItem, "first").status = "removed"  # type: ignore[union-attr]
        record(session, ModerationEvent, subject="content:first", kind=EventKind.ACTIONS_APPLIED, actor="t", at=NOW,
               data=None)
    view.refresh()
    assert view.entries["first"].reasons == (R.REMOVED,)


class _FactChecks:
    """A reason source as a fact-checking domain would write one: changes since a cursor."""

    name = "fact_checks"

    def __init__(self) -> None:
        self.log: list[tuple[str, frozenset[Reason]]] = []

    def changes(self, session: Session, cursor: int) -> ReasonChanges:
        latest: dict[str, frozenset[Reason]] = {}
        for content_id, reasons in self.log[cursor:]:
            latest[content_id] = reasons
        found: Mapping[str, frozenset[Reason]] = latest
        return ReasonChanges(len(self.log), found)


def test_a_registered_reason_source_feeds_the_gate(db: Database) -> None:
    source = _FactChecks()
    typed: ReasonSource = source  # satisfies the Protocol (mypy checks it here)
    with db.write() as session:
        _item(session, "claim")
    source.log.append(("claim", frozenset({R.FACT_CHECKED_FALSE})))
    view = EligibilityView(db, [typed])
    view.load()
    gate = FeedGate(db, view)
    adult = Viewer("v", Band.ADULT)
    assert gate.filter(adult, ["claim"]).excluded[0].reasons == (R.FACT_CHECKED_FALSE,)
    source.log.append(("claim", frozenset()))  # the rating withdrawn
    view.refresh()
    assert gate.filter(adult, ["claim"]).eligible == ["claim"]
    source.log.append(("claim", frozenset({R.DESIGNATED_ENTITY})))
    view.refresh()
    assert gate.filter(adult, ["claim"]).excluded[0].reasons == (R.DESIGNATED_ENTITY,)


def test_source_names_must_be_unique(db: Database) -> None:
    with pytest.raises(ValueError, match="unique names"):
        EligibilityView(db, [_FactChecks(), _FactChecks()])
