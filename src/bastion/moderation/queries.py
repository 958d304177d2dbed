"""Moderation's read API: what other domains (orders, reporting, the CLI) may know of moderated content.

Other domains call these typed functions instead of reading moderation's tables or its event payloads, so a change
of either stays inside ``moderation/``. Results are frozen dataclasses, detached from the session.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, literal, or_, select
from sqlalchemy.orm import Session

from bastion.classifiers.interfaces import LabelledText
from bastion.core import events as event_log
from bastion.core.auth.roles import CHILD_SAFETY_ROLES
from bastion.core.auth.services import Principal
from bastion.moderation.events import (
    ActionsApplied,
    AppealDecided,
    AppealFiled,
    CaseOpened,
    Decided,
    EventKind,
    NoticeReceived,
    Reinstated,
    Resubmitted,
    ShadowVerdict,
    Submitted,
    Suspended,
    VerdictGiven,
)
from bastion.moderation.kernel import Moderation, content_subject, restricted_among, restricted_content
from bastion.moderation.models import ContentItem, ModerationEvent, StatementOfReasons
from bastion.moderation.policy import Action, Category, Rule, Verdict
from bastion.review.models import Case, CaseReason, CaseState


@dataclass(frozen=True)
class ContentView:
    """An upload as moderation registered it, and where it stands now."""

    content_id: str
    account_id: str
    account_country: str
    content_type: str
    text: str
    url: str
    #: The name the user uploaded the file under, when the platform gave it.
    file_name: str
    #: Its signals as hashed at upload (``signal_type``, ``value``, ``quality``).
    signals: list[dict[str, object]]
    verdict: str
    status: str
    restrictions: list[str]
    category: str
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: ContentItem) -> ContentView:
        return cls(row.content_id, row.account_id, row.account_country, row.content_type, row.text, row.url,
                   row.file_name, [dict(s) for s in row.signals], row.verdict, row.status, list(row.restrictions),
                   row.category, row.created_at)

    def signal(self, signal_type: str) -> str:
        """The value of one of its signals (``md5``, ``sha256``...), or ``""``."""
        return next((str(s.get("value")) for s in self.signals if s.get("signal_type") == signal_type), "")


def content(session: Session, content_id: str) -> ContentView | None:
    row = session.get(ContentItem, content_id)
    return ContentView.from_row(row) if row is not None else None


def content_status(session: Session, content_id: str) -> str:
    """The content's status (``events.ContentStatus``), or ``""`` for content never submitted."""
    return session.scalar(select(ContentItem.status).where(ContentItem.content_id == content_id)) or ""


def find_content(session: Session, *, content_ids: Sequence[str] = (), urls: Sequence[str] = ()
                 ) -> list[ContentView]:
    """Content named by id or by its URL (an order names either), ordered by id."""
    conditions = []
    if content_ids:
        conditions.append(ContentItem.content_id.in_(content_ids))
    if urls:
        conditions.append(ContentItem.url.in_(urls))
    if not conditions:
        return []
    rows = session.scalars(select(ContentItem).where(or_(*conditions)).order_by(ContentItem.content_id))
    return [ContentView.from_row(r) for r in rows]


def content_urls(session: Session, content_ids: Iterable[str]) -> list[str]:
    """The URLs the content was posted at, as the platform gave them (empty ones left out), sorted."""
    return sorted({u for u in session.scalars(select(ContentItem.url).where(
        ContentItem.content_id.in_(list(content_ids)))) if u})


def suspected_csam(session: Session, *, excluding: Sequence[Select[Any]] = ()) -> list[ContentView]:
    """Content classified as child sexual abuse material, oldest first; ``excluding``: content id subqueries of
    content already dealt with (reported, say), left out in the database."""
    query = select(ContentItem).where(ContentItem.category == Category.CSAM.value)
    for ids in excluding:
        query = query.where(ContentItem.content_id.not_in(ids))
    rows = session.scalars(query.order_by(ContentItem.created_at, ContentItem.content_id))
    return [ContentView.from_row(r) for r in rows]


@dataclass(frozen=True)
class Violation:
    """A moderator's decision that found a violation, and still stands."""

    case_id: int
    category: str
    actions: list[str]
    decided_by: str
    at: dt.datetime


def confirmed_violation(session: Session, content_id: str) -> Violation | None:
    """The latest human decision on the content, if it found a violation and nothing reinstated the content since
    (an upheld appeal confirms it)."""
    return confirmed_in(session.scalars(select(ModerationEvent).where(
        ModerationEvent.subject == content_subject(content_id),
        ModerationEvent.kind.in_([EventKind.DECISION.value, EventKind.REINSTATED.value]))
        .order_by(ModerationEvent.id.desc())))


def confirmed_in(newest_first: Iterable[ModerationEvent]) -> Violation | None:
    """``confirmed_violation`` over a content's events already read, newest first."""
    for event in newest_first:
        if event.kind == EventKind.REINSTATED.value:
            return None
        if event.kind != EventKind.DECISION.value:
            continue
        decided = event_log.payload(event, Decided)
        if decided.reason == CaseReason.APPEAL.value:
            continue  # an upheld appeal: the decision it upheld is further back
        if not decided.violation:
            return None
        return Violation(decided.case_id, decided.category, list(decided.actions), event.actor, event.at)
    return None


