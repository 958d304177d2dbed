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
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from sqlalchemy import ColumnElement, CursorResult, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.core.clock import Clock, SystemClock
from bastion.core.db import Database
from bastion.core.outbox.models import DeliveryState, OutboxMessage
from bastion.core.worker import STOP_TIMEOUT_SECONDS, Worker

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 12
#: Long enough for a full batch of slow sends; a crashed deliverer's messages wait this long before a retry.
DEFAULT_LEASE_SECONDS = 300.0
#: 4xx answers that mean "try again later" rather than "this request is wrong".
RETRYABLE_4XX = frozenset({408, 425, 429})
MAX_ERROR_CHARS = 200


def is_permanent_status(status: int | None) -> bool:
    """A 4xx other than 408/425/429: sending the same request again cannot succeed."""
    return status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX


def short_error(text: str) -> str:
    """One line, at most ``MAX_ERROR_CHARS``: ``last_error`` is a hint for operators, not a log."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class Claim:
    """A leased message, detached from any session so it can travel to a sender with no transaction open."""

    id: int
    kind: str
    destination: str
    payload: dict[str, Any]
    idempotency_key: str
    #: The number of this attempt (1 for the first); also the fencing token ``record_outcome`` checks.
    attempts: int
    locked_until: dt.datetime


@dataclass(frozen=True)
class SendResult:
    """What a sender saw. ``permanent`` means retrying the same request cannot help."""

    ok: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False

    @classmethod
    def delivered(cls, status: int | None = None) -> SendResult:
        return cls(ok=True, status=status)

    @classmethod
    def retry(cls, error: str, status: int | None = None) -> SendResult:
        return cls(ok=False, status=status, error=error)

    @classmethod
    def give_up(cls, error: str, status: int | None = None) -> SendResult:
        return cls(ok=False, status=status, error=error, permanent=True)


class Sender(Protocol):
    """Delivers one claim. Return a result for every failure you understand; an exception counts as retryable."""

    def send(self, claim: Claim) -> SendResult: ...


@runtime_checkable
class GivesUp(Protocol):
    """A sender that must hear when the outbox gives up on one of its messages for good (refused, or out of
    attempts), to say so where people look (a report's delivery): senders never count attempts themselves."""

    def on_dead(self, claim: Claim, result: SendResult) -> None: ...


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


def _by_key(session: Session, idempotency_key: str) -> OutboxMessage | None:
    return session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))


