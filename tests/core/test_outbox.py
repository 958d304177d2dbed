"""The outbox against a real HTTP receiver: written with the decision, delivered at least once, signed, retried."""

from __future__ import annotations

import datetime as dt
import json
import random
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox import services as outbox
from bastion.core.outbox.models import DeliveryState, OutboxMessage
from bastion.core.outbox.webhooks import WebhookSender, canonical_body, sign, verify_signature
from tests.factories.outbox import SampleMessage
from tests.factories.receiver import Receiver
from tests.factories.waiting import until

SECRET = b"s3cret-webhook-key"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def sender(clock: FrozenClock) -> Iterator[WebhookSender]:
    with WebhookSender(SECRET, timeout=5, clock=clock) as s:
        yield s


def _enqueue(db: Database, clock: FrozenClock, destination: str, key: str = "action:1", **payload: Any) -> int:
    with db.write() as session:
        return outbox.enqueue(session, kind=SampleMessage.ACTION, destination=destination,
                              payload=payload or {"action": "remove", "content_id": "c-1"}, idempotency_key=key,
                              clock=clock).id


def _row(db: Database, message_id: int) -> OutboxMessage:
    with db.read() as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        return message


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody-home"


NO_JITTER = outbox.RetryPolicy(jitter=0.0)


# --- enqueue ------------------------------------------------------------------------------------------------------


def test_enqueue_in_a_rolled_back_transaction_leaves_nothing(db: Database, clock: FrozenClock) -> None:
    with pytest.raises(RuntimeError), db.write() as session:
        outbox.enqueue(session, kind=SampleMessage.ACTION, destination="http://x.invalid/", payload={"a": 1},
                       idempotency_key="k", clock=clock)
        session.flush()
        raise RuntimeError("the decision failed")
    with db.read() as session:
        assert session.scalars(select(OutboxMessage)).all() == []
        assert outbox.pending_counts(session)[DeliveryState.PENDING] == 0


def test_enqueue_commits_with_the_caller_and_never_on_its_own(db: Database, clock: FrozenClock) -> None:
    with db.write() as session:
        message = outbox.enqueue(session, kind=SampleMessage.K, destination="http://x.invalid/", payload={"a": 1},
                                 idempotency_key="k", clock=clock)
        with db.read() as other:  # not visible before the caller commits
            assert other.scalars(select(OutboxMessage)).all() == []
    row = _row(db, message.id)
    assert (row.state, row.attempts, row.next_attempt_at, row.payload) == ("pending", 0, T0, {"a": 1})


def test_same_idempotency_key_is_one_message(db: Database, clock: FrozenClock) -> None:
    first = _enqueue(db, clock, "http://x.invalid/", key="action:7")
    with db.write() as session:  # twice in one transaction, once more in another
        a = outbox.enqueue(session, kind=SampleMessage.ACTION, destination="http://y.invalid/", payload={"b": 2},
                           idempotency_key="action:8", clock=clock)
        b = outbox.enqueue(session, kind=SampleMessage.ACTION, destination="http://y.invalid/", payload={"b": 2},
                           idempotency_key="action:8", clock=clock)
        c = outbox.enqueue(session, kind=SampleMessage.ACTION, destination="http://z.invalid/", payload={"c": 3},
                           idempotency_key="action:7", clock=clock)
        assert a.id == b.id
        assert c.id == first and c.destination == "http://x.invalid/"
    with db.read() as session:
        assert len(session.scalars(select(OutboxMessage)).all()) == 2


def test_racing_enqueuers_of_one_key_get_one_message(db: Database, clock: FrozenClock) -> None:
    """The second transaction cannot see the first's uncommitted row: the unique constraint decides."""
    seen: list[int] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with db.write() as session:
                seen.append(outbox.enqueue(session, kind=SampleMessage.K, destination="http://b.invalid/", payload={},
                                           idempotency_key="race", clock=clock).id)
        except BaseException as exc:
            errors.append(exc)

    with db.write() as session:
        first = outbox.enqueue(session, kind=SampleMessage.K, destination="http://a.invalid/", payload={},
                               idempotency_key="race", clock=clock)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)  # it waits on our lock (PostgreSQL: the unique index; SQLite: the write lock)
        assert thread.is_alive()
    thread.join(30)
    assert not errors and seen == [first.id]
    with db.read() as session:
        assert len(session.scalars(select(OutboxMessage)).all()) == 1


