"""The hub's bookkeeping, service by service: linking, answers out of order, orders the contact point refuses."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import Claim, RetryPolicy, SendResult
from bastion.hub import services as hub
from bastion.orders.wire import AuthorityType, Feedback, Inability, InabilityReason, SigningKey, Verified
from tests.factories.orders import make_order

NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
CP = "https://platform.example"


def _world(db: Database) -> tuple[FrozenClock, hub.Authority, hub.Authority, SigningKey]:
    clock = FrozenClock(NOW)
    provider_key = SigningKey.generate()
    hub.register_provider(db, name="Bastion Video Ltd", contact_point_url=CP, member_state="FR", languages=["fr"],
                          public_keys=[provider_key.public_text], clock=clock)
    fr = hub.register_authority(db, name="OCLCTIC", member_state="FR", authority_type=AuthorityType.LAW_ENFORCEMENT,
                                public_keys=[SigningKey.generate().public_text], clock=clock, actor="test").authority
    de = hub.register_authority(db, name="BKA", member_state="DE", authority_type=AuthorityType.LAW_ENFORCEMENT,
                                public_keys=[SigningKey.generate().public_text], clock=clock, actor="test").authority
    return clock, fr, de, provider_key


def _issue(db: Database, authority: hub.Authority, reference: str, urls: list[str], clock: FrozenClock) -> dict:
    order = make_order(reference, urls=urls, contact_point=f"{CP}/v1/orders", member_state=authority.member_state,
                       establishment="FR", authority_name=authority.name)
    return hub.issue(db, authority, None, order, clock=clock, console_user="test")[0]


def _sent_urls(db: Database) -> list[list[str]]:
    with db.read() as session:
        return [m.payload["message"]["urls"] for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == hub.ORDER_KIND).order_by(OutboxMessage.id))]


def test_an_order_naming_new_content_too_is_sent_not_linked(hub_db: Database) -> None:
    clock, fr, de, _ = _world(hub_db)
    _issue(hub_db, fr, "FR-1", ["https://v.example/a"], clock)
    partly = _issue(hub_db, de, "DE-1", ["https://v.example/a", "https://v.example/b"], clock)
    assert partly["state"] == "queued" and partly["linked_to"] is None
    covered = _issue(hub_db, de, "DE-2", ["https://v.example/b"], clock)
    assert covered["state"] == "linked"
    assert _sent_urls(hub_db) == [["https://v.example/a"], ["https://v.example/a", "https://v.example/b"]]


def test_an_annex_iii_after_an_annex_ii_changes_nothing(hub_db: Database) -> None:
    clock, fr, _, provider_key = _world(hub_db)
    reference = _issue(hub_db, fr, "FR-1", ["https://v.example/a"], clock)["hub_reference"]
    verified = Verified(provider_key.key_id, "n1", NOW)
    header = {"order_reference": reference, "addressee": "Bastion Video Ltd", "issuing_authority": "OCLCTIC",
              "authority_file_number": "2026/42", "provider_reference": "cp-1",
              "received_at": NOW, "provider": "Bastion Video Ltd", "member_state": "FR",
              "authorised_person": "On duty", "contact_email": "cp@example.invalid", "signed_at": NOW}
    hub.record_answer(hub_db, verified, Feedback(**header, action="removed", action_at=NOW), clock=clock)
    late = hub.record_answer(hub_db, verified, Inability(**header, reason=InabilityReason.INSUFFICIENT_INFORMATION,
                                                         explanation="retry of an earlier answer"), clock=clock)
    assert late["state"] == "executed"


class _Refusing:
    def __init__(self, result: SendResult) -> None:
        self.result = result

    def send(self, claim: Claim) -> SendResult:
        return self.result


def _claim(reference: str, attempts: int) -> Claim:
    return Claim(1, hub.ORDER_KIND, f"{CP}/v1/orders", {"message": {"reference": reference}}, "k", attempts,
                 NOW + dt.timedelta(minutes=5))


def test_an_order_the_contact_point_refuses_for_good_is_marked_failed(hub_db: Database) -> None:
    clock, fr, _, _ = _world(hub_db)
    reference = _issue(hub_db, fr, "FR-1", ["https://v.example/a"], clock)["hub_reference"]
    sender = hub.HubSender(hub_db, _Refusing(SendResult(ok=False, status=422, error="invalid")), clock,
                           RetryPolicy(max_attempts=5))
    assert not sender.send(_claim(reference, 1)).ok
    view = hub.get_order(hub_db, None, reference)
    assert view["state"] == "failed" and view["events"][-1]["kind"] == "order.delivery_failed"


def test_a_stale_signature_is_retried_and_the_last_attempt_fails_the_order(hub_db: Database) -> None:
    clock, fr, _, _ = _world(hub_db)
    reference = _issue(hub_db, fr, "FR-1", ["https://v.example/a"], clock)["hub_reference"]
    sender = hub.HubSender(hub_db, _Refusing(SendResult(ok=False, status=401, error="outside_time_window")), clock,
                           RetryPolicy(max_attempts=3))
    first = sender.send(_claim(reference, 1))
    assert first.status is None and not first.permanent  # the outbox will try again
    assert hub.get_order(hub_db, None, reference)["state"] == "queued"
    sender.send(_claim(reference, 3))
    assert hub.get_order(hub_db, None, reference)["state"] == "failed"


def _queued(db: Database, reference: str) -> bool:
    with db.read() as session:
        return any(m.payload["message"]["reference"] == reference for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == hub.ORDER_KIND)))


def test_a_new_order_for_content_whose_order_failed_is_sent_not_linked(hub_db: Database) -> None:
    clock, fr, de, _ = _world(hub_db)
    failed = _issue(hub_db, fr, "FR-1", ["https://v.example/a"], clock)["hub_reference"]
    hub.HubSender(hub_db, _Refusing(SendResult(ok=False, status=404, error="misconfigured")), clock,
                  RetryPolicy(max_attempts=5)).send(_claim(failed, 1))
    assert hub.get_order(hub_db, None, failed)["state"] == "failed"
    again = _issue(hub_db, de, "DE-1", ["https://v.example/a"], clock)
    assert again["state"] == "queued" and again["linked_to"] is None and _queued(hub_db, again["hub_reference"])


def test_orders_linked_to_one_that_then_fails_are_sent_on_their_own(hub_db: Database) -> None:
    clock, fr, de, _ = _world(hub_db)
    first = _issue(hub_db, fr, "FR-1", ["https://v.example/a"], clock)["hub_reference"]
    later = _issue(hub_db, de, "DE-1", ["https://v.example/a"], clock)
    assert later["state"] == "linked" and not _queued(hub_db, later["hub_reference"])
    hub.HubSender(hub_db, _Refusing(SendResult(ok=False, status=410, error="gone")), clock,
                  RetryPolicy(max_attempts=5)).send(_claim(first, 1))
    view = hub.get_order(hub_db, None, later["hub_reference"])
    assert view["state"] == "queued" and view["linked_to"] is None and _queued(hub_db, later["hub_reference"])
    assert view["events"][-1]["kind"] == "order.unlinked"


def _inability(db: Database, reference: str, provider_key: SigningKey, clock: FrozenClock) -> dict:
    header = {"order_reference": reference, "addressee": "Bastion Video Ltd", "issuing_authority": "OCLCTIC",
              "authority_file_number": "2026/42", "provider_reference": "cp-1", "received_at": NOW,
              "provider": "Bastion Video Ltd", "member_state": "FR", "authorised_person": "On duty",
              "contact_email": "cp@example.invalid", "signed_at": NOW}
    return hub.record_answer(db, Verified(provider_key.key_id, "n1", NOW), Inability(
        **header, reason=InabilityReason.INSUFFICIENT_INFORMATION, explanation="not found"), clock=clock)


def test_an_unable_order_carries_no_later_order(hub_db: Database) -> None:
    clock, fr, de, provider_key = _world(hub_db)
    first = _issue(hub_db, fr, "FR-1", ["https://v.example/a"], clock)["hub_reference"]
    linked = _issue(hub_db, de, "DE-1", ["https://v.example/a"], clock)["hub_reference"]
    assert _inability(hub_db, first, provider_key, clock)["state"] == "unable"
    assert hub.get_order(hub_db, None, linked)["state"] == "queued" and _queued(hub_db, linked)
    after = _issue(hub_db, de, "DE-2", ["https://v.example/a"], clock)
    assert after["linked_to"] != first  # never linked to the unable order (DE-1 carries it now)


def test_an_order_naming_content_ids_the_earlier_one_lacks_is_sent(hub_db: Database) -> None:
    clock, fr, de, _ = _world(hub_db)
    _issue(hub_db, fr, "FR-1", ["https://v.example/a"], clock)
    order = make_order("DE-1", urls=["https://v.example/a"], content_ids=["video-42"],
                       contact_point=f"{CP}/v1/orders", member_state="DE", establishment="FR", authority_name="BKA")
    view = hub.issue(hub_db, de, None, order, clock=clock, console_user="test")[0]
    assert view["state"] == "queued" and view["linked_to"] is None
