"""``may A do this to B?``: bands resolved, rules applied, every deny recorded, grooming signals raised.

A batch is resolved with one query for what is recorded of its accounts (ages, family links, own settings),
decided in memory in a read transaction, and its denies and watched contacts are written with one multi-row INSERT
in one write transaction (``core/events.py: record_many``), committed before the answer leaves: a deny that was
answered is recorded. A batch with nothing to record takes no write lock. The checks of a feed cost about what one does.

Grooming signals are raised from those events by a watch that follows the event log (``watch_grooming``, the app's
``bastion-grooming`` worker), not in the request: reading an actor's window of attempts and opening its case cost a
batch with denies about a millisecond, and a case seconds later protects a child as well.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    ColumnElement,
    CompoundSelect,
    Executable,
    and_,
    bindparam,
    case,
    distinct,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from bastion.core.db import in_list, is_sqlite
from bastion.core.events import SETTLE_SECONDS, NewEvent, move_mark, record_many
from bastion.minors import bands
from bastion.minors.accounts import local_time, quiet_hours_in_force, quiet_rule, setting_rules
from bastion.minors.events import CaseKind, CaseOpened, CaseState, Contact, Denied, EventKind, LinkState
from bastion.minors.family import limit_rules
from bastion.minors.interfaces import (
    ADULT_PLAUSIBLE,
    CONTACT_ACTIONS,
    MINOR_BANDS,
    SOLO_ACTIONS,
    Action,
    AgeBasis,
    Audience,
    Band,
    Decision,
    InvalidCheck,
)
from bastion.minors.models import AccountSettings, AgeRecord, FamilyLink, MinorEvent, MinorsCase, MinorsMark
from bastion.minors.rules import Facts, Grooming, Rule, Verdict
from bastion.minors.services import ACCOUNT_PREFIX, Minors, account_subject

#: How many attempts a grooming case lists (the newest).
CASE_ATTEMPTS = 200
_MINOR_VALUES = frozenset(b.value for b in MINOR_BANDS)
#: A stored band by its value: a dict's look-up, where ``Band(value)`` costs a microsecond (a batch reads ~200).
_BANDS = {b.value: b for b in Band}
_ADULT_VALUES = frozenset(b.value for b in ADULT_PLAUSIBLE)

_WATCHED_KINDS = [EventKind.DENIED.value, EventKind.CONTACT.value]
_DENIED, _TARGET = MinorEvent.kind == EventKind.DENIED.value, MinorEvent.data["target"].as_string()
#: An attempt at a minor, as the database reads an event: a deny of a possible adult, or a contact (written only for
#: a possible adult), aimed at an account in a minor's band. The one definition, read by the watch and by a case's
#: list: the payloads are read by the database, not decoded here (a round holds the interpreter, which the requests
#: share, for a row per account, not per event). No writer gives a target band without a target; a row that did
#: would be passed over, not stop every later round.
_ATTEMPT = and_(
    MinorEvent.kind.in_(_WATCHED_KINDS), MinorEvent.data["target_band"].as_string().in_(sorted(_MINOR_VALUES)),
    func.coalesce(_TARGET, "") != "",
    ~_DENIED | MinorEvent.data["actor_band"].as_string().in_(sorted(_ADULT_VALUES)))
_OPEN_GROOMING = (MinorsCase.kind == CaseKind.GROOMING.value) & (MinorsCase.state == CaseState.OPEN.value)

#: The accounts of a round's new attempts whose grooming case is not open, each with the times of its oldest and
#: newest new attempt: one row per account. Open cases are left out first, before any payload is read (``NOT IN``:
#: a case's account is never null).
_NEW_ATTEMPTS = select(MinorEvent.subject, func.min(MinorEvent.at), func.max(MinorEvent.at)).where(
    MinorEvent.id > bindparam("after"), MinorEvent.id <= bindparam("last"),
    MinorEvent.subject.not_in(select(literal(ACCOUNT_PREFIX) + MinorsCase.account_id).where(_OPEN_GROOMING)),
    _ATTEMPT,
).group_by(MinorEvent.subject)

# The statements with accounts as one parameter, built once per dialect (``core/db.py: in_list``): an ``in_`` of a
# fresh list builds and coerces a literal per account on every call.


def _attempts_since(dialect: str) -> ColumnElement[bool]:
    """The attempts of the accounts bound as ``subjects`` since ``since``."""
    return and_(in_list(MinorEvent.subject, "subjects", dialect), MinorEvent.at >= bindparam("since"), _ATTEMPT)


@functools.cache
def _attempts(dialect: str) -> Executable:
    return select(MinorEvent.subject, MinorEvent.kind, MinorEvent.at, MinorEvent.data).where(
        _attempts_since(dialect)).order_by(MinorEvent.id)


@functools.cache
def _attempt_counts(dialect: str) -> Executable:
    """Per account: its denied attempts, and the minors it reached or tried to, since ``since``."""
    return select(MinorEvent.subject, func.count(case((_DENIED, 1))), func.count(distinct(_TARGET))).where(
        _attempts_since(dialect)).group_by(MinorEvent.subject)


#: What is recorded of a batch's accounts, in one statement: (what, account, basis, band, values) rows, ``what``
#: being ``_AGE`` (basis and band), ``_OWN`` (the account's own settings) or ``_LIMITS`` (a linked parent's limits).
#: One round trip instead of three: each statement costs more to execute than its rows cost to read. The ids are one
#: parameter (``core/db.py: in_list``), so each dialect's statement is prepared once.
_AGE, _OWN, _LIMITS = 0, 1, 2


@functools.cache
def _recorded_statement(dialect: str) -> CompoundSelect[Any]:
    return union_all(
        select(literal_column(str(_AGE)), AgeRecord.account_id, AgeRecord.basis, AgeRecord.band,
               type_coerce(null(), JSON)).where(in_list(AgeRecord.account_id, "ids", dialect)),
        select(literal_column(str(_OWN)), AccountSettings.account_id, null(), null(), AccountSettings.values)
        .where(in_list(AccountSettings.account_id, "ids", dialect)),
        select(literal_column(str(_LIMITS)), FamilyLink.teen_id, null(), null(), FamilyLink.limits)
        .where(in_list(FamilyLink.teen_id, "ids", dialect), FamilyLink.state == LinkState.LINKED.value),
    )


class AccountRef(NamedTuple):
    """An account named in a check; ``age`` in years (as the platform knows them, treated as declared) if given."""

    account_id: str
    age: float | None = None


class Context(NamedTuple):
    follows: bool = False
    followed_by: bool = False
    conversation: bool = False
    group_consent: bool = False
    age_restricted: bool = False
    borderline: bool = False
    audience: Audience | None = None
    #: The account's offset from UTC in minutes now (its local time), for quiet hours: needed by ``notify``.
    utc_offset_minutes: int | None = None


class Check(NamedTuple):
    """One question (named tuples, like ``Context``, ``AccountRef`` and ``Checked``: ``rules.Facts`` says why)."""

    actor: AccountRef
    action: Action
    target: AccountRef | None = None
    context: Context = Context()
    content_id: str | None = None

    def validate(self) -> None:
        if self.action in SOLO_ACTIONS and self.target is not None:
            raise InvalidCheck(f"{self.action.value} is done by the actor alone: leave target out")
        if self.action not in SOLO_ACTIONS and self.target is None:
            raise InvalidCheck(f"{self.action.value} needs a target account")
        if self.target is not None and self.target.account_id == self.actor.account_id:
            raise InvalidCheck("actor and target are the same account")
        if self.action is Action.NOTIFY and self.context.utc_offset_minutes is None:
            raise InvalidCheck("notify needs context.utc_offset_minutes (the account's local time, for quiet hours)")


class Checked(NamedTuple):
    """One check's answer, with the bands it was decided on."""

    verdict: Verdict
    actor_band: Band
    target_band: Band | None