def test_enqueue_rejects_what_could_never_be_sent(db: Database, clock: FrozenClock) -> None:
    with pytest.raises((TypeError, ValueError)), db.write() as session:
        outbox.enqueue(session, kind=SampleMessage.K, destination="http://x.invalid/", payload={"when": T0},
                       idempotency_key="k", clock=clock)
    with pytest.raises(ValueError), db.write() as session:
        outbox.enqueue(session, kind=SampleMessage.K, destination="http://x.invalid/", payload={}, idempotency_key="",
                       clock=clock)


# --- delivery -----------------------------------------------------------------------------------------------------


def test_delivered_once_signed_with_the_idempotency_key(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender
) -> None:
    message_id = _enqueue(db, clock, receiver.url, key="action:42", action="remove", content_id="c-42")

    report = outbox.deliver_due(db, sender, clock=clock)
    assert (report.claimed, report.delivered) == (1, 1)
    assert outbox.deliver_due(db, sender, clock=clock).claimed == 0  # nothing left to send

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == "/hooks/bastion"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "action:42"
    assert request.headers["Bastion-Event"] == "moderation.action"
    assert request.body == b'{"action":"remove","content_id":"c-42"}'
    signature = request.headers["Bastion-Signature"]
    assert signature.startswith(f"t={int(T0.timestamp())},v1=")
    assert verify_signature(SECRET, signature, request.body, now=clock.now())
    assert SECRET.decode() not in json.dumps(request.headers)

    row = _row(db, message_id)
    assert (row.state, row.attempts, row.delivered_at, row.locked_until) == ("delivered", 1, T0, None)


def test_503_twice_then_success_backs_off_by_the_policy(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender
) -> None:
    message_id = _enqueue(db, clock, receiver.url)
    receiver.answer_next(2, 503)

    assert outbox.deliver_due(db, sender, clock=clock, policy=NO_JITTER).retrying == 1
    row = _row(db, message_id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + dt.timedelta(seconds=2))
    assert row.last_error == "HTTP 503"

    clock.advance(seconds=1.9)  # not due yet
    assert outbox.deliver_due(db, sender, clock=clock, policy=NO_JITTER).claimed == 0
    clock.advance(seconds=0.1)
    assert outbox.deliver_due(db, sender, clock=clock, policy=NO_JITTER).retrying == 1
    row = _row(db, message_id)
    assert (row.attempts, row.next_attempt_at) == (2, clock.now() + dt.timedelta(seconds=4))

    clock.advance(seconds=3.9)
    assert outbox.deliver_due(db, sender, clock=clock, policy=NO_JITTER).claimed == 0
    clock.advance(seconds=0.1)
    assert outbox.deliver_due(db, sender, clock=clock, policy=NO_JITTER).delivered == 1
    row = _row(db, message_id)
    assert (row.state, row.attempts, row.delivered_at) == ("delivered", 3, T0 + dt.timedelta(seconds=6))
    assert receiver.keys() == ["action:1"] * 3


def test_backoff_uses_the_injected_random(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender
) -> None:
    message_id = _enqueue(db, clock, receiver.url)
    receiver.answer_next(1, 503)
    outbox.deliver_due(db, sender, clock=clock, policy=outbox.RetryPolicy(rng=random.Random(7)))
    expected = outbox.RetryPolicy(rng=random.Random(7)).delay(1)
    assert _row(db, message_id).next_attempt_at == T0 + expected
    assert expected != dt.timedelta(seconds=2)


