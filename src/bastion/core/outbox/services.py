"""Write messages with the decision that causes them; deliver them after commit, at least once.

A message is added to the caller's session, so it commits or rolls back with the decision: a crash can lose neither
half. Delivery happens later and outside any transaction (STYLE rule 7): ``claim_due`` leases a batch in one short
transaction, the sender talks to the network with no transaction open, and ``record_outcome`` writes what happened.
A deliverer that dies mid-batch loses nothing: its lease expires and another deliverer sends the message again with
the same idempotency key, so receivers must drop repeats by that key (at-least-once, never at-most-once).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.core.clock import Clock, SystemClock
from bastion.core.db import Database
from bastion.core.errors import DomainError
from bastion.core.outbox.delivery import (
    MAX_ERROR_CHARS,
    RETRYABLE_4XX,
    Claim,
    SendResult,
    Step,
    is_permanent_status,
    next_delivery,
    short_error,
    sources,
    step_for,
)
from bastion.core.outbox.kinds import GivesUp, MessageKind, Priority, Routes, Sender, UnknownKind
from bastion.core.outbox.models import DeliveryState, OutboxMessage
from bastion.core.worker import STOP_TIMEOUT_SECONDS, Rounds, Worker

__all__ = [  # the outbox's public face: the delivery data and the kinds live in their own modules
    "DEFAULT_LEASE_SECONDS", "DEFAULT_MAX_ATTEMPTS", "MAX_ERROR_CHARS", "RETRYABLE_4XX", "Claim", "DeadHook",
    "DeliveryReport", "GivesUp", "MessageKind", "OutboxConflict", "OutboxWorker", "Outcome", "Priority",
    "RetryPolicy", "Routes", "SendResult", "Sender", "UnknownKind", "body_key", "claim_due", "deliver_due",
    "enqueue", "is_permanent_status", "outbox_status", "pending_counts", "record_outcome", "renew_lease",
    "short_error",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 12
#: Long enough for a full batch of slow sends; a crashed deliverer's messages wait this long before a retry.
DEFAULT_LEASE_SECONDS = 300.0
#: Called once when the outbox gives up on a message for good, with the result that ended it.
DeadHook = Callable[[Claim, SendResult], None]


@dataclass
class RetryPolicy:
    """Exponential back-off with jitter, so a receiver coming back from an outage is not hit by every message at once.

    The wait after attempt n is ``min(cap, base * 2**(n-1))`` times a random factor in ``1 ± jitter``: the cap applies
    before the jitter, so the longest wait is ``cap * (1 + jitter)`` and capped retries still spread out.
    """

    base_seconds: float = 2.0
    cap_seconds: float = 3600.0
    jitter: float = 0.2
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> dt.timedelta:
        raw = min(self.cap_seconds, self.base_seconds * 2.0 ** min(max(attempt - 1, 0), 64))
        factor = self.rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else 1.0
        return dt.timedelta(seconds=raw * factor)


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"
    #: The lease had passed to another deliverer, whose outcome counts; this one was not written.
    LOST = "lost"


@dataclass(frozen=True)
class DeliveryReport:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    lost: int = 0
    #: Claims not sent because their lease was nearly over; they are due again at once.
    released: int = 0


class OutboxConflict(DomainError):
    """A key already queued with another body: a retry must send what was decided, never something else."""

    status = 409
    title = "Outbox conflict"


def _canonical(payload: dict[str, Any]) -> Any:
    """The body as stored (JSON's own values), so a body read back compares equal to the one queued."""
    return json.loads(json.dumps(payload, allow_nan=False))


def body_key(prefix: str, payload: dict[str, Any]) -> str:
    """An idempotency key that covers the body: ``prefix`` (what the message is about) and a digest of the canonical
    JSON body. The same decision queued twice is one message; a changed body (a record's new descriptors) is a new
    one, never dropped as a repeat of the old. At most 200 characters (``prefix`` is cut to fit)."""
    digest = hashlib.sha256(json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":")).encode()
                            ).hexdigest()[:32]
    return f"{prefix[:200 - 33]}:{digest}"


def _by_key(session: Session, idempotency_key: str) -> OutboxMessage | None:
    return session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))