@dataclass(frozen=True)
class Recorded:
    """What is recorded of some accounts: each one's stored band (and whether its age is verified), a linked
    teen's limits, and the settings an account holder changed. Accounts with none are absent."""

    bands: dict[str, tuple[bool, Band]]
    limits: dict[str, dict[str, Any]]
    own: dict[str, dict[str, Any]]


def recorded(session: Session, account_ids: set[str]) -> Recorded:
    """Ages, family limits and own settings of ``account_ids``, in one query."""
    found = Recorded({}, {}, {})
    if not account_ids:
        return found
    verified = AgeBasis.VERIFIED.value
    connection = session.connection()  # Core: no ORM step per row
    rows = connection.execute(_recorded_statement(connection.dialect.name), {"ids": list(account_ids)}).all()
    for what, account_id, basis, band, values in rows:
        if what == _AGE:
            found.bands[account_id] = (basis == verified, _BANDS[band])
        elif values and account_id is not None:
            (found.own if what == _OWN else found.limits)[account_id] = dict(values)
    return found


def band_of(ref: AccountRef, stored: dict[str, tuple[bool, Band]]) -> Band:
    """A stored verified age wins; otherwise an age given inline (declared); otherwise the stored one; else unknown."""
    row = stored.get(ref.account_id)
    if row is not None and (row[0] or ref.age is None):
        return row[1]
    if ref.age is not None:
        return bands.band_for(AgeBasis.DECLARED, ref.age)
    return Band.UNKNOWN