def test_policy_is_exponential_capped_and_jittered() -> None:
    exact = [NO_JITTER.delay(n).total_seconds() for n in range(1, 15)]
    assert exact[:4] == [2, 4, 8, 16]
    assert exact[10] == 2048 and exact[11:] == [3600, 3600, 3600]
    policy = outbox.RetryPolicy(rng=random.Random(1))
    for n in (1, 5, 13):
        base = NO_JITTER.delay(n).total_seconds()
        samples = [policy.delay(n).total_seconds() for _ in range(200)]
        assert all(0.8 * base <= s <= 1.2 * base for s in samples)
        assert max(samples) - min(samples) > 0.25 * base  # it does spread
    assert NO_JITTER.delay(10_000).total_seconds() == 3600


def test_400_is_dead_and_not_retried(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender
) -> None:
    message_id = _enqueue(db, clock, receiver.url, note="PAYLOAD-MARKER")
    receiver.answer_next(1, 400)
    assert outbox.deliver_due(db, sender, clock=clock).dead == 1
    clock.advance(hours=2)
    assert outbox.deliver_due(db, sender, clock=clock).claimed == 0
    assert len(receiver.requests) == 1
    row = _row(db, message_id)
    assert (row.state, row.attempts, row.last_error) == ("dead", 1, "HTTP 400")  # no echoed body, no secret


@pytest.mark.parametrize("status", [408, 425, 429, 500])
def test_retryable_statuses(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender, status: int
) -> None:
    message_id = _enqueue(db, clock, receiver.url)
    receiver.answer_next(1, status)
    assert outbox.deliver_due(db, sender, clock=clock).retrying == 1
    assert _row(db, message_id).state == "pending"


def test_connection_refused_is_retried(db: Database, clock: FrozenClock, sender: WebhookSender) -> None:
    url = _refused_url() + "?token=hunter2"
    message_id = _enqueue(db, clock, url)
    assert outbox.deliver_due(db, sender, clock=clock, policy=NO_JITTER).retrying == 1
    row = _row(db, message_id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + dt.timedelta(seconds=2))
    assert "ConnectError" in row.last_error
    assert "hunter2" not in row.last_error and len(row.last_error) <= outbox.MAX_ERROR_CHARS


def test_without_a_secret_nothing_is_sent(db: Database, clock: FrozenClock, receiver: Receiver) -> None:
    message_id = _enqueue(db, clock, receiver.url)
    unsigned = WebhookSender(b"", clock=clock)
    assert not unsigned.configured
    assert outbox.deliver_due(db, unsigned, clock=clock).retrying == 1
    assert receiver.requests == []
    assert _row(db, message_id).last_error == "webhook secret not configured"
    unsigned.close()


def test_bad_url_is_dead(db: Database, clock: FrozenClock, sender: WebhookSender) -> None:
    message_id = _enqueue(db, clock, "ftp://example.invalid/x")
    assert outbox.deliver_due(db, sender, clock=clock).dead == 1
    assert _row(db, message_id).state == "dead"


def test_dead_after_max_attempts(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender
) -> None:
    message_id = _enqueue(db, clock, receiver.url)
    receiver.answer_next(10, 503)
    policy = outbox.RetryPolicy(jitter=0.0, max_attempts=3)
    outcomes = []
    for _ in range(5):
        outcomes.append(outbox.deliver_due(db, sender, clock=clock, policy=policy))
        clock.advance(minutes=1)
    assert [(r.retrying, r.dead) for r in outcomes] == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    row = _row(db, message_id)
    assert (row.state, row.attempts) == ("dead", 3)
    assert "gave up after 3 attempts" in row.last_error
    assert len(receiver.requests) == 3