@dataclass(frozen=True)
class KnownMatch:
    """A restricted bank's entry an upload matched at intake (known child sexual abuse material)."""

    bank: str
    entry_id: int
    signal_type: str
    #: The entry's category (a class such as ``csam-A1`` when the bank gives one).
    category: str
    distance: int


def blocked_by_restricted_match(session: Session, content_id: str) -> list[KnownMatch] | None:
    """The restricted-bank matches that blocked this upload at intake, or ``None`` when it was not blocked by one."""
    event = session.scalar(select(ModerationEvent).where(
        ModerationEvent.subject == content_subject(content_id), ModerationEvent.kind == EventKind.VERDICT.value))
    if event is None:
        return None
    verdict = event_log.payload(event, VerdictGiven)
    if verdict.verdict != Verdict.BLOCK.value:
        return None
    found = [KnownMatch(m.bank, m.entry_id, m.signal_type, m.category, m.distance)
             for m in verdict.matches if m.restricted]
    return found or None


def restricted_matches_of(session: Session, content_ids: Sequence[str]) -> dict[str, list[KnownMatch]]:
    """Each content's restricted-bank matches at intake, blocked or not, in one statement (a list of reports)."""
    if not content_ids:
        return {}
    subjects = {content_subject(c): c for c in content_ids}
    found: dict[str, list[KnownMatch]] = {}
    for event in session.scalars(select(ModerationEvent).where(
            ModerationEvent.subject.in_(list(subjects)), ModerationEvent.kind == EventKind.VERDICT.value)):
        verdict = event_log.payload(event, VerdictGiven)
        found[subjects[event.subject]] = [KnownMatch(m.bank, m.entry_id, m.signal_type, m.category, m.distance)
                                          for m in verdict.matches if m.restricted]
    return found


@dataclass(frozen=True)
class DecidedMatches:
    """A moderator's first decision on a content that matched bank entries at upload (appeals left out: they judge
    the decision, not the match)."""

    event_id: int
    content_id: str
    violation: bool
    entry_ids: tuple[int, ...]


def decisions_on_matches(session: Session, after_id: int, limit: int = 200) -> tuple[list[DecidedMatches], int]:
    """Decisions after event ``after_id`` on contents with bank matches, oldest first, and the last event id read
    (a cursor for the next call, moved past decisions without matches too)."""
    events = session.scalars(select(ModerationEvent).where(ModerationEvent.id > after_id,
                                                           ModerationEvent.kind == EventKind.DECISION.value)
                             .order_by(ModerationEvent.id).limit(limit)).all()
    decisions = [(event, decided) for event in events
                 if (decided := event_log.payload(event, Decided)).reason != CaseReason.APPEAL.value]
    verdicts: dict[str, ModerationEvent] = {}  # read in one query, not one per decision
    subjects = sorted({event.subject for event, _ in decisions})
    for chunk in _chunks(subjects, 500):
        for given in session.scalars(select(ModerationEvent).where(
                ModerationEvent.subject.in_(chunk), ModerationEvent.kind == EventKind.VERDICT.value)
                .order_by(ModerationEvent.id)):
            verdicts.setdefault(given.subject, given)
    found: list[DecidedMatches] = []
    for event, decided in decisions:
        verdict_event = verdicts.get(event.subject)
        if verdict_event is None:
            continue
        entry_ids = tuple(m.entry_id for m in event_log.payload(verdict_event, VerdictGiven).matches)
        if entry_ids:
            found.append(DecidedMatches(event.id, event.subject.removeprefix("content:"), decided.violation,
                                        entry_ids))
    return found, events[-1].id if events else after_id


def history(session: Session, content_id: str) -> list[ModerationEvent]:
    """The content's events, oldest first (for the API's content view: the module that shows them)."""
    return event_log.history(session, ModerationEvent, content_subject(content_id))


def decided_texts(session: Session) -> list[LabelledText]:
    """Each content item's latest moderator decision, with its text: what ``bastion classifier train`` learns from.

    On an appeal case ``violation`` means the first decision stands, so the latest decision is always the label.
    """
    latest = (select(func.max(ModerationEvent.id)).where(ModerationEvent.kind == EventKind.DECISION.value)
              .group_by(ModerationEvent.subject))
    rows = session.execute(
        select(ContentItem.content_id, ContentItem.text, ModerationEvent)
        .join(ModerationEvent, ModerationEvent.subject == literal("content:") + ContentItem.content_id)
        .where(ModerationEvent.id.in_(latest), ContentItem.text != "").order_by(ModerationEvent.id))
    labelled = []
    for content_id, text, event in rows:
        decided = event_log.payload(event, Decided)
        labelled.append(LabelledText(content_id, text, decided.category, decided.violation))
    return labelled


# --- the policy's shadow rules ------------------------------------------------------------------------------------