def enqueue(
    session: Session,
    *,
    kind: str,
    destination: str,
    payload: dict[str, Any],
    idempotency_key: str,
    clock: Clock,
) -> OutboxMessage:
    """Add a message to the caller's transaction (never commits). A key already in the outbox returns that row.

    Derive the key from the decision (e.g. ``f"action:{action_id}"``), so a retried request cannot queue a second
    message. The unique constraint backs up the look-up when two transactions race; the loser gets the winner's row.
    """
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("idempotency_key must be 1 to 200 characters")
    if not kind or len(kind) > 64:
        raise ValueError("kind must be 1 to 64 characters")
    existing = _by_key(session, idempotency_key)
    if existing is not None:
        return existing
    # Fail now, in the deciding transaction, on what could never be sent.
    body = json.loads(json.dumps(payload, allow_nan=False))
    now = clock.now()
    message = OutboxMessage(
        kind=kind,
        destination=destination,
        payload=body,
        idempotency_key=idempotency_key,
        state=DeliveryState.PENDING.value,
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
        return existing
    return message


def claim_due(
    db: Database,
    *,
    limit: int,
    lease_seconds: float,
    clock: Clock,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[Claim]:
    """Lease up to ``limit`` due messages in one short transaction.

    Due means pending with ``next_attempt_at`` reached, or delivering with an expired lease (its deliverer died).
    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of deliverers take disjoint batches without waiting on
    each other; SQLite runs one writer at a time (``BEGIN IMMEDIATE``). The attempt is counted here, so a message
    that kills its deliverer every time still runs out of attempts instead of looping for ever.
    """
    now = clock.now()
    lease_end = now + dt.timedelta(seconds=lease_seconds)
    due = or_(
        and_(OutboxMessage.state == DeliveryState.PENDING.value, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.state == DeliveryState.DELIVERING.value, OutboxMessage.locked_until < now),
    )
    query = (
        select(OutboxMessage)
        .where(due)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claims: list[Claim] = []
    with db.write() as session:
        for message in session.scalars(query):
            if message.attempts >= max_attempts:  # only reachable through expired leases
                message.state = DeliveryState.DEAD.value
                message.locked_until = None
                message.last_error = short_error(f"lease expired on attempt {message.attempts}; out of attempts")
                continue
            message.state = DeliveryState.DELIVERING.value
            message.attempts += 1
            message.locked_until = lease_end
            claims.append(
                Claim(
                    id=message.id,
                    kind=message.kind,
                    destination=message.destination,
                    payload=message.payload,
                    idempotency_key=message.idempotency_key,
                    attempts=message.attempts,
                    locked_until=lease_end,
                )
            )
    return claims


def record_outcome(
    db: Database, claim: Claim, result: SendResult, *, clock: Clock, policy: RetryPolicy | None = None
) -> Outcome:
    """Write what a send achieved: delivered, retry later with back-off, or dead.

    A failure is written only while this claim still holds the lease (same ``attempts``), so a deliverer that was
    too slow cannot undo the work of the one that took over. A success is always written: it is a fact.
    """
    policy = policy or RetryPolicy()
    now = clock.now()
    row = OutboxMessage.id == claim.id
    values: dict[str, Any]
    guard: ColumnElement[bool]
    if result.ok:
        outcome = Outcome.DELIVERED
        guard = OutboxMessage.state.in_([DeliveryState.PENDING.value, DeliveryState.DELIVERING.value])
        values = {"state": DeliveryState.DELIVERED.value, "delivered_at": now, "locked_until": None}
    else:
        guard = and_(OutboxMessage.state == DeliveryState.DELIVERING.value, OutboxMessage.attempts == claim.attempts)
        error = result.error or (f"HTTP {result.status}" if result.status is not None else "failed")
        if result.permanent or is_permanent_status(result.status):
            outcome = Outcome.DEAD
            values = {"state": DeliveryState.DEAD.value, "locked_until": None, "last_error": short_error(error)}
        elif claim.attempts >= policy.max_attempts:
            outcome = Outcome.DEAD
            error = f"{error} (gave up after {claim.attempts} attempts)"
            values = {"state": DeliveryState.DEAD.value, "locked_until": None, "last_error": short_error(error)}
        else:
            outcome = Outcome.RETRY
            values = {
                "state": DeliveryState.PENDING.value,
                "locked_until": None,
                "next_attempt_at": now + policy.delay(claim.attempts),
                "last_error": short_error(error),
            }
    with db.write() as session:
        done = cast(CursorResult[Any], session.execute(update(OutboxMessage).where(row, guard).values(**values)))
        written = done.rowcount
    return outcome if written else Outcome.LOST


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
    with db.write() as session:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == claim.id,
                OutboxMessage.state == DeliveryState.DELIVERING.value,
                OutboxMessage.attempts == claim.attempts,
            )
            .values(
                state=DeliveryState.PENDING.value,
                attempts=claim.attempts - 1,
                locked_until=None,
                next_attempt_at=clock.now(),
            )
        )


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

    Claims whose lease is in its last fifth are handed back unsent rather than risk a second deliverer sending
    the same message in parallel; keep ``lease_seconds`` well above ``limit`` times the sender's timeout.
    """
    policy = policy or RetryPolicy()
    claims = claim_due(db, limit=limit, lease_seconds=lease_seconds, clock=clock, max_attempts=policy.max_attempts)
    margin = dt.timedelta(seconds=lease_seconds / 5)
    counts: Counter[Outcome] = Counter()
    released = 0
    for claim in claims:
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
        outcome = record_outcome(db, claim, result, clock=clock, policy=policy)
        if outcome is Outcome.DEAD and isinstance(sender, GivesUp):
            try:
                sender.on_dead(claim, result)
            except Exception as exc:  # the message is dead whatever the hook does; the batch goes on
                log.error("outbox on_dead hook raised %s on message %s (%s)", type(exc).__name__, claim.id,
                          claim.kind)
        counts[outcome] += 1
    return DeliveryReport(
        claimed=len(claims),
        delivered=counts[Outcome.DELIVERED],
        retrying=counts[Outcome.RETRY],
        dead=counts[Outcome.DEAD],
        lost=counts[Outcome.LOST],
        released=released,
    )


class OutboxWorker:
    """Runs ``deliver_due`` every ``interval`` seconds on a daemon thread, and at once again after a full batch.

    A failing round (database down, say) is counted and logged, and the next round tries again: the outbox is the
    retry mechanism, so the worker itself must never die of an error.
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
        self.failures = 0
        self.last_error: str | None = None
        self.last_report: DeliveryReport | None = None
        self._worker = Worker(self._round, interval, "bastion-outbox", on_error=self._failed)

    def run_once(self) -> DeliveryReport:
        report = deliver_due(
            self.db, self.sender, clock=self.clock, limit=self.limit, lease_seconds=self.lease_seconds,
            policy=self.policy,
        )
        self.last_report = report
        return report

    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float | None = STOP_TIMEOUT_SECONDS) -> None:
        self._worker.stop(timeout)

    @property
    def running(self) -> bool:
        return self._worker.running

    def _round(self) -> bool:
        """One delivery round; ``True`` when the batch was full, so the next round starts at once."""
        return self.run_once().claimed >= self.limit

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = short_error(type(exc).__name__)


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


class SenderByKind:
    """Hands each claim to the sender registered for its kind prefix (e.g. ``"report."``), else to ``default``.

    For messages that are not one signed POST (a multi-step upload to NCMEC, say): one outbox, one worker, and
    each domain brings its own way of delivering. Prefixes are checked at construction: none may shadow another.
    """

    def __init__(self, default: Sender, by_prefix: dict[str, Sender]) -> None:
        for a in by_prefix:
            for b in by_prefix:
                if a != b and b.startswith(a):
                    raise ValueError(f"outbox sender prefix {b!r} is shadowed by {a!r}")
        self.default = default
        self.by_prefix = dict(by_prefix)

    def send(self, claim: Claim) -> SendResult:
        return self._sender(claim).send(claim)

    def on_dead(self, claim: Claim, result: SendResult) -> None:
        sender = self._sender(claim)
        if isinstance(sender, GivesUp):
            sender.on_dead(claim, result)

    def _sender(self, claim: Claim) -> Sender:
        return next((s for prefix, s in self.by_prefix.items() if claim.kind.startswith(prefix)), self.default)