def facts_for(check: Check, actor: Band, target: Band | None) -> Facts:
    c = check.context
    return Facts(actor, target, c.follows, c.followed_by, c.conversation, c.group_consent, c.age_restricted,
                 c.borderline, c.audience)


def decide(m: Minors, session: Session, checks: Sequence[Check]) -> list[Checked]:
    """Decide without recording (the console's "what can A do to B?" and the batch's first half).

    Before the platform's rules come, after the floor, the deny rules of a parent's limits and of the accounts' own
    recorded settings (the target's: who may reach it; the actor's: what it turned off), and for ``notify`` the
    quiet hours in force at the account's local time.
    """
    for check in checks:
        check.validate()
    ids = {c.actor.account_id for c in checks} | {c.target.account_id for c in checks if c.target is not None}
    found = recorded(session, ids)
    stored, limits, own = found.bands, found.limits, found.own
    rules = m.rules
    now = m.clock.now()
    answers: list[Checked] = []
    for check in checks:
        actor = band_of(check.actor, stored)
        target = band_of(check.target, stored) if check.target is not None else None
        extra: list[Rule] = []
        if check.target is not None:
            target_id = check.target.account_id
            if target_id in limits:
                extra += limit_rules(limits[target_id], side="target")
            if target_id in own:
                extra += setting_rules(own[target_id], side="target")
        actor_id = check.actor.account_id
        if actor_id in limits:
            extra += limit_rules(limits[actor_id], side="actor")
        if actor_id in own:
            extra += setting_rules(own[actor_id], side="actor")
        if check.action is Action.NOTIFY and check.context.utc_offset_minutes is not None:
            windows = quiet_hours_in_force(rules.defaults_for(actor).quiet_hours, own.get(actor_id, {}),
                                           limits.get(actor_id, {}))
            quiet = quiet_rule(windows, local_time(now, check.context.utc_offset_minutes))
            if quiet is not None:
                extra.append(quiet)
        verdict = rules.decide(check.action, facts_for(check, actor, target), extra)
        answers.append(Checked(verdict, actor, target))
    return answers