def test_crashed_deliverer_is_redone_after_its_lease_with_the_same_key(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender
) -> None:
    message_id = _enqueue(db, clock, receiver.url, key="action:99")
    [claim] = outbox.claim_due(db, limit=10, lease_seconds=60, clock=clock)
    assert sender.send(claim).ok  # sent, then the process died before recording the outcome

    clock.advance(seconds=59)  # still leased: nobody else touches it
    assert outbox.deliver_due(db, sender, clock=clock).claimed == 0
    clock.advance(seconds=2)
    assert outbox.deliver_due(db, sender, clock=clock).delivered == 1

    assert receiver.keys() == ["action:99", "action:99"]  # at least once; the receiver drops the repeat
    assert receiver.requests[0].body == receiver.requests[1].body
    row = _row(db, message_id)
    assert (row.state, row.attempts) == ("delivered", 2)

    # The dead deliverer's late failure report must not undo the newer outcome.
    late = outbox.record_outcome(db, claim, outbox.SendResult.retry("HTTP 503", 503), clock=clock)
    assert late == outbox.Outcome.LOST
    assert _row(db, message_id).state == "delivered"


def test_a_slow_deliverers_failure_does_not_override_the_new_lease(db: Database, clock: FrozenClock) -> None:
    message_id = _enqueue(db, clock, "http://x.invalid/")
    [old] = outbox.claim_due(db, limit=1, lease_seconds=60, clock=clock)
    clock.advance(seconds=61)
    [new] = outbox.claim_due(db, limit=1, lease_seconds=60, clock=clock)
    assert (old.id, old.attempts, new.attempts) == (message_id, 1, 2)
    result = outbox.record_outcome(db, old, outbox.SendResult.retry("timeout"), clock=clock)
    assert result == outbox.Outcome.LOST
    row = _row(db, message_id)
    assert (row.state, row.locked_until) == ("delivering", new.locked_until)


def test_a_message_that_keeps_killing_its_deliverer_runs_out(db: Database, clock: FrozenClock) -> None:
    message_id = _enqueue(db, clock, "http://x.invalid/")
    for _ in range(3):
        assert len(outbox.claim_due(db, limit=1, lease_seconds=60, clock=clock, max_attempts=3)) == 1
        clock.advance(seconds=61)
    assert outbox.claim_due(db, limit=1, lease_seconds=60, clock=clock, max_attempts=3) == []
    assert _row(db, message_id).state == "dead"


def test_a_claim_near_the_end_of_its_lease_is_handed_back_unsent(db: Database, clock: FrozenClock) -> None:
    message_id = _enqueue(db, clock, "http://x.invalid/")

    sent: list[int] = []

    class SlowSender:
        def send(self, claim: outbox.Claim) -> outbox.SendResult:
            sent.append(claim.id)
            clock.advance(seconds=50)  # the first send eats most of the lease
            return outbox.SendResult.delivered(200)

    second = _enqueue(db, clock, "http://x.invalid/", key="action:2")
    report = outbox.deliver_due(db, SlowSender(), clock=clock, lease_seconds=60)
    assert (report.delivered, report.released) == (1, 1)
    assert sent == [message_id]
    row = _row(db, second)
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 0, clock.now())


def test_a_sender_that_raises_fails_only_its_own_message(db: Database, clock: FrozenClock) -> None:
    first = _enqueue(db, clock, "http://x.invalid/", key="a")
    second = _enqueue(db, clock, "http://x.invalid/", key="b")

    class Flaky:
        def send(self, claim: outbox.Claim) -> outbox.SendResult:
            if claim.id == first:
                raise RuntimeError("boom with secret hunter2")
            return outbox.SendResult.delivered(200)

    report = outbox.deliver_due(db, Flaky(), clock=clock)
    assert (report.retrying, report.delivered) == (1, 1)
    assert _row(db, first).last_error == "sender raised RuntimeError"
    assert _row(db, second).state == "delivered"


