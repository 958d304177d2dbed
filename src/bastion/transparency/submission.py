"""Statements of reasons to the DSA Transparency Database (Art. 24(5)): queued with the decision, sent 100 at a time.

The queue (``sor_submissions``) is an outbox of its own: a statement is queued in the transaction that issues it
(``queue_hook``, wired as ``Moderation.on_statement``) or by ``backfill`` for those issued before submission was
switched on. ``submit_round`` leases up to 100 due statements in one short transaction, sends them in one request
with no transaction open, and writes each statement's outcome in one more. A deliverer that dies after sending and
before writing loses nothing: its lease expires, another deliverer looks each statement up (``existing-puid``) and
sends only those the database does not hold; and should the look-up fail, the database answers ``existing`` for a
``puid`` it holds, which counts as accepted, so none is doubled. Transient failures are retried with back-off for
ever (a statement is owed to the database, it never expires); a statement the database refuses is kept
``rejected`` with its errors for a person to see.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import JSON, Table, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.events import NewEvent, record_many
from bastion.core.outbox.services import RetryPolicy, short_error
from bastion.minors import cases as minor_cases
from bastion.moderation import queries
from bastion.moderation import statements as sor_rules
from bastion.transparency.sor_client import (
    MAX_BATCH,
    BatchAnswer,
    PersonalData,
    StatementsApi,
    Unanswered,
    scrub,
)
from bastion.transparency.sor_models import SorEvent, SorSubmission
from bastion.transparency.sor_states import (
    Accepted,
    Queued,
    Rejected,
    SorEventKind,
    Step,
    SubmissionState,
    next_state,
    sources,
)

ACTOR = "system:transparency"
#: The tables, for Core statements: a batch is written with executemany, not object by object.
_SUBMISSIONS = cast(Table, SorSubmission.__table__)
DEFAULT_LEASE_SECONDS = 60.0
#: Back-off between tries of a statement whose request failed: 2 s doubling to 10 minutes, never giving up.
RETRY = RetryPolicy(base_seconds=2.0, cap_seconds=600.0, max_attempts=1 << 30)


def subject(puid: str) -> str:
    return f"sor:{puid}"


def _row(puid: str, now: dt.datetime) -> dict[str, Any]:
    return {"puid": puid, "state": SubmissionState.QUEUED.value, "attempts": 0, "lease": 0, "next_attempt_at": now,
            "locked_until": None, "errors": {}, "last_error": "", "uuid": "", "queued_at": now, "done_at": None}


def _queue_rows(session: Session, puids: Sequence[str], *, clock: Clock) -> int:
    """Queue the statements not queued yet (in the caller's transaction), each with a ``sor.queued`` event saying it
    came by the backfill; returns how many were new."""
    if not puids:
        return 0
    known = set(session.scalars(select(SorSubmission.puid).where(SorSubmission.puid.in_(puids))))
    new = [p for p in dict.fromkeys(puids) if p not in known]
    if not new:
        return 0
    now = clock.now()
    session.connection().execute(insert(_SUBMISSIONS), [_row(p, now) for p in new])
    queued = Queued(via="backfill")
    record_many(session, SorEvent, [NewEvent(subject(p), SorEventKind.QUEUED, ACTOR, now, queued) for p in new])
    return len(new)


def queue_hook(clock: Clock) -> Callable[[Session, str], None]:
    """``Moderation.on_statement``: queue each statement in the transaction that issues it, with one insert (the
    puid is new, and the moderation event ``statement.issued`` already records the issue, so no event here: this is
    on every restriction's write path)."""
    def on_statement(session: Session, puid: str) -> None:
        session.connection().execute(insert(_SUBMISSIONS), [_row(puid, clock.now())])
    return on_statement


#: Where statements of reasons are issued: moderation's (content) and minors' (an under-13 account's removal). Each
#: gives the ``puid``s it issued, a page at a time, and the statements by ``puid``; a statement is in one of them.
_PUIDS: tuple[Callable[..., list[str]], ...] = (queries.statement_puids, minor_cases.issued_statement_puids)


def statements_for_submission(session: Session, puids: Sequence[str]) -> dict[str, queries.StatementForSubmission]:
    """The statements named, by ``puid``, from every domain that issues them (unknown ones absent)."""
    found = queries.statements_for_submission(session, puids)
    missing = [p for p in puids if p not in found]
    if missing:
        found |= minor_cases.issued_statements(session, missing)
    return found


def backfill(db: Database, *, clock: Clock, page: int = 1000,
             progress: Callable[[int, int], None] | None = None) -> int:
    """Queue every statement not queued yet (those issued before submission was switched on), of every domain that
    issues them; safe to run again and while the platform runs. ``progress(seen, queued)`` after each page. Returns
    how many it queued."""
    seen, queued = 0, 0
    for walk in _PUIDS:
        after = ""
        while True:
            with db.write() as session:
                puids = walk(session, after=after, limit=page)
                if not puids:
                    break
                queued += _queue_rows(session, puids, clock=clock)
            after, seen = puids[-1], seen + len(puids)
            if progress is not None:
                progress(seen, queued)
    return queued


@dataclass(frozen=True)
class Lease:
    """A statement leased for one request: the generation of its lease fences every write of the outcome."""

    puid: str
    lease: int
    attempts: int
    locked_until: dt.datetime


@dataclass(frozen=True)
class RoundReport:
    claimed: int = 0
    accepted: int = 0
    existing: int = 0
    rejected: int = 0
    retrying: int = 0
    #: Put back unsent: refused only for another statement's errors, or their lease nearly over.
    requeued: int = 0
    #: Written by another deliverer since (its lease had passed on); this one's outcome was not written.
    lost: int = 0
    error: str | None = None


def claim(db: Database, *, limit: int, lease_seconds: float, clock: Clock) -> list[Lease]:
    """Lease up to ``limit`` due statements, oldest first: queued and due, or sending with an expired lease (its
    deliverer died, and that try counts). ``FOR UPDATE SKIP LOCKED`` on PostgreSQL lets deliverers take disjoint
    batches; one ``UPDATE`` leases the whole batch."""
    now = clock.now()
    until = now + dt.timedelta(seconds=lease_seconds)
    due = or_(and_(SorSubmission.state == SubmissionState.QUEUED.value, SorSubmission.next_attempt_at <= now),
              and_(SorSubmission.state == SubmissionState.SENDING.value, SorSubmission.locked_until < now))
    query = (select(SorSubmission.puid, SorSubmission.state, SorSubmission.lease, SorSubmission.attempts,
                    SorSubmission.locked_until)
             .where(due).order_by(SorSubmission.next_attempt_at, SorSubmission.puid)
             .limit(limit).with_for_update(skip_locked=True))
    with db.write() as session:
        rows = session.execute(query).all()
        if not rows:
            return []
        for row in rows:
            next_state(SubmissionState(row.state), Step.CLAIM)  # the rule, asked: raises on a state it forbids
        crashed = case((SorSubmission.locked_until.is_not(None), 1), else_=0)
        session.connection().execute(
            update(_SUBMISSIONS).where(SorSubmission.puid.in_([r.puid for r in rows]))
            .values(state=SubmissionState.SENDING.value, lease=SorSubmission.lease + 1, locked_until=until,
                    attempts=SorSubmission.attempts + crashed))
    return [Lease(r.puid, r.lease + 1, r.attempts + (r.locked_until is not None), until) for r in rows]


@dataclass
class _Outcomes:
    """Each leased statement's step, and what goes with it."""

    steps: dict[str, Step] = field(default_factory=dict)
    uuids: dict[str, str] = field(default_factory=dict)
    errors: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    failure: str = ""

    def take(self, answer: BatchAnswer) -> None:
        for puid, uuid in answer.accepted.items():
            self.steps[puid], self.uuids[puid] = Step.ACCEPTED, uuid
        for puid, uuid in answer.existing.items():
            self.steps[puid], self.uuids[puid] = Step.EXISTING, uuid
        for puid, errors in answer.rejected.items():
            self.steps[puid], self.errors[puid] = Step.REJECTED, errors
        for puid in answer.unsent:
            self.steps[puid] = Step.REQUEUE


def prepare(session: Session, leases: Sequence[Lease]) -> tuple[list[dict[str, object]], _Outcomes]:
    """The bodies to send, scrubbed, and the statements refused here already (the database's own rules, checked
    before sending, and personal data in the key): they never reach the wire."""
    found = statements_for_submission(session, [lease.puid for lease in leases])
    bodies: list[dict[str, object]] = []
    outcomes = _Outcomes()
    for lease in leases:
        statement = found.get(lease.puid)
        if statement is None:
            outcomes.steps[lease.puid] = Step.REJECTED
            outcomes.errors[lease.puid] = {"statement": ["no statement of reasons with this puid here"]}
            continue
        try:
            body = scrub(statement.body, account_id=statement.account_id)
        except PersonalData as exc:
            outcomes.steps[lease.puid], outcomes.errors[lease.puid] = Step.REJECTED, {"puid": [str(exc)]}
            continue
        problems = sor_rules.problems(body)
        if problems:
            outcomes.steps[lease.puid] = Step.REJECTED
            outcomes.errors[lease.puid] = {"statement": problems}
            continue
        bodies.append(body)
    return bodies, outcomes


_FENCED = (Step.REJECTED, Step.FAILED, Step.REQUEUE)
#: One ``UPDATE`` per step, run as an executemany over the batch (bind names differ from the columns').
_WRITES: dict[Step, dict[str, Any]] = {
    Step.ACCEPTED: {"uuid": bindparam("b_uuid"), "done_at": bindparam("b_now"), "last_error": ""},
    Step.EXISTING: {"uuid": bindparam("b_uuid"), "done_at": bindparam("b_now"), "last_error": ""},
    Step.REJECTED: {"errors": bindparam("b_errors", type_=JSON), "done_at": bindparam("b_now")},
    Step.FAILED: {"attempts": bindparam("b_attempts"), "last_error": bindparam("b_error"),
                  "next_attempt_at": bindparam("b_next")},
    Step.REQUEUE: {"next_attempt_at": bindparam("b_now")},
}


def record(db: Database, leases: Sequence[Lease], outcomes: _Outcomes, *, clock: Clock,
           policy: RetryPolicy = RETRY) -> Counter[str]:
    """Write each statement's step in one transaction: an acceptance always (a fact), anything else only while this
    deliverer still holds the statement's lease. The rows are locked and read first, then one executemany per step."""
    now = clock.now()
    counts: Counter[str] = Counter()
    params: dict[Step, list[dict[str, Any]]] = {}
    events: list[NewEvent] = []
    with db.write() as session:
        current = {puid: (state, lease) for puid, state, lease in session.execute(
            select(SorSubmission.puid, SorSubmission.state, SorSubmission.lease)
            .where(SorSubmission.puid.in_([lease.puid for lease in leases])).with_for_update())}
        for lease in leases:
            step = outcomes.steps.get(lease.puid, Step.FAILED)
            state, held = current.get(lease.puid, ("", -1))
            if state not in {s.value for s in sources(step)} or (step in _FENCED and held != lease.lease):
                counts["lost"] += 1
                continue
            counts[step.value] += 1
            row: dict[str, Any] = {"b_puid": lease.puid, "b_lease": lease.lease, "b_now": now,
                                   "b_uuid": outcomes.uuids.get(lease.puid, ""),
                                   "b_errors": outcomes.errors.get(lease.puid, {})}
            if step is Step.FAILED:
                row.update(b_attempts=lease.attempts + 1, b_error=short_error(outcomes.failure or "failed"),
                           b_next=now + policy.delay(lease.attempts + 1))
            params.setdefault(step, []).append(row)
            kind, data = _event(step, outcomes, lease.puid)
            if kind is not None:
                events.append(NewEvent(subject(lease.puid), kind, ACTOR, now, data))
        for step, rows in params.items():
            guard = SorSubmission.puid == bindparam("b_puid")
            if step in _FENCED:
                guard = and_(guard, SorSubmission.lease == bindparam("b_lease"))
            state = next_state(SubmissionState.SENDING, step)
            session.connection().execute(update(_SUBMISSIONS).where(guard).values(
                state=state.value, locked_until=None, **_WRITES[step]), rows)
        record_many(session, SorEvent, events)
    return counts


def _event(step: Step, outcomes: _Outcomes, puid: str) -> tuple[SorEventKind | None, BaseModel | None]:
    if step is Step.ACCEPTED:
        return SorEventKind.ACCEPTED, Accepted(uuid=outcomes.uuids.get(puid, ""))
    if step is Step.EXISTING:
        return SorEventKind.EXISTING, Accepted(uuid=outcomes.uuids.get(puid, ""))
    if step is Step.REJECTED:
        return SorEventKind.REJECTED, Rejected(errors=outcomes.errors.get(puid, {}))
    return None, None


@dataclass
class Submitter:
    """One deliverer of statements: any number may run, on any number of machines, over one database."""

    db: Database
    api: StatementsApi
    clock: Clock
    batch_size: int = MAX_BATCH
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    policy: RetryPolicy = field(default_factory=lambda: RETRY)
    last_report: RoundReport | None = None

    def __post_init__(self) -> None:
        if not 0 < self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH}")

    def round(self) -> RoundReport:
        """Lease a batch, send it, write each outcome."""
        leases = claim(self.db, limit=self.batch_size, lease_seconds=self.lease_seconds, clock=self.clock)
        if not leases:
            self.last_report = RoundReport()
            return self.last_report
        with self.db.read() as session:
            bodies, outcomes = prepare(session, leases)
        bodies = self._not_held(leases, bodies, outcomes)
        margin = dt.timedelta(seconds=self.lease_seconds / 5)
        if bodies and self.clock.now() >= leases[0].locked_until - margin:  # too slow: another may take them now
            outcomes.take(BatchAnswer(unsent=[str(b["puid"]) for b in bodies]))
        elif bodies:
            answer = self.api.submit(bodies)
            outcomes.failure = answer.failure or ""
            if answer.failure is None:
                outcomes.take(answer)
        counts = record(self.db, leases, outcomes, clock=self.clock, policy=self.policy)
        self.last_report = RoundReport(
            claimed=len(leases), accepted=counts[Step.ACCEPTED.value], existing=counts[Step.EXISTING.value],
            rejected=counts[Step.REJECTED.value], retrying=counts[Step.FAILED.value],
            requeued=counts[Step.REQUEUE.value], lost=counts["lost"], error=outcomes.failure or None)
        return self.last_report

    def _not_held(self, leases: Sequence[Lease], bodies: list[dict[str, object]],
                  outcomes: _Outcomes) -> list[dict[str, object]]:
        """Ask the database about each statement an earlier try may have delivered (it ended with no answer, or its
        deliverer died), and send only those it does not hold: a known puid is never sent twice. When it cannot
        tell, the rest go as they are; its ``existing`` answer still keeps them from being doubled."""
        uncertain = {lease.puid for lease in leases if lease.attempts > 0}
        if not uncertain:
            return bodies
        held: dict[str, str] = {}
        try:
            for body in bodies:
                puid = str(body["puid"])
                if puid in uncertain and (uuid := self.api.known(puid)) is not None:
                    held[puid] = uuid
        except Unanswered:
            pass
        outcomes.take(BatchAnswer(existing=held))
        return [b for b in bodies if str(b["puid"]) not in held]

    def run(self) -> bool:
        """A ``core.worker.Worker`` round: ``True`` when the batch was full and sent, so the next starts at once."""
        report = self.round()
        return report.claimed >= self.batch_size and report.error is None


# --- reading --------------------------------------------------------------------------------------------------------

def counts(session: Session) -> dict[str, int]:
    """Statements per submission state, every state present."""
    found = dict.fromkeys((s.value for s in SubmissionState), 0)
    for state, n in session.execute(select(SorSubmission.state, func.count()).group_by(SorSubmission.state)):
        found[state] = n
    return found


@dataclass(frozen=True)
class SubmissionView:
    puid: str
    state: str
    attempts: int
    errors: dict[str, list[str]]
    last_error: str
    uuid: str
    queued_at: dt.datetime
    done_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: SorSubmission) -> SubmissionView:
        return cls(row.puid, row.state, row.attempts, {k: list(v) for k, v in row.errors.items()}, row.last_error,
                   row.uuid, row.queued_at, row.done_at)


def listing(session: Session, *, state: SubmissionState | None = None, after: str = "",
            limit: int = 100) -> list[SubmissionView]:
    """Submissions in ``puid`` order (a page ``after`` the last one seen), of one state or all."""
    query = select(SorSubmission).where(SorSubmission.puid > after)
    if state is not None:
        query = query.where(SorSubmission.state == state.value)
    return [SubmissionView.from_row(r) for r in session.scalars(query.order_by(SorSubmission.puid).limit(limit))]


def status(db: Database, *, enabled: bool) -> dict[str, Any]:
    """The ``/status`` fields: whether statements are submitted, and how many stand where (no puid, no error text)."""
    try:
        with db.read() as session:
            return {"submitting": enabled, "statements": counts(session)}
    except Exception:
        return {"submitting": enabled, "statements": {}}