def check_all(m: Minors, checks: Sequence[Check], *, actor: str) -> list[Checked]:
    """Decide, and record every deny (and every unconnected contact of a minor by a possible adult).

    Decided in a read transaction; what is to be recorded is written in one write transaction, committed before
    this returns (so before the platform hears the answer). Grooming signals are raised from these events by the
    watch (``watch_grooming``), seconds later, off the request path.
    """
    with m.db.read() as session:
        answers = decide(m, session, checks)
    now = m.clock.now()
    events: list[NewEvent] = []
    for check, answer in zip(checks, answers, strict=True):
        subject = account_subject(check.actor.account_id)
        if answer.verdict.decision is Decision.DENY:
            events.append(NewEvent(subject, EventKind.DENIED, actor, now, Denied(
                action=check.action.value, target=check.target.account_id if check.target else None,
                actor_band=answer.actor_band.value,
                target_band=answer.target_band.value if answer.target_band else None,
                rule=answer.verdict.rule, content_id=check.content_id)))
        elif (check.target is not None and check.action in CONTACT_ACTIONS and answer.actor_band in ADULT_PLAUSIBLE
              and answer.target_band in MINOR_BANDS and not (check.context.follows and check.context.followed_by)):
            events.append(NewEvent(subject, EventKind.CONTACT, actor, now, Contact(
                action=check.action.value, target=check.target.account_id, target_band=answer.target_band.value)))
    if events:
        with m.db.write() as session:
            record_many(session, MinorEvent, events)
    return answers


#: The watch's row in ``MinorsMark``, and how many events a round reads at most. On PostgreSQL a round leaves events
#: younger than ``core/events.py: SETTLE_SECONDS`` to the next; SQLite's ids commit in order, so it takes in all.
GROOMING_LOG = "grooming"
GROOMING_BATCH = 5000


def _new_span(session: Session, after: int, until: dt.datetime | None, batch: int) -> tuple[int, int]:
    """The id of the last event a round takes in, and how many it takes: up to ``batch`` deny and contact events
    after ``after``, stopping before the first one written after ``until`` (PostgreSQL's settling)."""
    ids = select(MinorEvent.id).where(MinorEvent.id > after, MinorEvent.kind.in_(_WATCHED_KINDS))
    if until is not None:
        young = session.scalar(select(func.min(MinorEvent.id)).where(
            MinorEvent.id > after, MinorEvent.kind.in_(_WATCHED_KINDS), MinorEvent.at > until))
        if young is not None:
            ids = ids.where(MinorEvent.id < young)
    span = ids.order_by(MinorEvent.id).limit(batch).subquery()
    last, count = session.execute(select(func.max(span.c.id), func.count()).select_from(span)).one()
    return (int(last), int(count)) if count else (after, 0)


def watch_grooming(m: Minors, *, now: dt.datetime | None = None, settle: float = SETTLE_SECONDS,
                   batch: int = GROOMING_BATCH) -> bool:
    """One round of the grooming watch: the deny and contact events after its mark, and for each possible adult
    among their actors whose case is not open already, its attempts in the window before its newest one, a grooming
    case opened where they pass the file's thresholds (``open_grooming_cases``). Returns whether a full batch was
    read (more is waiting).

    The events and the windows are read in a read transaction; the cases and the moved mark are written in one write
    transaction, which moves the mark only where it has not moved since (``core/events.py: move_mark``; another
    watch's round: this one then leaves the work to the next), so a crash between any two steps raises no case twice
    and skips no event. ``now``: the time PostgreSQL's settling is measured from (``None``: take in everything
    committed, as tests do).
    """
    until = now - dt.timedelta(seconds=settle) if now is not None and not is_sqlite(m.db.engine) else None
    window = dt.timedelta(hours=m.rules.spec.grooming.window_hours)
    with m.db.read() as session:
        mark = session.get(MinorsMark, GROOMING_LOG)
        after = mark.last_id if mark is not None else 0
        last, count = _new_span(session, after, until, batch)
        if not count:
            return False
        # account -> the times of its oldest and newest new attempts at a minor
        spans = {subject.removeprefix(ACCOUNT_PREFIX): (first, at)
                 for subject, first, at in session.execute(_NEW_ATTEMPTS, {"after": after, "last": last})}
        found: dict[str, list[Attempt]] = {}
        if spans:
            since = min(first for first, _ in spans.values()) - window
            found = attempts_at_minors(session, over_a_threshold(m, session, set(spans), since), since)
    due = grooming_due(m, {a: _passing_window(m, attempts, *spans[a], window) for a, attempts in found.items()})
    with m.db.write() as session:
        if not move_mark(session, MinorsMark, GROOMING_LOG, after, last):
            return True  # another round took these in meanwhile: start again from its mark
        open_grooming_cases(m, session, due)  # only the watch opens grooming cases: none opened meanwhile
    return count >= batch