@dataclass
class ShadowStat:
    """How a shadow rule would have done: how often it held, and how often a moderator agreed with it."""

    rule: str
    would_be: str
    held: int = 0
    #: Of the uploads it held on, how many a moderator has since decided, and how many of those the moderator
    #: decided as the rule would have (a violation for block or review, none for allow).
    reviewed: int = 0
    agreed: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.reviewed if self.reviewed else None


def visible_rules(mod: Moderation, viewer: Principal) -> list[Rule]:
    """The policy's rules a viewer may read: rules about child sexual abuse material, or routed to a restricted
    queue, are for child-safety roles, like the queue itself."""
    policy = mod.policy
    if viewer.role in CHILD_SAFETY_ROLES:
        return list(policy.rules)
    return [r for r in policy.rules if r.category is not Category.CSAM and not policy.queue_for(r).restricted]


def shadow_report(session: Session) -> list[ShadowStat]:
    """Each shadow rule's record, to judge whether to enforce it (the event log is the only source)."""
    stats: dict[str, ShadowStat] = {}
    held_on: dict[str, list[ShadowStat]] = {}
    for event in session.scalars(select(ModerationEvent).where(ModerationEvent.kind == EventKind.SHADOW_VERDICT.value)
                                 .order_by(ModerationEvent.id)):
        shadow = event_log.payload(event, ShadowVerdict)
        stat = stats.setdefault(shadow.rule, ShadowStat(shadow.rule, shadow.would_be))
        stat.held += 1
        held_on.setdefault(event.subject, []).append(stat)
    latest: dict[str, bool] = {}  # the final human word: a decision, unless an appeal reversed it
    for subject_chunk in _chunks(list(held_on), 500):
        for event in session.scalars(select(ModerationEvent).where(
                ModerationEvent.kind.in_([EventKind.DECISION.value, EventKind.REINSTATED.value]),
                ModerationEvent.subject.in_(subject_chunk),
        ).order_by(ModerationEvent.id)):
            if event.kind == EventKind.REINSTATED.value:
                latest[event.subject] = False
                continue
            decided = event_log.payload(event, Decided)
            if decided.reason != CaseReason.APPEAL.value:
                latest[event.subject] = decided.violation
    for subject, violation in latest.items():
        for stat in held_on[subject]:
            stat.reviewed += 1
            stat.agreed += violation == (stat.would_be != Verdict.ALLOW.value)
    return sorted(stats.values(), key=lambda s: s.rule)


@dataclass(frozen=True)
class StatementForSubmission:
    """A statement of reasons as the transparency domain submits it: its body, and who it concerns, so that
    identity can be kept out of what leaves (DSA Art. 24(5): without personal data)."""

    puid: str
    body: dict[str, object]
    #: The account the statement concerns: to be scrubbed from every text of the body before it is sent.
    account_id: str
    created_at: dt.datetime


def statements_for_submission(session: Session, puids: Sequence[str]) -> dict[str, StatementForSubmission]:
    """The statements named, by ``puid`` (unknown ones are absent)."""
    found: dict[str, StatementForSubmission] = {}
    for chunk in _chunks(list(puids), 500):
        rows = session.execute(select(StatementOfReasons.puid, StatementOfReasons.body, StatementOfReasons.account_id,
                                      StatementOfReasons.created_at).where(StatementOfReasons.puid.in_(chunk)))
        for puid, body, account_id, created_at in rows:  # columns, not objects: a batch of 100 at a time, often
            found[puid] = StatementForSubmission(puid, dict(body), account_id, created_at)
    return found


def statement_puids(session: Session, *, after: str = "", limit: int = 1000) -> list[str]:
    """Every statement's ``puid`` in ``puid`` order, a page at a time (``after`` the last one seen): the backfill's
    walk, which stays cheap on millions of rows and sees statements issued while it runs."""
    return list(session.scalars(select(StatementOfReasons.puid).where(StatementOfReasons.puid > after)
                                .order_by(StatementOfReasons.puid).limit(limit)))


def statement_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StatementOfReasons)) or 0


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- transparency: what each moderation event counts as --------------------------------------------------------------


class FactKind(enum.StrEnum):
    """What a moderation event counts as in transparency figures. Values are storage keys (roll-ups keep them)."""

    UPLOAD = "upload"
    ACTION = "action"  # a restriction of the content (removal, disabling, age gate, demotion, label)
    NOTICE = "notice"
    NOTICE_HANDLED = "notice_handled"  # the first decision (or action, or closing) after pending notices
    NOTICE_ACTIONED = "notice_actioned"  # the first action after pending notices
    APPEAL_FILED = "appeal_filed"
    APPEAL_DECIDED = "appeal_decided"
    SUSPENSION = "suspension"
    REVERSAL = "reversal"  # a restriction undone (appeal reversed, order reinstated): the action it undid
    #: a restriction by a person or an order on content the upload policy let through (verdict ``allow``): what the
    #: automated means missed (recall, docs/transparency.md); ``action`` ``reinstated`` when such a one is undone
    MISSED = "automated_missed"


