"""The delivery's one transition function as a table; priority and ``on_dead`` through the real outbox."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox import services as outbox
from bastion.core.outbox.delivery import (
    Claim,
    InvalidDelivery,
    SendResult,
    Step,
    next_delivery,
    sources,
    step_for,
)
from bastion.core.outbox.kinds import Priority
from bastion.core.outbox.models import DeliveryState, OutboxMessage
from tests.factories.outbox import SampleMessage

P, D, OK, X = DeliveryState.PENDING, DeliveryState.DELIVERING, DeliveryState.DELIVERED, DeliveryState.DEAD
NOW = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)

# (state, step, attempts so far, max attempts) -> the state it leaves the message in
TABLE = [
    (P, Step.CLAIM, 0, 3, D),
    (P, Step.CLAIM, 2, 3, D),
    (D, Step.CLAIM, 2, 3, D),  # its deliverer's lease expired: another takes it
    (D, Step.CLAIM, 3, 3, X),  # ... unless that was the last attempt
    (D, Step.DELIVERED, 1, 3, OK),
    (P, Step.DELIVERED, 1, 3, OK),  # a success is a fact, even after the lease passed on
    (D, Step.FAILED, 1, 3, P),
    (D, Step.FAILED, 3, 3, X),
    (D, Step.REFUSED, 1, 3, X),
    (D, Step.RELEASE, 2, 3, P),
]
REFUSED_MOVES = [
    (OK, Step.CLAIM), (X, Step.CLAIM), (OK, Step.DELIVERED), (X, Step.DELIVERED), (P, Step.FAILED),
    (OK, Step.FAILED), (P, Step.REFUSED), (X, Step.REFUSED), (P, Step.RELEASE), (OK, Step.RELEASE),
]


@pytest.mark.parametrize(("state", "step", "attempts", "most", "after"), TABLE)
def test_next_delivery(state: DeliveryState, step: Step, attempts: int, most: int, after: DeliveryState) -> None:
    assert next_delivery(state, step, attempts=attempts, max_attempts=most) is after


@pytest.mark.parametrize(("state", "step"), REFUSED_MOVES)
def test_a_step_that_cannot_happen_is_refused(state: DeliveryState, step: Step) -> None:
    assert state not in sources(step)
    with pytest.raises(InvalidDelivery):
        next_delivery(state, step, attempts=1, max_attempts=3)


@pytest.mark.parametrize(("result", "step"), [
    (SendResult.delivered(204), Step.DELIVERED),
    (SendResult.retry("HTTP 503", 503), Step.FAILED),
    (SendResult.retry("HTTP 429", 429), Step.FAILED),
    (SendResult(ok=False, status=422), Step.REFUSED),  # a 4xx is permanent even unflagged
    (SendResult.give_up("bad URL"), Step.REFUSED),
    (SendResult.retry("network"), Step.FAILED),
])
def test_a_send_result_is_one_step(result: SendResult, step: Step) -> None:
    assert step_for(result) is step


# --- priority ---------------------------------------------------------------------------------------------------


def _queue(db: Database, clock: FrozenClock, key: str, priority: Priority = Priority.NORMAL) -> None:
    with db.write() as session:
        outbox.enqueue(session, kind=SampleMessage.ACTION, destination="http://127.0.0.1:9/", payload={"key": key},
                       idempotency_key=key, clock=clock, priority=priority)


class Answering:
    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.sent: list[str] = []
        self.dead: list[tuple[str, str | None]] = []

    def send(self, claim: Claim) -> SendResult:
        self.sent.append(claim.idempotency_key)
        return self.results.pop(0) if self.results else SendResult.delivered()

    def on_dead(self, claim: Claim, result: SendResult) -> None:
        self.dead.append((claim.idempotency_key, result.error))


def test_a_higher_priority_is_claimed_before_messages_due_longer(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock, "old")
    clock.advance(seconds=60)
    _queue(db, clock, "urgent", Priority.URGENT)
    _queue(db, clock, "new")
    assert [c.idempotency_key for c in outbox.claim_due(db, limit=3, lease_seconds=60, clock=clock)] == \
        ["urgent", "old", "new"]


def test_priority_does_not_skip_a_back_off(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock, "urgent", Priority.URGENT)
    sender = Answering(SendResult.retry("HTTP 503", 503))
    policy = outbox.RetryPolicy(base_seconds=10, jitter=0)
    assert outbox.deliver_due(db, sender, clock=clock, limit=1, policy=policy).retrying == 1
    clock.advance(seconds=5)  # a backlog arrives during the urgent message's back-off, and goes meanwhile
    _queue(db, clock, "backlog")
    _queue(db, clock, "later")
    outbox.deliver_due(db, sender, clock=clock, limit=1, policy=policy)
    clock.advance(seconds=5)  # the back-off has passed: the urgent message before the backlog due longer
    outbox.deliver_due(db, sender, clock=clock, limit=1, policy=policy)
    assert sender.sent == ["urgent", "backlog", "urgent"]


# --- on_dead ----------------------------------------------------------------------------------------------------


def test_on_dead_hears_a_refused_message_once(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock, "a")
    sender = Answering(SendResult(ok=False, status=410, error="gone"))
    assert outbox.deliver_due(db, sender, clock=clock).dead == 1
    assert outbox.deliver_due(db, sender, clock=clock).claimed == 0
    assert sender.dead == [("a", "gone")]


def test_on_dead_hears_the_last_attempt_and_not_the_ones_before(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock, "a")
    sender = Answering(*[SendResult.retry("HTTP 503", 503)] * 3)
    policy = outbox.RetryPolicy(base_seconds=1, jitter=0, max_attempts=3)
    for _ in range(2):
        assert outbox.deliver_due(db, sender, clock=clock, policy=policy).retrying == 1
        assert sender.dead == []
        clock.advance(seconds=60)
    assert outbox.deliver_due(db, sender, clock=clock, policy=policy).dead == 1
    assert sender.dead == [("a", "HTTP 503")]


def test_on_dead_hears_a_message_whose_deliverer_died_on_its_last_attempt(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock, "a")
    assert len(outbox.claim_due(db, limit=1, lease_seconds=30, clock=clock, max_attempts=1)) == 1  # then it dies
    clock.advance(seconds=31)
    sender = Answering()
    outbox.deliver_due(db, sender, clock=clock, policy=outbox.RetryPolicy(max_attempts=1))
    assert sender.sent == [] and len(sender.dead) == 1 and "out of attempts" in (sender.dead[0][1] or "")
    with db.read() as session:
        assert session.scalars(select(OutboxMessage.state)).one() == "dead"


def test_a_failing_on_dead_hook_does_not_strand_the_batch(db: Database) -> None:
    clock = FrozenClock(NOW)
    for key in ("a", "b"):
        _queue(db, clock, key)

    class Broken(Answering):
        def on_dead(self, claim: Claim, result: SendResult) -> None:
            raise RuntimeError("the hook's own database is down")

    sender = Broken(SendResult.give_up("no"), SendResult.delivered())
    report = outbox.deliver_due(db, sender, clock=clock)
    assert (report.dead, report.delivered) == (1, 1)