@dataclass(frozen=True)
class Attempt:
    at: dt.datetime
    action: str
    target: str
    decision: str
    rule: str


def over_a_threshold(m: Minors, session: Session, account_ids: set[str], since: dt.datetime) -> set[str]:
    """The accounts whose attempts since ``since`` pass one of the file's thresholds, counted by the database (a row
    per account): only theirs are worth reading. Each window the watch judges lies within them, and a window's
    counts only grow with its attempts, so an account under both thresholds here passes them in no window (both
    judge the counts with ``_reasons_for``: this stays a superset of what ``_reasons`` finds)."""
    if not account_ids:
        return set()
    spec = m.rules.spec.grooming
    subjects = {account_subject(a): a for a in account_ids}
    rows = session.execute(_attempt_counts(session.get_bind().dialect.name),
                           {"subjects": list(subjects), "since": since})
    return {subjects[subject] for subject, denied, minors in rows if _reasons_for(spec, denied, minors)}


def attempts_at_minors(session: Session, account_ids: set[str], since: dt.datetime) -> dict[str, list[Attempt]]:
    """Accounts' denied attempts at minors and unconnected contacts of minors since ``since``, oldest first (one
    query for all of them)."""
    if not account_ids:
        return {}
    subjects = {account_subject(a): a for a in account_ids}
    statement = _attempts(session.get_bind().dialect.name)
    found: dict[str, list[Attempt]] = {}
    for subject, kind, at, data in session.execute(statement, {"subjects": list(subjects), "since": since}):
        denied = kind == EventKind.DENIED.value
        found.setdefault(subjects[subject], []).append(Attempt(
            at, str(data["action"]), str(data["target"]), "deny" if denied else "allow",
            str(data["rule"]) if denied else ""))
    return found


def _reasons(m: Minors, attempts: list[Attempt]) -> tuple[list[str], int, int]:
    denied = sum(1 for a in attempts if a.decision == "deny")
    minors = len({a.target for a in attempts})
    return _reasons_for(m.rules.spec.grooming, denied, minors), denied, minors


def _reasons_for(spec: Grooming, denied: int, minors: int) -> list[str]:
    """The thresholds that ``denied`` attempts and attempts at ``minors`` distinct minors pass (none: no case)."""
    reasons = []
    if denied >= spec.denied_attempts:
        reasons.append(f"{denied} denied attempts to reach minors in {spec.window_hours} h")
    if minors >= spec.unconnected_minors:
        reasons.append(f"contacts with {minors} unconnected minors in {spec.window_hours} h")
    return reasons


#: New attempts of one actor spread over more than this (a round catching up on a backlog) are judged window by
#: window, one ending at each of them; closer together, the window ending at the newest stands for them all.
_SPREAD = dt.timedelta(minutes=1)