class Source(enum.StrEnum):
    """What brought the content to the action (the issue's detection sources, and ``reach``: a views threshold)."""

    HASH_MATCH = "hash_match"
    CLASSIFIER = "classifier"
    USER_NOTICE = "user_notice"
    TRUSTED_FLAGGER = "trusted_flagger"
    AUTHORITY_ORDER = "authority_order"
    REFERRAL = "referral"
    REACH = "reach"


#: Detected at the provider's own initiative (DSA Art. 15(1)(c)): no notice, no order came first.
OWN_INITIATIVE = frozenset({Source.HASH_MATCH, Source.CLASSIFIER, Source.REACH})


class Path(enum.StrEnum):
    """How the decision was taken: by the policy alone, by a person on an automated detection, by a person."""

    AUTOMATED = "automated"
    PARTLY = "partly_automated"
    HUMAN = "human"


@dataclass(frozen=True)
class ModerationFact:
    """One counted fact, read from one moderation event and the content's earlier events. Empty text: not known or
    not applicable; ``seconds``: the duration the fact measures (upload to action, notice to decision, appeal filed
    to decided), ``None`` where none."""

    event_id: int
    kind: FactKind
    at: dt.datetime
    category: str = ""
    country: str = ""
    territory: str = ""
    content_type: str = ""
    language: str = ""
    source: str = ""
    path: str = ""
    action: str = ""
    proactive: bool = False
    before_view: bool = False
    seconds: float | None = None


#: Content actions, strongest first: the one an action event is counted under.
_CONTENT_ACTIONS = ("remove", "disable_in_territories", "age_restrict", "demote", "not_recommended", "label")
_CONTEXT_KINDS = frozenset({EventKind.SUBMITTED, EventKind.VERDICT, EventKind.NOTICE, EventKind.CASE_OPENED,
                            EventKind.DECISION, EventKind.ACTIONS_APPLIED, EventKind.APPEAL_FILED,
                            EventKind.VIEWS_THRESHOLD, EventKind.CASE_CLOSED})
#: Kinds whose fact needs no earlier event, or that give none (a lift of reach limits is no action and no appeal's
#: reversal: ``actions.lift_reach``).
_NO_CONTEXT_KINDS = frozenset({EventKind.SUBMITTED.value, EventKind.VERDICT.value, EventKind.SHADOW_VERDICT.value,
                               EventKind.RESUBMITTED.value, EventKind.STATEMENT_ISSUED.value,
                               EventKind.CURATED.value, EventKind.RESTRICTIONS_LIFTED.value})


def dsa_ground(category: str) -> tuple[str, str, bool]:
    """A category's DSA statement category, keyword (``""`` when none) and whether it is illegal content (else
    incompatible with the terms): how the transparency report files it."""
    from bastion.moderation.statements import GROUNDS

    try:
        ground = GROUNDS[Category(category)]
    except ValueError:
        return "STATEMENT_CATEGORY_OTHER_VIOLATION_TC", "", False
    return ground.statement_category, ground.keyword or "", ground.illegal_ground is not None


def moderation_facts(session: Session, *, after: int, limit: int, until: dt.datetime | None = None
                     ) -> tuple[list[ModerationFact], int]:
    """The facts of up to ``limit`` moderation events with ids above ``after``, and the last id read (``after`` when
    none): transparency's roll-up worker follows the log with it. Each event is judged with the content's events
    before it (read in one query per 500 subjects), so a fact never changes once the event is written. ``until``:
    stop at the first event written at or after it (the worker leaves recent events to settle: a transaction that
    took a lower id may not have committed yet)."""
    events = list(session.scalars(select(ModerationEvent).where(ModerationEvent.id > after)
                                  .order_by(ModerationEvent.id).limit(limit)))
    if until is not None:
        events = list(itertools.takewhile(lambda e: e.at < until, events))
    if not events:
        return [], after
    last = events[-1].id
    subjects = sorted({e.subject for e in events if e.subject.startswith("content:")})
    # an upload's fact needs no earlier event: most of a busy log is uploads, so only the rest read their history
    judged = sorted({e.subject for e in events if e.subject.startswith("content:")
                     and e.kind not in _NO_CONTEXT_KINDS})
    context: dict[str, list[ModerationEvent]] = {}
    for chunk in _chunks(judged, 500):
        for event in session.scalars(select(ModerationEvent).where(
                ModerationEvent.subject.in_(chunk), ModerationEvent.id <= last,
                ModerationEvent.kind.in_([k.value for k in _CONTEXT_KINDS])).order_by(ModerationEvent.id)):
            context.setdefault(event.subject, []).append(event)
    countries: dict[str, str] = {}
    ids = [s.removeprefix("content:") for s in subjects]
    for chunk in _chunks(ids, 500):
        countries.update((content_id, country) for content_id, country in session.execute(
            select(ContentItem.content_id, ContentItem.account_country).where(ContentItem.content_id.in_(chunk))))
    facts: list[ModerationFact] = []
    for event in events:
        if event.kind in _NO_CONTEXT_KINDS and event.kind != EventKind.SUBMITTED.value:
            continue
        prior = [e for e in context.get(event.subject, []) if e.id < event.id]
        facts.extend(_facts_of(event, prior, countries.get(event.subject.removeprefix("content:"), "")))
    return facts, last


