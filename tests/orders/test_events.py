"""The contact point's order states move through one pure function, tested as a table over every (state, change)
pair; every event kind has exactly one payload model, and a payload reads back as it was written."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from bastion.core.db import Database
from bastion.orders import events
from bastion.orders.events import InvalidOrderTransition, OrderChange, OrderEventKind, OrderState, next_state
from bastion.orders.models import OrderEvent
from bastion.orders.wire import InabilityReason

R, E, U, X, F, V = (OrderState.RECEIVED, OrderState.EXECUTED, OrderState.UNABLE, OrderState.REINSTATED,
                    OrderState.REFERRED, OrderState.REFERRAL_IN_REVIEW)
ALL = (R, E, U, X, F, V)
# Every (state, change) pair: the resulting state (the state itself: a repeat, nothing is done), or None where the
# change is refused (409).
TABLE: list[tuple[OrderState | None, OrderChange, OrderState | None]] = [
    (None, OrderChange.RECEIVE_ORDER, R), *[(s, OrderChange.RECEIVE_ORDER, s) for s in ALL],
    (None, OrderChange.RECEIVE_REFERRAL, F), *[(s, OrderChange.RECEIVE_REFERRAL, s) for s in ALL],
    (R, OrderChange.EXECUTE, E), *[(s, OrderChange.EXECUTE, s) for s in (E, U, X, F, V)],
    (R, OrderChange.DECLARE_UNABLE, U), *[(s, OrderChange.DECLARE_UNABLE, None) for s in (E, U, X, F, V)],
    (U, OrderChange.CLARIFY, R), *[(s, OrderChange.CLARIFY, s) for s in (R, E, X, F, V)],
    *[(s, OrderChange.REINSTATE, X) for s in (R, E, U, F, V)], (X, OrderChange.REINSTATE, X),
    (F, OrderChange.REFER, V), *[(s, OrderChange.REFER, s) for s in (R, E, U, X, V)],
    *[(None, c, None) for c in (OrderChange.EXECUTE, OrderChange.DECLARE_UNABLE, OrderChange.CLARIFY,
                                OrderChange.REINSTATE, OrderChange.REFER)],
]


@pytest.mark.parametrize(("state", "change", "expected"), TABLE)
def test_transition_table(state: OrderState | None, change: OrderChange, expected: OrderState | None) -> None:
    if expected is None:
        with pytest.raises(InvalidOrderTransition) as refused:
            next_state(state, change, reference="HUB-1")
        assert refused.value.status == 409 and "'HUB-1'" in str(refused.value)
    else:
        assert next_state(state, change) is expected


def test_table_is_complete() -> None:
    pairs = [(s, c) for s, c, _ in TABLE]
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == {(s, c) for s in (None, *OrderState) for c in OrderChange}


def test_every_kind_has_one_payload_model() -> None:
    assert set(events.PAYLOADS) == set(OrderEventKind)
    assert all(model.KIND is kind for kind, model in events.PAYLOADS.items())


def test_a_payload_reads_back_typed_and_a_changed_one_fails_at_the_read(db: Database) -> None:
    at = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
    with db.write() as session:
        events.write(session, "HUB-1", "user:sam", at,
                     events.Unable(reason=InabilityReason.MANIFEST_ERROR, explanation="the URL is of another site"))
        events.write(session, "HUB-1", "contact-point", at, events.PreservationExtended(until=at))
    with db.read() as session:
        unable, extended = session.query(OrderEvent).order_by(OrderEvent.id).all()
        assert unable.subject == "HUB-1" and unable.kind == "order.unable"
        assert events.read(unable) == events.Unable(reason=InabilityReason.MANIFEST_ERROR,
                                                    explanation="the URL is of another site")
        read = events.read(extended)
        assert isinstance(read, events.PreservationExtended) and read.until == at
    with db.write() as session:
        session.get(OrderEvent, unable.id).data = {"reason": "manifest_error"}  # type: ignore[union-attr]
    with db.read() as session, pytest.raises(ValidationError):
        events.read(session.get(OrderEvent, unable.id))  # type: ignore[arg-type]