def _passing_window(m: Minors, attempts: list[Attempt], first: dt.datetime, last: dt.datetime,
                    window: dt.timedelta) -> list[Attempt]:
    """An actor's attempts in the first window that passes a threshold and ends at one of its new attempts (between
    ``first`` and ``last``), or else in the window ending at the newest. A round that takes in days of attempts (the
    watch was stopped) so still sees a burst that passed a threshold days ago, as the request once did."""
    if last - first > _SPREAD:
        for end in sorted({a.at for a in attempts if first <= a.at <= last}):
            inside = [a for a in attempts if end - window <= a.at <= end]
            if _reasons(m, inside)[0]:
                return inside
    return [a for a in attempts if a.at >= last - window]


def grooming_due(m: Minors, found: dict[str, list[Attempt]]) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """The accounts whose attempts in the window pass a threshold, each with its reasons and its case's detail."""
    due = {}
    for account_id, attempts in found.items():
        reasons = _reasons(m, attempts)[0]
        if reasons:
            due[account_id] = (reasons, _detail(m, attempts))
    return due


def open_grooming_cases(m: Minors, session: Session, due: dict[str, tuple[list[str], dict[str, Any]]]) -> list[int]:
    """Open a grooming case for each account of ``due`` (none has one open), with its ``case.opened`` event: two
    multi-row INSERTs however many they are, so the watch's write transaction stays short. The new cases' ids."""
    if not due:
        return []
    spec, now, accounts = m.rules.spec.grooming, m.clock.now(), sorted(due)
    # Each id is matched to its account by the row returned, not by the rows' order: asked to keep that order,
    # SQLAlchemy inserts on SQLite one row per statement.
    opened = dict(session.execute(insert(MinorsCase).returning(MinorsCase.account_id, MinorsCase.id), [
        {"account_id": a, "kind": CaseKind.GROOMING.value, "queue": spec.queue, "state": CaseState.OPEN.value,
         "detail": due[a][1], "statement": None, "opened_at": now, "updated_at": now} for a in accounts]).all())
    record_many(session, MinorEvent, [
        NewEvent(account_subject(a), EventKind.CASE_OPENED, "system", now, CaseOpened(
            case_id=opened[a], kind=CaseKind.GROOMING.value, queue=spec.queue, reason="; ".join(due[a][0])))
        for a in accounts])
    return [opened[a] for a in accounts]


def _detail(m: Minors, attempts: list[Attempt]) -> dict[str, Any]:
    reasons, denied, minors = _reasons(m, attempts)
    listed = [{"at": a.at.isoformat(), "action": a.action, "target": a.target, "decision": a.decision,
               "rule": a.rule} for a in attempts[-CASE_ATTEMPTS:]]
    return {"reasons": reasons, "denied_attempts": denied, "unconnected_minors": minors, "attempts": listed}


def current_details(m: Minors, session: Session, found: Sequence[MinorsCase]) -> dict[int, dict[str, Any]]:
    """The open grooming cases among ``found`` brought up to date: every attempt from the window before the case
    opened until now, the newest ``CASE_ATTEMPTS`` listed (one query for all of them). Keys the case ids."""
    live = [c for c in found if c.kind == CaseKind.GROOMING.value and c.state == CaseState.OPEN.value]
    if not live:
        return {}
    window = dt.timedelta(hours=m.rules.spec.grooming.window_hours)
    attempts = attempts_at_minors(session, {c.account_id for c in live}, min(c.opened_at for c in live) - window)
    return {c.id: {**c.detail, **_detail(m, [a for a in attempts.get(c.account_id, [])
                                               if a.at >= c.opened_at - window])}
            for c in live}


def cases(session: Session, *, kind: CaseKind | None = None, state: CaseState = CaseState.OPEN,
          limit: int = 500) -> list[MinorsCase]:
    query = select(MinorsCase).where(MinorsCase.state == state.value).order_by(MinorsCase.opened_at.desc())
    if kind is not None:
        query = query.where(MinorsCase.kind == kind.value)
    return list(session.scalars(query.limit(limit)))