@dataclass(frozen=True)
class _Content:
    """What a content's earlier events say about it."""

    uploaded: dt.datetime | None
    content_type: str
    language: str
    country: str


def _content_of(prior: Sequence[ModerationEvent], country: str) -> _Content:
    for e in prior:
        if e.kind == EventKind.SUBMITTED.value:
            submitted = event_log.payload(e, Submitted)
            return _Content(e.at, submitted.content_type, submitted.language, country)
    return _Content(None, "", "", country)


def _pending_notices(prior: Sequence[ModerationEvent], handled: frozenset[str]) -> list[ModerationEvent]:
    """Notices after the last event of a ``handled`` kind (a decision on an appeal handles no notice)."""
    pending: list[ModerationEvent] = []
    for e in prior:
        if e.kind == EventKind.NOTICE.value:
            pending.append(e)
        elif e.kind in handled and not (e.kind == EventKind.DECISION.value
                                        and event_log.payload(e, Decided).reason == CaseReason.APPEAL.value):
            pending = []
    return pending


def _notice_source(notice: ModerationEvent) -> Source:
    if notice.actor.startswith("referral:"):
        return Source.REFERRAL
    return Source.TRUSTED_FLAGGER if event_log.payload(notice, NoticeReceived).trusted_flagger else Source.USER_NOTICE


def _verdict_source(prior: Sequence[ModerationEvent]) -> Source:
    verdict = next((e for e in prior if e.kind == EventKind.VERDICT.value), None)
    if verdict is not None and event_log.payload(verdict, VerdictGiven).matches:
        return Source.HASH_MATCH
    return Source.CLASSIFIER


def _action_origin(event: ModerationEvent, prior: Sequence[ModerationEvent]) -> tuple[Source, Path, str]:
    """Where an action came from: its detection source, decision path and category (for events written before
    ``ActionsApplied.category``, the latest decision's)."""
    applied = event_log.payload(event, ActionsApplied)
    category = applied.category
    if event.actor.startswith("order:"):
        return Source.AUTHORITY_ORDER, Path.AUTOMATED, category or Category.TERRORIST_CONTENT.value
    if event.actor.startswith("policy:"):
        return _verdict_source(prior), Path.AUTOMATED, category
    opened = next((event_log.payload(e, CaseOpened) for e in reversed(prior) if e.kind == EventKind.CASE_OPENED.value
                   and event_log.payload(e, CaseOpened).reason != CaseReason.APPEAL.value), None)
    notices = [e for e in prior if e.kind == EventKind.NOTICE.value]
    if opened is not None and opened.reason == CaseReason.NOTICE.value and notices:
        source = _notice_source(notices[0])
    elif opened is not None and opened.reason == CaseReason.VIEWS.value:
        source = Source.REACH
    else:
        source = _verdict_source(prior)
    if not category:
        category = next((event_log.payload(e, Decided).category for e in reversed(prior)
                         if e.kind == EventKind.DECISION.value), "")
    return source, Path.PARTLY if source in (Source.HASH_MATCH, Source.CLASSIFIER) else Path.HUMAN, category