def enqueue(
    session: Session,
    *,
    kind: MessageKind,
    destination: str,
    payload: dict[str, Any],
    idempotency_key: str,
    clock: Clock,
    priority: Priority = Priority.NORMAL,
    strict: bool = False,
) -> OutboxMessage:
    """Add a message to the caller's transaction (never commits). A key already in the outbox returns that row.

    Derive the key from the decision (e.g. ``f"action:{action_id}"``), so a retried request cannot queue a second
    message. The unique constraint backs up the look-up when two transactions race; the loser gets the winner's row.
    ``kind`` must be a declared ``MessageKind``: a loose string is refused, so every kind has a sender somewhere.
    ``priority`` puts a message ahead of every due message of a lower one (an urgent forward before a backlog).
    ``strict``: the key stands for this body only; the same key queued with another body (or kind, or destination)
    is an ``OutboxConflict`` (409), not a silent return of the first message (use ``body_key`` for such keys).
    """
    if not isinstance(kind, MessageKind):
        raise UnknownKind(f"outbox kind {kind!r} is not a declared MessageKind")
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("idempotency_key must be 1 to 200 characters")
    if not kind or len(kind) > 64:
        raise ValueError("kind must be 1 to 64 characters")
    # Fail now, in the deciding transaction, on what could never be sent.
    body = _canonical(payload)
    existing = _by_key(session, idempotency_key)
    if existing is not None:
        return _same(existing, kind, destination, body) if strict else existing
    now = clock.now()
    message = OutboxMessage(
        kind=kind.value,
        destination=destination,
        payload=body,
        idempotency_key=idempotency_key,
        state=DeliveryState.PENDING.value,
        priority=int(priority),
        attempts=0,
        next_attempt_at=now,
        locked_until=None,
        last_error="",
        created_at=now,
        delivered_at=None,
    )
    try:
        with session.begin_nested():  # a savepoint: a lost race must not doom the caller's transaction
            session.add(message)
    except IntegrityError:
        existing = _by_key(session, idempotency_key)
        if existing is None:
            raise
        return _same(existing, kind, destination, body) if strict else existing
    return message


def _same(existing: OutboxMessage, kind: MessageKind, destination: str, body: Any) -> OutboxMessage:
    if (existing.kind, existing.destination, existing.payload) != (kind.value, destination, body):
        raise OutboxConflict(f"outbox key {existing.idempotency_key} is queued already with another message")
    return existing


def _claim(message: OutboxMessage, lease_end: dt.datetime) -> Claim:
    return Claim(id=message.id, kind=message.kind, destination=message.destination, payload=message.payload,
                 idempotency_key=message.idempotency_key, attempts=message.attempts, locked_until=lease_end)


@dataclass(frozen=True)
class _Round:
    """One claim's leases, and the messages it found out of attempts (their deliverer died on the last one)."""

    claims: list[Claim]
    dead: list[tuple[Claim, SendResult]]


