"""The eligibility view: what the gate knows of every content item, in memory, kept current from the event logs.

Start-up streams every content item's feed facts (``moderation/queries.py: all_feed_facts``). After that, each
process follows the moderation event log by id (as the matcher follows the bank change log): every refresh reads the
events after its high-water mark and re-reads the facts of the content they are about, so a decision taken in any
process is honoured by the next feed request here within a refresh interval (100 ms by default). Crises and the
registered reason sources (fact-checks, designated entities) are followed the same way.

On PostgreSQL an event id can become visible after a higher one (ids are taken at insert, seen at commit): ids the
follower skipped are kept as gaps and asked for again on every refresh for ``GAP_SECONDS``, so a slow transaction's
event is not lost; a gap older than that was a rolled-back transaction.

Each entry holds its reasons precomputed, so judging a candidate is a dictionary lookup and two flag tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.core.db import Database
from bastion.feed.crisis import ActiveCrisis, active_crises
from bastion.feed.interfaces import Reason, ReasonSource
from bastion.feed.models import CrisisEvent
from bastion.moderation import queries as moderated
from bastion.moderation.events import ContentStatus
from bastion.moderation.policy import Action, Category

#: Every reason the gate defines: what a reason source may give (checked on each change it reports).
REASONS = frozenset(Reason)

#: How long an event id the follower skipped is asked for again (a transaction still open when it passed by).
GAP_SECONDS = 10.0
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Entry:
    """One content item as the gate judges it: reasons that hold for every viewer, and those that depend on the
    viewer (age-restricted, territories) or on the crises in force (a livestream's country)."""

    reasons: tuple[Reason, ...]
    age_restricted: bool
    #: The uploader's country when the content is a livestream; ``None`` otherwise.
    live_country: str | None
    #: Where the content is disabled (an order's or a moderator's territorial restriction); empty: nowhere.
    territories: frozenset[str] = frozenset()


_STATUS_REASONS = {
    ContentStatus.REMOVED.value: Reason.REMOVED,
    ContentStatus.BLOCKED.value: Reason.REMOVED,
    ContentStatus.HELD.value: Reason.HELD_FOR_REVIEW,
}


def entry_for(facts: moderated.FeedFacts, extra: Iterable[Reason] = ()) -> Entry:
    """The entry of a content item's facts and the reasons sources hold about it. Pure: tested as a table."""
    reasons: list[Reason] = []
    status_reason = _STATUS_REASONS.get(facts.status)
    if status_reason is not None:
        reasons.append(status_reason)
    elif facts.status not in (ContentStatus.PUBLISHED.value, ContentStatus.RESTRICTED.value):
        reasons.append(Reason.HELD_FOR_REVIEW)  # a status the gate does not know: fail closed
    if Action.NOT_RECOMMENDED.value in facts.restrictions:
        reasons.append(Reason.NOT_RECOMMENDED)
    if facts.category == Category.BORDERLINE.value:
        reasons.append(Reason.BORDERLINE)
    if Action.DISABLE_IN_TERRITORIES.value in facts.restrictions and not facts.territories:
        reasons.append(Reason.DISABLED_IN_TERRITORY)  # disabled, but where is not recorded: everywhere (fail closed)
    for reason in extra:
        if reason not in reasons:
            reasons.append(reason)
    return Entry(tuple(reasons), Action.AGE_RESTRICT.value in facts.restrictions,
                 facts.account_country.upper() if facts.live else None, frozenset(facts.territories))


@dataclass
class ViewFreshness:
    applied_event_id: int = 0
    last_refresh: float = 0.0
    loaded: bool = False
    entries: int = 0
    errors: list[str] = field(default_factory=list)


class EligibilityView:
    """Thread-safe for readers: the gate reads ``entries`` and ``live_excluded`` while a refresher thread replaces
    entries one at a time (a dict item assignment is atomic)."""

    def __init__(self, db: Database, sources: Sequence[ReasonSource] = ()) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"feed reason sources must have unique names, got {names}")
        self._db = db
        self._sources = list(sources)
        self._cursors: dict[str, int] = {}
        self._extra: dict[str, dict[str, frozenset[Reason]]] = {s.name: {} for s in sources}
        self._gaps: dict[int, float] = {}
        self._crisis_event_id = -1
        self._lock = threading.Lock()  # one refresher at a time (a test may call refresh beside the worker)
        self.entries: dict[str, Entry] = {}
        self.crises: tuple[ActiveCrisis, ...] = ()
        #: Countries whose livestreams an active crisis keeps out of feeds.
        self.live_excluded: frozenset[str] = frozenset()
        self.freshness = ViewFreshness()
        self._listeners: list[Callable[[tuple[ActiveCrisis, ...]], None]] = []

    # --- loading and following ---------------------------------------------------------------------------------

    def load(self) -> int:
        """Build the view from the database; returns the number of content items loaded."""
        with self._lock, self._db.read() as session:
            # The log position first: what commits after it is replayed by refresh (re-reading facts is harmless).
            start = moderated.last_event_id(session)
            for source in self._sources:
                self._apply_source(session, source)
            entries: dict[str, Entry] = {}
            for facts in moderated.all_feed_facts(session):
                entries[facts.content_id] = entry_for(facts, self._reasons_from_sources(facts.content_id))
            self.entries = entries
            self.freshness.applied_event_id = start
            self._follow_crises(session)
        self.freshness.loaded = True
        self.refresh()
        return len(self.entries)

    def refresh(self) -> int:
        """Apply what changed since the last refresh; returns how many content items were re-read."""
        with self._lock, self._db.read() as session:
            changed: set[str] = set()
            now = time.monotonic()
            for event_id, subject in moderated.content_events_among(session, list(self._gaps)):
                self._gaps.pop(event_id, None)
                changed.add(subject)
            self._gaps = {i: t for i, t in self._gaps.items() if now - t < GAP_SECONDS}
            while True:
                events = moderated.content_events_after(session, self.freshness.applied_event_id, _BATCH)
                if not events:
                    break
                expected = self.freshness.applied_event_id + 1
                for event_id, subject in events:
                    for missing in range(expected, event_id):
                        self._gaps.setdefault(missing, now)
                    expected = event_id + 1
                    changed.add(subject)
                self.freshness.applied_event_id = events[-1][0]
                if len(events) < _BATCH:
                    break
            for source in self._sources:
                changed.update(f"content:{c}" for c in self._apply_source(session, source))
            ids = [s.removeprefix("content:") for s in changed if s.startswith("content:")]
            for facts in moderated.feed_facts(session, ids):
                self.entries[facts.content_id] = entry_for(facts, self._reasons_from_sources(facts.content_id))
            self._follow_crises(session)
        self.freshness.last_refresh = time.time()
        self.freshness.entries = len(self.entries)
        return len(ids)

    def _apply_source(self, session: Session, source: ReasonSource) -> set[str]:
        found = source.changes(session, self._cursors.get(source.name, 0))
        held = self._extra[source.name]
        for content_id, reasons in found.reasons.items():
            unknown = set(reasons) - REASONS
            if unknown:
                raise ValueError(f"reason source {source.name} gave reasons the feed does not define: {unknown}")
            if reasons:
                held[content_id] = frozenset(reasons)
            else:
                held.pop(content_id, None)
        self._cursors[source.name] = found.cursor
        return set(found.reasons)

    def _reasons_from_sources(self, content_id: str) -> list[Reason]:
        found: list[Reason] = []
        for held in self._extra.values():
            found += sorted(held.get(content_id, ()))
        return found

    def _follow_crises(self, session: Session) -> None:
        latest = session.scalar(select(func.max(CrisisEvent.id))) or 0
        if latest == self._crisis_event_id:
            return
        crises = tuple(active_crises(session))
        self.crises = crises
        self.live_excluded = frozenset(c for crisis in crises if crisis.exclude_live for c in crisis.countries)
        self._crisis_event_id = latest
        for listener in self._listeners:
            listener(crises)

    def on_crises(self, listener: Callable[[tuple[ActiveCrisis, ...]], None]) -> None:
        """Call ``listener`` with the active crises whenever they change (the intake adjuster's cache)."""
        self._listeners.append(listener)

    def lag(self) -> int:
        """How many moderation events this view has not applied yet (for /status)."""
        with self._db.read() as session:
            return max(0, moderated.last_event_id(session) - self.freshness.applied_event_id)