def _facts_of(event: ModerationEvent, prior: Sequence[ModerationEvent], country: str) -> list[ModerationFact]:
    kind = event.kind
    if kind == EventKind.SUSPENDED.value:
        return [ModerationFact(event.id, FactKind.SUSPENSION, event.at,
                               action=event_log.payload(event, Suspended).action)]
    if not event.subject.startswith("content:"):
        return []
    content = _content_of(prior, country)
    dims: dict[str, Any] = {"country": content.country, "content_type": content.content_type,
                            "language": content.language}
    if kind == EventKind.SUBMITTED.value:
        submitted = event_log.payload(event, Submitted)
        return [ModerationFact(event.id, FactKind.UPLOAD, event.at, country=country,
                               content_type=submitted.content_type, language=submitted.language)]
    facts: list[ModerationFact] = []
    handled = _pending_notices(prior, frozenset({EventKind.DECISION.value, EventKind.ACTIONS_APPLIED.value,
                                                 EventKind.CASE_CLOSED.value}))
    if kind in (EventKind.DECISION.value, EventKind.CASE_CLOSED.value, EventKind.ACTIONS_APPLIED.value) and handled \
            and not (kind == EventKind.DECISION.value
                     and event_log.payload(event, Decided).reason == CaseReason.APPEAL.value):
        first = handled[0]
        facts.append(ModerationFact(event.id, FactKind.NOTICE_HANDLED, event.at,
                                    category=event_log.payload(first, NoticeReceived).category,
                                    source=_notice_source(first).value,
                                    seconds=(event.at - first.at).total_seconds(), **dims))
    if kind == EventKind.NOTICE.value:
        notice = event_log.payload(event, NoticeReceived)
        facts.append(ModerationFact(event.id, FactKind.NOTICE, event.at, category=notice.category,
                                    source=_notice_source(event).value, **dims))
    elif kind == EventKind.ACTIONS_APPLIED.value:
        applied = event_log.payload(event, ActionsApplied)
        action = next((a for a in _CONTENT_ACTIONS if a in applied.actions), None)
        if action is not None:
            source, path, category = _action_origin(event, prior)
            notified = any(e.kind == EventKind.NOTICE.value for e in prior)
            viewed = notified or any(e.kind == EventKind.VIEWS_THRESHOLD.value for e in prior) or not any(
                e.kind == EventKind.VERDICT.value and event_log.payload(e, VerdictGiven).verdict != Verdict.ALLOW.value
                for e in prior)
            seconds = (event.at - content.uploaded).total_seconds() if content.uploaded else None
            facts.append(ModerationFact(
                event.id, FactKind.ACTION, event.at, category=category, territory=",".join(sorted(applied.territories)),
                source=source.value, path=path.value, action=action, proactive=source in OWN_INITIATIVE,
                before_view=not viewed, seconds=seconds, **dims))
            if _missed(event, prior):
                facts.append(ModerationFact(event.id, FactKind.MISSED, event.at, category=category,
                                            territory=",".join(sorted(applied.territories)), source=source.value,
                                            path=path.value, proactive=source in OWN_INITIATIVE, **dims))
            pending = _pending_notices(prior, frozenset({EventKind.ACTIONS_APPLIED.value}))
            if pending:
                first = pending[0]
                facts.append(ModerationFact(event.id, FactKind.NOTICE_ACTIONED, event.at, category=category,
                                            source=_notice_source(first).value, action=action,
                                            seconds=(event.at - first.at).total_seconds(), **dims))
    elif kind == EventKind.APPEAL_FILED.value:
        facts.append(ModerationFact(event.id, FactKind.APPEAL_FILED, event.at, category=_last_category(prior), **dims))
    elif kind == EventKind.APPEAL_DECIDED.value:
        decided = event_log.payload(event, AppealDecided)
        filed = next((e for e in prior if e.kind == EventKind.APPEAL_FILED.value
                      and event_log.payload(e, AppealFiled).appeal_id == decided.appeal_id), None)
        facts.append(ModerationFact(event.id, FactKind.APPEAL_DECIDED, event.at, category=_last_category(prior),
                                    action=decided.outcome,
                                    seconds=(event.at - filed.at).total_seconds() if filed else None, **dims))
    elif kind == EventKind.REINSTATED.value:
        undone = next((e for e in reversed(prior) if e.kind == EventKind.ACTIONS_APPLIED.value), None)
        if undone is not None:
            source, path, category = _action_origin(undone, [e for e in prior if e.id < undone.id])
            reinstated = event_log.payload(event, Reinstated)
            facts.append(ModerationFact(event.id, FactKind.REVERSAL, event.at, category=category, source=source.value,
                                        path=path.value, action="appeal" if reinstated.appeal_id else "order",
                                        **dims))
            before = [e for e in prior if e.id < undone.id]
            if _missed(undone, before):
                facts.append(ModerationFact(event.id, FactKind.MISSED, event.at, category=category,
                                            source=source.value, path=path.value, action="reinstated",
                                            proactive=source in OWN_INITIATIVE, **dims))
    return facts


def _missed(action: ModerationEvent, prior: Sequence[ModerationEvent]) -> bool:
    """An action the automated means missed: taken by a person or an order (not the policy) on content whose upload
    verdict was ``allow``, with no automated action before it (the policy acting on it later is a late catch)."""
    if action.actor.startswith("policy:"):
        return False
    verdict = next((e for e in reversed(prior) if e.kind == EventKind.VERDICT.value), None)
    if verdict is None or event_log.payload(verdict, VerdictGiven).verdict != Verdict.ALLOW.value:
        return False
    return not any(e.kind == EventKind.ACTIONS_APPLIED.value and e.actor.startswith("policy:") for e in prior)


def _last_category(prior: Sequence[ModerationEvent]) -> str:
    for e in reversed(prior):
        if e.kind == EventKind.ACTIONS_APPLIED.value:
            category = event_log.payload(e, ActionsApplied).category
            if category:
                return category
        if e.kind == EventKind.DECISION.value:
            category = event_log.payload(e, Decided).category
            if category:
                return category
    return ""


# --- what a designated entity links to (designations/) --------------------------------------------------------------


def restricted(mod: Moderation, session: Session, content_id: str) -> bool:
    """Whether the content is suspected child sexual abuse material (never to leave Bastion, never shown outside the
    child-safety roles); content never submitted counts as restricted, so a caller that checks fails closed."""
    row = session.get(ContentItem, content_id)
    return row is None or restricted_content(mod, session, row)


@dataclass(frozen=True)
class LinkedCase:
    """An undecided case about content that matched one of the given banks or says one of the given keywords."""

    case_id: int
    content_id: str
    queue: str
    category: str
    reason: str
    #: What links it: ``bank:NAME`` or ``keyword:WORD``.
    links: list[str]