def test_concurrent_deliverers_never_share_a_message(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender
) -> None:
    """Each message is sent exactly once when nobody crashes. Meaningful on PostgreSQL (SKIP LOCKED)."""
    total, rounds = 40, 30
    for i in range(total):
        _enqueue(db, clock, receiver.url, key=f"action:{i}")
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    class Recording:
        def __init__(self, slot: int) -> None:
            self.slot = slot

        def send(self, claim: outbox.Claim) -> outbox.SendResult:
            claimed[self.slot].append(claim.id)
            return sender.send(claim)

    def deliverer(slot: int) -> None:
        try:
            for _ in range(rounds):  # both claim at the same moment, round after round
                barrier.wait(10)
                outbox.deliver_due(db, Recording(slot), clock=clock, limit=2)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliverer, args=(slot,)) for slot in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(receiver.keys()) == sorted(f"action:{i}" for i in range(total))  # each once, none missing
    with db.read() as session:
        assert outbox.pending_counts(session) == {
            DeliveryState.PENDING: 0, DeliveryState.DELIVERING: 0, DeliveryState.DELIVERED: total,
            DeliveryState.DEAD: 0,
        }


def test_pending_counts(db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender) -> None:
    _enqueue(db, clock, receiver.url, key="a")
    _enqueue(db, clock, receiver.url, key="b")
    _enqueue(db, clock, receiver.url, key="c")
    receiver.answer_next(1, 400)
    outbox.deliver_due(db, sender, clock=clock, limit=2)
    with db.read() as session:
        assert outbox.pending_counts(session) == {
            DeliveryState.PENDING: 1, DeliveryState.DELIVERING: 0, DeliveryState.DELIVERED: 1,
            DeliveryState.DEAD: 1,
        }


# --- worker -------------------------------------------------------------------------------------------------------



def test_worker_delivers_in_the_background(
    db: Database, clock: FrozenClock, receiver: Receiver, sender: WebhookSender
) -> None:
    worker = outbox.OutboxWorker(db, sender, interval=0.05, clock=clock)
    worker.start()
    try:
        message_id = _enqueue(db, clock, receiver.url)
        assert until(lambda: _row(db, message_id).state == "delivered")
    finally:
        worker.stop()
    assert not worker.running
    assert len(receiver.requests) == 1
    assert worker.run_once().claimed == 0


def test_worker_survives_a_failing_round(tmp_path: Any, clock: FrozenClock, sender: WebhookSender) -> None:
    broken = Database(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    worker = outbox.OutboxWorker(broken, sender, interval=0.01, clock=clock)
    worker.start()
    try:
        assert until(lambda: worker.rounds.failures >= 3)
        assert worker.running
        assert worker.rounds.last_error == "OperationalError" and worker.rounds.failures_in_a_row >= 3
    finally:
        worker.stop()
        broken.dispose()


# --- signatures ---------------------------------------------------------------------------------------------------


def test_verify_signature() -> None:
    body = canonical_body({"b": [1, 2], "a": "é"})
    assert body == '{"a":"é","b":[1,2]}'.encode()
    t = int(T0.timestamp())
    header = sign(SECRET, t, body)
    assert verify_signature(SECRET, header, body, now=T0)
    assert verify_signature(SECRET, header, body.decode(), now=T0 + dt.timedelta(seconds=300))
    assert verify_signature(SECRET, f"{header},v1={'0' * 64}", body, now=T0)  # rotation: any v1 may match

    assert not verify_signature(SECRET, header, body.replace(b"1", b"3"), now=T0)  # altered body
    assert not verify_signature(b"other-secret", header, body, now=T0)  # wrong secret
    assert not verify_signature(SECRET, header, body, now=T0 + dt.timedelta(seconds=301))  # stale
    assert not verify_signature(SECRET, header, body, now=T0 - dt.timedelta(seconds=301))  # from the future
    assert not verify_signature(SECRET, header, body, now=T0 + dt.timedelta(seconds=31), tolerance=30)
    forged_time = header.replace(f"t={t}", f"t={t + 100}")
    assert not verify_signature(SECRET, forged_time, body, now=T0 + dt.timedelta(seconds=100))
    for bad in ("", "garbage", f"t={t}", f"v1={'0' * 64}", f"t=abc,v1={'0' * 64}", f"t={t},t={t},{header}"):
        assert not verify_signature(SECRET, bad, body, now=T0)