def _claim_round(db: Database, *, limit: int, lease_seconds: float, clock: Clock, max_attempts: int) -> _Round:
    now = clock.now()
    lease_end = now + dt.timedelta(seconds=lease_seconds)
    due = or_(
        and_(OutboxMessage.state == DeliveryState.PENDING.value, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.state == DeliveryState.DELIVERING.value, OutboxMessage.locked_until < now),
    )
    query = (
        select(OutboxMessage)
        .where(due)
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    found = _Round([], [])
    with db.write() as session:
        for message in session.scalars(query):
            state = next_delivery(DeliveryState(message.state), Step.CLAIM, attempts=message.attempts,
                                  max_attempts=max_attempts)
            message.state, message.locked_until = state.value, None
            if state is DeliveryState.DEAD:  # only reachable through expired leases
                message.last_error = short_error(f"lease expired on attempt {message.attempts}; out of attempts")
                found.dead.append((_claim(message, now), SendResult.give_up(message.last_error)))
                continue
            message.attempts += 1
            message.locked_until = lease_end
            found.claims.append(_claim(message, lease_end))
    return found


def claim_due(
    db: Database,
    *,
    limit: int,
    lease_seconds: float,
    clock: Clock,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[Claim]:
    """Lease up to ``limit`` due messages in one short transaction, highest priority first, then longest due.

    Due means pending with ``next_attempt_at`` reached, or delivering with an expired lease (its deliverer died).
    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of deliverers take disjoint batches without waiting on
    each other; SQLite runs one writer at a time (``BEGIN IMMEDIATE``). The attempt is counted here, so a message
    that kills its deliverer every time still runs out of attempts instead of looping for ever.
    """
    return _claim_round(db, limit=limit, lease_seconds=lease_seconds, clock=clock, max_attempts=max_attempts).claims


def _record(db: Database, claim: Claim, result: SendResult, *, clock: Clock, policy: RetryPolicy) -> Outcome:
    now = clock.now()
    step = step_for(result)
    state = next_delivery(DeliveryState.DELIVERING, step, attempts=claim.attempts, max_attempts=policy.max_attempts)
    guard: ColumnElement[bool] = OutboxMessage.state.in_([s.value for s in sources(step)])
    values: dict[str, Any] = {"state": state.value, "locked_until": None}
    if step is Step.DELIVERED:
        outcome = Outcome.DELIVERED
        values["delivered_at"] = now
    else:
        guard = and_(guard, OutboxMessage.attempts == claim.attempts)  # still this deliverer's message
        error = result.error or (f"HTTP {result.status}" if result.status is not None else "failed")
        if state is DeliveryState.DEAD:
            outcome = Outcome.DEAD
            if step is Step.FAILED:
                error = f"{error} (gave up after {claim.attempts} attempts)"
        else:
            outcome = Outcome.RETRY
            values["next_attempt_at"] = now + policy.delay(claim.attempts)
        values["last_error"] = short_error(error)
    with db.write() as session:
        done = cast(CursorResult[Any], session.execute(
            update(OutboxMessage).where(OutboxMessage.id == claim.id, guard).values(**values)))
        written = done.rowcount
    return outcome if written else Outcome.LOST


def record_outcome(
    db: Database, claim: Claim, result: SendResult, *, clock: Clock, policy: RetryPolicy | None = None,
    on_dead: DeadHook | None = None,
) -> Outcome:
    """Write what a send achieved: delivered, retry later with back-off, or dead (then ``on_dead`` hears it).

    A failure is written only while this claim still holds the lease (same ``attempts``), so a deliverer that was
    too slow cannot undo the work of the one that took over. A success is always written: it is a fact.
    """
    outcome = _record(db, claim, result, clock=clock, policy=policy or RetryPolicy())
    if outcome is Outcome.DEAD and on_dead is not None:
        _tell_dead(on_dead, claim, result)
    return outcome


def _tell_dead(on_dead: DeadHook, claim: Claim, result: SendResult) -> None:
    """The message is dead already, whatever the hook does: a failing hook is logged and the round goes on."""
    try:
        on_dead(claim, result)
    except Exception as exc:
        log.error("outbox on_dead hook raised %s on message %s (%s)", type(exc).__name__, claim.id, claim.kind)


def renew_lease(session: Session, claim: Claim, *, clock: Clock,
                lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
    """Extend ``claim``'s lease, in the caller's transaction, if it still holds it; ``False`` when it was lost.

    For senders whose message is several calls (NCMEC's submit, upload, finish): fence each step with it, so a
    deliverer whose lease ran out and was taken over never makes the next call or writes over the new one's work.
    """
    held = and_(OutboxMessage.id == claim.id, OutboxMessage.state == DeliveryState.DELIVERING.value,
                OutboxMessage.attempts == claim.attempts, OutboxMessage.locked_until >= clock.now())
    until = clock.now() + dt.timedelta(seconds=lease_seconds)
    done = cast(CursorResult[Any], session.execute(update(OutboxMessage).where(held).values(locked_until=until)))
    return done.rowcount == 1


def _release(db: Database, claim: Claim, *, clock: Clock) -> None:
    """Hand back an unsent claim: due again at once, and the attempt it never made does not count."""
    state = next_delivery(DeliveryState.DELIVERING, Step.RELEASE, attempts=claim.attempts, max_attempts=claim.attempts)
    with db.write() as session:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == claim.id,
                OutboxMessage.state.in_([s.value for s in sources(Step.RELEASE)]),
                OutboxMessage.attempts == claim.attempts,
            )
            .values(
                state=state.value,
                attempts=claim.attempts - 1,
                locked_until=None,
                next_attempt_at=clock.now(),
            )
        )


def _hook_of(sender: Sender) -> DeadHook | None:
    return sender.on_dead if isinstance(sender, GivesUp) else None


def deliver_due(
    db: Database,
    sender: Sender,
    *,
    clock: Clock,
    limit: int = 50,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    policy: RetryPolicy | None = None,
) -> DeliveryReport:
    """Claim a batch, send each message with no transaction open, and record each outcome.

    A message the outbox gives up on for good (refused, out of attempts, or its deliverer died on the last one) is
    handed to the sender's ``on_dead`` when it has one (``GivesUp``; ``Routes`` passes it to the kind's sender).
    Claims whose lease is in its last fifth are handed back unsent rather than risk a second deliverer sending
    the same message in parallel; keep ``lease_seconds`` well above ``limit`` times the sender's timeout.
    """
    policy = policy or RetryPolicy()
    on_dead = _hook_of(sender)
    found = _claim_round(db, limit=limit, lease_seconds=lease_seconds, clock=clock, max_attempts=policy.max_attempts)
    for claim, result in found.dead:
        if on_dead is not None:
            _tell_dead(on_dead, claim, result)
    margin = dt.timedelta(seconds=lease_seconds / 5)
    counts: Counter[Outcome] = Counter()
    released = 0
    for claim in found.claims:
        if clock.now() >= claim.locked_until - margin:
            _release(db, claim, clock=clock)
            released += 1
            continue
        try:
            result = sender.send(claim)
        except Exception as exc:  # a broken sender must not strand the rest of the batch
            # Only the type: an exception's text may carry a URL with credentials or a piece of the payload.
            log.warning("outbox sender raised %s on message %s (%s)", type(exc).__name__, claim.id, claim.kind)
            result = SendResult.retry(f"sender raised {type(exc).__name__}")
        counts[record_outcome(db, claim, result, clock=clock, policy=policy, on_dead=on_dead)] += 1
    return DeliveryReport(
        claimed=len(found.claims),
        delivered=counts[Outcome.DELIVERED],
        retrying=counts[Outcome.RETRY],
        dead=counts[Outcome.DEAD],
        lost=counts[Outcome.LOST],
        released=released,
    )


class OutboxWorker:
    """Runs ``deliver_due`` every ``interval`` seconds on a daemon thread, and at once again after a full batch.

    A failing round (database down, say) is counted and logged, and the next round tries again: the outbox is the
    retry mechanism, so the worker itself must never die of an error. ``start`` checks a ``Routes`` sender against
    the database first (``Routes.check``): undelivered messages of a kind nobody here delivers stop the start.
    """

    def __init__(
        self,
        db: Database,
        sender: Sender,
        interval: float = 1.0,
        clock: Clock | None = None,
        *,
        limit: int = 50,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.db = db
        self.sender = sender
        self.interval = interval
        self.clock: Clock = clock or SystemClock()
        self.limit = limit
        self.lease_seconds = lease_seconds
        self.policy = policy or RetryPolicy()
        self.last_report: DeliveryReport | None = None
        self._worker = Worker(self._round, interval, "bastion-outbox")

    def run_once(self) -> DeliveryReport:
        report = deliver_due(
            self.db, self.sender, clock=self.clock, limit=self.limit, lease_seconds=self.lease_seconds,
            policy=self.policy,
        )
        self.last_report = report
        return report

    def start(self) -> None:
        if isinstance(self.sender, Routes):
            self.sender.check(self.db)
        self._worker.start()

    def stop(self, timeout: float | None = STOP_TIMEOUT_SECONDS) -> None:
        self._worker.stop(timeout)

    @property
    def running(self) -> bool:
        return self._worker.running

    @property
    def rounds(self) -> Rounds:
        return self._worker.rounds

    def _round(self) -> bool:
        """One delivery round; ``True`` when the batch was full, so the next round starts at once."""
        return self.run_once().claimed >= self.limit


def pending_counts(session: Session) -> dict[DeliveryState, int]:
    """Messages per state, every state present (zero when empty), for health and status pages."""
    counts = dict.fromkeys(DeliveryState, 0)
    for state, n in session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)):
        counts[DeliveryState(state)] = n
    return counts


def outbox_status(db: Database) -> dict[str, Any]:
    """The ``/status`` body of an app whose work is its outbox: ``status``, ``database`` and messages per state.

    A database that does not answer makes the app ``degraded`` (never an error page): the check must stay cheap
    and say nothing but the reachability and the counts.
    """
    try:
        with db.read() as session:
            counts = {state.value: n for state, n in pending_counts(session).items()}
    except Exception:
        return {"status": "degraded", "database": "unreachable", "outbox": {}}
    return {"status": "ok", "database": "ok", "outbox": counts}