@dataclass(frozen=True)
class LinkedDecision:
    """A standing human decision about linked content: what a change of its category would alter."""

    content_id: str
    case_id: int
    category: str
    actions: list[str]
    decided_by: str
    at: dt.datetime
    links: list[str]


def linked(session: Session, content_ids: Sequence[str], *, banks: Sequence[str],
           keywords: Sequence[str]) -> dict[str, list[str]]:
    """For each content id, what links it to ``banks`` (its matches at upload) or ``keywords`` (its text, as words,
    case-insensitive); content with no link is left out."""
    found: dict[str, set[str]] = {}
    wanted = set(banks)
    patterns = [(k, re.compile(rf"(?<!\w){re.escape(k)}(?!\w)", re.IGNORECASE)) for k in keywords if k.strip()]
    for chunk in _chunks(list(content_ids), 500):
        if wanted:
            for event in session.scalars(select(ModerationEvent).where(
                    ModerationEvent.subject.in_([content_subject(c) for c in chunk]),
                    ModerationEvent.kind.in_([EventKind.VERDICT.value, EventKind.RESUBMITTED.value]))):
                matches = event_log.payload(event, VerdictGiven).matches if event.kind == EventKind.VERDICT.value \
                    else event_log.payload(event, Resubmitted).matches
                for match in matches:
                    if match.bank in wanted:
                        found.setdefault(event.subject.removeprefix("content:"), set()).add(f"bank:{match.bank}")
        if patterns:
            for content_id, text in session.execute(select(ContentItem.content_id, ContentItem.text)
                                                    .where(ContentItem.content_id.in_(chunk))):
                for word, pattern in patterns:
                    if text and pattern.search(text):
                        found.setdefault(content_id, set()).add(f"keyword:{word}")
    return {c: sorted(links) for c, links in found.items()}


def open_cases_linked(mod: Moderation, session: Session, *, banks: Sequence[str],
                      keywords: Sequence[str]) -> list[LinkedCase]:
    """Undecided cases whose content links to ``banks`` or ``keywords``, oldest first. Restricted content (child
    sexual abuse material) is left out: nothing outside child safety moves or lists it."""
    cases = list(session.scalars(select(Case).where(Case.state != CaseState.DECIDED.value).order_by(Case.id)))
    links = linked(session, sorted({c.content_id for c in cases}), banks=banks, keywords=keywords)
    items = list(session.scalars(select(ContentItem).where(ContentItem.content_id.in_(list(links)))))
    hidden = restricted_among(mod, session, items)
    return [LinkedCase(c.id, c.content_id, c.queue, c.category, c.reason, links[c.content_id]) for c in cases
            if c.content_id in links and c.content_id not in hidden and not mod.restricted_queue(c.queue)]


def decisions_linked(mod: Moderation, session: Session, *, banks: Sequence[str], keywords: Sequence[str],
                     category: str) -> list[LinkedDecision]:
    """Standing violations of ``category`` decided by a person on content linked to ``banks`` or ``keywords``: the
    past decisions a change of the link's category would alter, for a person to look at. Restricted content is left
    out."""
    decided = sorted(set(session.scalars(select(Case.content_id).where(Case.state == CaseState.DECIDED.value))))
    links = linked(session, decided, banks=banks, keywords=keywords)
    items = list(session.scalars(select(ContentItem).where(ContentItem.content_id.in_(list(links)))))
    hidden = restricted_among(mod, session, items)
    shown = sorted(set(links) - hidden)
    newest_first: dict[str, list[ModerationEvent]] = {}  # every content's decisions in one query, not one each
    for chunk in _chunks(shown, 500):
        for event in session.scalars(select(ModerationEvent).where(
                ModerationEvent.subject.in_([content_subject(c) for c in chunk]),
                ModerationEvent.kind.in_([EventKind.DECISION.value, EventKind.REINSTATED.value]))
                .order_by(ModerationEvent.id.desc())):
            newest_first.setdefault(event.subject.removeprefix("content:"), []).append(event)
    found = []
    for content_id in shown:
        violation = confirmed_in(newest_first.get(content_id, []))
        if violation is not None and violation.category == category:
            found.append(LinkedDecision(content_id, violation.case_id, violation.category, violation.actions,
                                        violation.decided_by, violation.at, links[content_id]))
    return found


@dataclass(frozen=True)
class SubmittedSince:
    """Content first submitted after a cursor (a ``moderation_events`` id), and the cursor to ask from next."""

    cursor: int
    content_ids: list[str]


