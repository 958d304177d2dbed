"""Lease fencing for multi-step senders (``renew_lease``) and the shared ``/status`` body (``outbox_status``)."""

from __future__ import annotations

import datetime as dt

from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox import services as outbox
from bastion.core.outbox.models import DeliveryState
from tests.factories.outbox import SampleMessage

NOW = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)


def _queue(db: Database, clock: FrozenClock) -> None:
    with db.write() as session:
        outbox.enqueue(session, kind=SampleMessage.STEP, destination="http://127.0.0.1:9/", payload={},
                       idempotency_key="k-1", clock=clock)


def test_a_lease_is_renewed_while_held_and_refused_once_taken_over(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock)
    (first,) = outbox.claim_due(db, limit=1, lease_seconds=60, clock=clock)
    clock.advance(seconds=50)
    with db.write() as session:
        assert outbox.renew_lease(session, first, clock=clock, lease_seconds=60)  # held: now until +110 s
    clock.advance(seconds=30)
    assert outbox.claim_due(db, limit=1, lease_seconds=60, clock=clock) == []  # the renewal kept it
    clock.advance(seconds=31)  # the lease runs out; another deliverer takes the message over
    (second,) = outbox.claim_due(db, limit=1, lease_seconds=60, clock=clock)
    with db.write() as session:
        assert not outbox.renew_lease(session, first, clock=clock, lease_seconds=60)
        assert outbox.renew_lease(session, second, clock=clock, lease_seconds=60)


def test_outbox_status_counts_messages_or_says_degraded(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock)
    status = outbox.outbox_status(db)
    assert status["status"] == "ok" and status["database"] == "ok"
    assert status["outbox"] == {s.value: int(s is DeliveryState.PENDING) for s in DeliveryState}
    down = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert outbox.outbox_status(down) == {"status": "degraded", "database": "unreachable", "outbox": {}}
    finally:
        down.dispose()