def submitted_since(session: Session, cursor: int, *, limit: int | None = 10_000) -> SubmittedSince:
    """New content, for a follower keeping its own view of it (``designations/queries.py``); ``limit=None`` from 0
    lists every submission."""
    query = select(ModerationEvent.id, ModerationEvent.subject).where(
        ModerationEvent.kind == EventKind.SUBMITTED.value, ModerationEvent.id > cursor).order_by(ModerationEvent.id)
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    return SubmittedSince(rows[-1][0] if rows else cursor, [s.removeprefix("content:") for _, s in rows])
# --- the feed's eligibility view (``feed/view.py``) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedFacts:
    """What the feed gate needs of a content item: where it stands and what restricts it, nothing of its media."""

    content_id: str
    status: str
    restrictions: tuple[str, ...]
    category: str
    content_type: str
    account_country: str
    live: bool
    #: Where it is disabled (empty unless ``disable_in_territories`` is in force).
    territories: tuple[str, ...] = ()


_FEED_COLUMNS = (ContentItem.content_id, ContentItem.status, ContentItem.restrictions, ContentItem.category,
                 ContentItem.content_type, ContentItem.account_country, ContentItem.live, ContentItem.territories)


def _feed_facts(row: Any) -> FeedFacts:
    restrictions = tuple(row[2] or ())
    territories = tuple(row[7] or ()) if Action.DISABLE_IN_TERRITORIES.value in restrictions else ()
    return FeedFacts(row[0], row[1], restrictions, row[3], row[4], row[5], bool(row[6]), territories)


def feed_facts(session: Session, content_ids: Iterable[str]) -> list[FeedFacts]:
    """The feed facts of the content named (those never submitted are left out)."""
    found: list[FeedFacts] = []
    ids = list(dict.fromkeys(content_ids))
    for chunk in _chunks(ids, 500):
        found += [_feed_facts(r) for r in session.execute(select(*_FEED_COLUMNS)
                                                          .where(ContentItem.content_id.in_(chunk)))]
    return found


def all_feed_facts(session: Session, batch: int = 20_000) -> Iterator[FeedFacts]:
    """Every content item's feed facts, streamed (what a view loads at start)."""
    for row in session.execute(select(*_FEED_COLUMNS).execution_options(yield_per=batch)):
        yield _feed_facts(row)


def last_event_id(session: Session) -> int:
    """The newest moderation event's id (0 when there is none): where a follower starts after a full load."""
    return session.scalar(select(func.max(ModerationEvent.id))) or 0


def content_events_after(session: Session, after_id: int, limit: int = 1000) -> list[tuple[int, str]]:
    """``(event id, content id)`` of the moderation events after ``after_id``, oldest first; account events are
    skipped but their ids still count (a follower's high-water mark passes them)."""
    rows = session.execute(select(ModerationEvent.id, ModerationEvent.subject)
                           .where(ModerationEvent.id > after_id).order_by(ModerationEvent.id).limit(limit))
    return [(event_id, subject) for event_id, subject in rows]


def content_events_among(session: Session, event_ids: Iterable[int]) -> list[tuple[int, str]]:
    """The events with these ids that exist now (a follower's gaps: ids skipped because their transaction had not
    committed yet), as ``content_events_after`` gives them."""
    ids = list(event_ids)
    if not ids:
        return []
    rows = session.execute(select(ModerationEvent.id, ModerationEvent.subject).where(ModerationEvent.id.in_(ids)))
    return [(event_id, subject) for event_id, subject in rows]


@dataclass(frozen=True)
class BankHit:
    """An upload judged at intake that matched a given bank: when, its verdict, and whether a variant matched."""

    content_id: str
    at: dt.datetime
    verdict: str
    variant: bool


def bank_hits(session: Session, bank: str, since: dt.datetime) -> list[BankHit]:
    """Uploads judged since ``since`` whose verdict matched ``bank`` (a crisis bank's timeline), oldest first.

    Never use it for a restricted bank outside child-safety roles: it says which uploads matched it."""
    hits: list[BankHit] = []
    for event in session.scalars(select(ModerationEvent).where(
            ModerationEvent.kind == EventKind.VERDICT.value, ModerationEvent.at >= since).order_by(ModerationEvent.id)):
        verdict = event_log.payload(event, VerdictGiven)
        matched = [m for m in verdict.matches if m.bank == bank]
        if matched:
            hits.append(BankHit(event.subject.removeprefix("content:"), event.at, verdict.verdict,
                                all(m.variant for m in matched)))
    return hits


@dataclass(frozen=True)
class ConfirmedDecision:
    """A moderator's decision that found a violation and removed the content (not an appeal's)."""

    event_id: int
    content_id: str
    category: str


def removals_decided_after(session: Session, after_id: int, limit: int = 200) -> list[ConfirmedDecision]:
    """Decisions after event ``after_id`` that confirmed a violation with a removal, oldest first (a crisis banks
    them as perpetrator content)."""
    found: list[ConfirmedDecision] = []
    for event in session.scalars(select(ModerationEvent).where(
            ModerationEvent.id > after_id, ModerationEvent.kind == EventKind.DECISION.value)
            .order_by(ModerationEvent.id).limit(limit)):
        decided = event_log.payload(event, Decided)
        if decided.violation and decided.reason != CaseReason.APPEAL.value and "remove" in decided.actions:
            found.append(ConfirmedDecision(event.id, event.subject.removeprefix("content:"), decided.category))
    return found
