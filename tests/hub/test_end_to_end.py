"""Hub and platform as two real uvicorn servers on loopback, talking signed HTTP both ways."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.models import OutboxMessage
from bastion.hub.app import create_hub_app
from bastion.hub.models import HubEvent
from bastion.moderation.models import ContentItem, ModerationEvent
from bastion.orders import services as orders
from bastion.orders.interfaces import SenderRole
from bastion.orders.models import OrderEvent, ReceivedOrder
from bastion.orders.wire import Clarification, SigningKey, signed_request
from bastion.web.app import create_app
from tests.factories.live import serve
from tests.factories.orders import make_order

URL = "https://video.example/v/abc123"


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Eventual delivery through outboxes and retries; a correctness wait, not a speed check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _count(db: Database, model: Any, *where: Any) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@dataclass
class Authority:
    key: SigningKey
    token: str
    member_state: str


@dataclass
class World:
    settings: Settings
    hub_settings: Settings
    db: Database
    hub_db: Database
    platform_key: SigningKey
    hub_key: SigningKey
    platform_port: int = 0
    hub_port: int = 0
    #: When each reference was first issued: a retry sends the very same order.
    issued: dict[str, dt.datetime] = field(default_factory=dict)

    @contextmanager
    def platform(self, *, refresh: bool = True, **overrides: Any) -> Iterator[str]:
        app = create_app(replace(self.settings, **overrides), db=self.db, refresh=refresh)
        with serve(app, port=self.platform_port) as base:
            self.platform_port = int(base.rsplit(":", 1)[1])
            yield base

    @contextmanager
    def hub(self, *, deliver: bool = True) -> Iterator[str]:
        with serve(create_hub_app(self.hub_settings, db=self.hub_db, deliver=deliver), port=self.hub_port) as base:
            self.hub_port = int(base.rsplit(":", 1)[1])
            yield base

    @property
    def platform_url(self) -> str:
        return f"http://127.0.0.1:{self.platform_port}"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    def connect(self, authorities: dict[str, str]) -> dict[str, Authority]:
        """Register the platform at the hub and the hub at the platform; register authorities (name → State)."""
        admin = {"Authorization": f"Bearer {auth.create_token(self.hub_db, role=Role.ADMIN, name='a', actor='t')}"}
        r = httpx.post(f"{self.hub_url}/v1/hub/providers", headers=admin, json={
            "name": "Bastion Video Ltd", "contact_point_url": self.platform_url, "member_state": "IE",
            "languages": ["en", "fr"], "public_keys": [self.platform_key.public_text]})
        assert r.status_code == 201, r.text
        orders.trust_key(self.db, name="hub", role=SenderRole.HUB, public_key=self.hub_key.public_text,
                         clock=SystemClock(), answer_url=f"{self.hub_url}/v1/hub/answers")
        out = {}
        for name, state in authorities.items():
            key = SigningKey.generate()
            r = httpx.post(f"{self.hub_url}/v1/hub/authorities", headers=admin, json={
                "name": name, "member_state": state, "authority_type": "law_enforcement",
                "public_keys": [key.public_text]})
            assert r.status_code == 201, r.text
            out[name] = Authority(key, r.json()["token"], state)
        return out

    def upload(self, content_id: str, url: str = URL) -> None:
        token = auth.create_token(self.db, role=Role.PLATFORM, name="p", actor="t")
        r = httpx.post(f"{self.platform_url}/v1/content", headers={"Authorization": f"Bearer {token}"}, data={
            "content_id": content_id, "account_id": "acct-1", "account_age": "30", "account_country": "FR",
            "content_type": "text", "text": "a video page", "url": url})
        assert r.status_code == 200, r.text

    def issue(self, authority: Authority, reference: str, url: str = URL) -> httpx.Response:
        order = make_order(reference, urls=[url], member_state=authority.member_state,
                           contact_point=self.platform_url,
                           issued_at=self.issued.setdefault(reference, dt.datetime.now(dt.UTC)),
                           authority_name=f"authority {authority.member_state}")
        body, headers = signed_request(authority.key, order, dt.datetime.now(dt.UTC))
        return httpx.post(f"{self.hub_url}/v1/hub/orders", content=body,
                          headers={**headers, "Authorization": f"Bearer {authority.token}"})

    def hub_order(self, authority: Authority, reference: str) -> dict[str, Any]:
        r = httpx.get(f"{self.hub_url}/v1/hub/orders/{reference}",
                      headers={"Authorization": f"Bearer {authority.token}"})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def content_status(self, content_id: str) -> str:
        with self.db.read() as session:
            item = session.get(ContentItem, content_id)
            assert item is not None
            return item.status


@pytest.fixture
def world(settings: Settings, db: Database, hub_db: Database) -> World:
    platform_key, hub_key = SigningKey.generate(), SigningKey.generate()
    fast = {"outbox_interval_seconds": 0.05}
    return World(replace(settings, orders_signing_key=platform_key.to_text(), orders_tick_seconds=0.2, **fast),
                 replace(settings, hub_database_url=hub_db.url, hub_signing_key=hub_key.to_text(), **fast),
                 db, hub_db, platform_key, hub_key)


def test_an_order_is_executed_and_its_feedback_recorded_at_the_hub(world: World) -> None:
    with world.platform(), world.hub():
        authorities = world.connect({"OCLCTIC": "FR", "BKA": "DE", "Garda": "IE"})
        fr, de, ie = authorities["OCLCTIC"], authorities["BKA"], authorities["Garda"]
        world.upload("vid-1")

        issued = world.issue(fr, "FR-2026-1")
        assert issued.status_code == 201, issued.text
        reference = issued.json()["hub_reference"]
        done = wait_for(lambda: (o := world.hub_order(fr, reference))["state"] == "executed" and o, "feedback")
        assert world.content_status("vid-1") == "removed"
        times = [dt.datetime.fromisoformat(done[k]) for k in ("issued_at", "sent_at", "acknowledged_at",
                                                                "answered_at")]
        assert times == sorted(times)
        assert done["answer"]["action"] == "removed" and done["action_at"] is not None
        assert done["scrutiny_member_state"] == "IE"  # cross-border: the host State got a copy for 72 h
        kinds = [e["kind"] for e in done["events"]]
        assert kinds[:2] == ["order.issued", "order.copy_to_host_state"]
        assert {"order.sent", "order.acknowledged", "order.feedback"} <= set(kinds)

        # The same authority retrying its request: the same order, not a second one.
        again = world.issue(fr, "FR-2026-1")
        assert again.status_code == 200 and again.json()["hub_reference"] == reference

        # Another authority, the same content: linked, not sent, and told which order it joins.
        later = world.issue(de, "DE-77")
        assert later.status_code == 201 and later.json()["state"] == "linked"
        assert later.json()["linked_to"] == reference and later.json()["linked_order"]["authority"] == "OCLCTIC"
        time.sleep(0.3)  # the outbox would have had time to send it, were it queued
        assert _count(world.db, ReceivedOrder) == 1

        # Art. 4 scrutiny by the host State: an infringement ends the order and the platform reinstates.
        assert httpx.post(f"{world.hub_url}/v1/hub/orders/{reference}/scrutiny", json={
            "infringement": True, "reasons": "x"}, headers={"Authorization": f"Bearer {fr.token}"}).status_code == 404
        ended = httpx.post(f"{world.hub_url}/v1/hub/orders/{reference}/scrutiny", json={
            "infringement": True, "reasons": "Not terrorist content: news reporting."},
            headers={"Authorization": f"Bearer {ie.token}"})
        assert ended.status_code == 200 and ended.json()["state"] == "ended"
        wait_for(lambda: world.content_status("vid-1") == "published", "reinstatement")
        # BKA's order, linked until now, stands on its own: queued to be sent after the reinstatement
        standing = httpx.get(f"{world.hub_url}/v1/hub/orders/{later.json()['hub_reference']}",
                             headers={"Authorization": f"Bearer {de.token}"}).json()
        assert standing["state"] == "queued" and standing["linked_to"] is None
        assert [e["kind"] for e in standing["events"]][-1] == "order.unlinked"


def test_unsigned_tampered_replayed_and_foreign_key_orders_are_refused_at_the_hub(world: World) -> None:
    with world.platform(), world.hub():
        authorities = world.connect({"OCLCTIC": "FR", "BKA": "DE"})
        fr, de = authorities["OCLCTIC"], authorities["BKA"]
        order = make_order("FR-9", contact_point=world.platform_url, issued_at=dt.datetime.now(dt.UTC))
        body, headers = signed_request(fr.key, order, dt.datetime.now(dt.UTC))
        token = {"Authorization": f"Bearer {fr.token}"}
        post = lambda content, extra: httpx.post(f"{world.hub_url}/v1/hub/orders", content=content,  # noqa: E731
                                                 headers={**extra, **token})
        assert post(body, {"Content-Type": "application/json"}).status_code == 401
        assert post(body.replace(b"abc123", b"abc999"), headers).json()["reason"] == "bad_signature"
        _, de_headers = signed_request(de.key, order, dt.datetime.now(dt.UTC))
        assert post(body, de_headers).json()["reason"] == "unknown_key"  # BKA's key, OCLCTIC's token
        assert post(body, headers).status_code == 201
        replay = post(body, headers)
        assert replay.status_code == 409 and replay.json()["reason"] == "replayed"
        no_token = httpx.post(f"{world.hub_url}/v1/hub/orders", content=body, headers=headers)
        assert no_token.status_code == 401
        # A forged answer (not signed by the provider's key) changes nothing.
        forged, forged_headers = signed_request(SigningKey.generate(), order, dt.datetime.now(dt.UTC))
        assert httpx.post(f"{world.hub_url}/v1/hub/answers", content=forged,
                          headers=forged_headers).status_code == 401


def test_no_order_is_lost_and_none_is_done_twice_across_restarts(world: World) -> None:
    # 1. The hub takes the order, then stops before delivering it.
    with world.platform(refresh=False), world.hub(deliver=False):
        fr = world.connect({"OCLCTIC": "FR"})["OCLCTIC"]
        world.upload("vid-1")
        reference = world.issue(fr, "FR-1").json()["hub_reference"]
    # 2. Restarted, it delivers; the platform acknowledges, then stops before acting (manual mode).
    with world.platform(orders_auto_execute=False), world.hub():
        wait_for(lambda: world.hub_order(fr, reference)["state"] == "delivered", "acknowledgement")
        assert world.content_status("vid-1") == "published"
    # 3. The platform restarts alone and executes on its own clock; the hub is down, so the feedback waits.
    with world.platform():
        wait_for(lambda: world.content_status("vid-1") == "removed", "execution after restart")
    assert _count(world.db, OutboxMessage, OutboxMessage.kind == "tco.feedback",
                  OutboxMessage.delivered_at.is_(None)) == 1
    # 4. Both back: the feedback arrives. 5. The hub's acknowledgement is lost and it sends again: same answer.
    with world.platform(), world.hub():
        wait_for(lambda: world.hub_order(fr, reference)["state"] == "executed", "feedback after restarts")
        with world.hub_db.write() as session:
            session.execute(update(OutboxMessage).where(OutboxMessage.kind == "tco.order").values(
                state="pending", next_attempt_at=dt.datetime.now(dt.UTC), delivered_at=None))
        wait_for(lambda: _count(world.db, OrderEvent, OrderEvent.kind == "order.repeated") == 1, "re-sent order")
    assert _count(world.db, ModerationEvent, ModerationEvent.kind == "content.actions_applied") == 1
    assert _count(world.db, ReceivedOrder) == 1
    assert _count(world.hub_db, HubEvent, HubEvent.kind == "order.feedback") == 1


def test_an_annex_iii_then_the_authority_s_clarification_gets_the_order_executed(world: World) -> None:
    with world.platform(), world.hub():
        fr = world.connect({"OCLCTIC": "FR"})["OCLCTIC"]
        world.upload("vid-7", url="https://video.example/v/seven")
        issued = world.issue(fr, "FR-7", url="https://video.example/v/wrong")
        reference = issued.json()["hub_reference"]
        unable = wait_for(lambda: (o := world.hub_order(fr, reference))["state"] == "unable" and o, "Annex III")
        assert unable["answer"]["reason"] == "insufficient_information"
        clarification = Clarification(order_reference=reference, explanation="The right item is vid-7.",
                                      content_ids=["vid-7"])
        body, headers = signed_request(fr.key, clarification, dt.datetime.now(dt.UTC))
        url = f"{world.hub_url}/v1/hub/orders/{reference}/clarification"
        r = httpx.post(url, content=body, headers={**headers, "Authorization": f"Bearer {fr.token}"})
        assert r.status_code == 200, r.text
        done = wait_for(lambda: (o := world.hub_order(fr, reference))["state"] == "executed" and o, "feedback")
        assert done["answer"]["action"] == "removed" and world.content_status("vid-7") == "removed"
        with world.db.read() as session:
            order = session.get(ReceivedOrder, reference)
            assert order is not None and order.clock_started_at > order.received_at  # the hour restarted
        again = httpx.post(url, content=signed_request(fr.key, clarification, dt.datetime.now(dt.UTC))[0],
                           headers={"Authorization": f"Bearer {fr.token}"})
        assert again.status_code == 401  # unsigned


def test_the_authority_s_signature_travels_and_a_linked_authority_sees_the_first_order_s_outcome(
        world: World) -> None:
    with world.platform(), world.hub():
        authorities = world.connect({"OCLCTIC": "FR", "BKA": "DE"})
        fr, de = authorities["OCLCTIC"], authorities["BKA"]
        # The platform trusts the French authority's key too, so it checks that authority's own signature.
        orders.trust_key(world.db, name="OCLCTIC", role=SenderRole.AUTHORITY, public_key=fr.key.public_text,
                         member_state="FR", clock=SystemClock(), answer_url=f"{world.hub_url}/v1/hub/answers")
        world.upload("vid-1")
        reference = world.issue(fr, "FR-2026-1").json()["hub_reference"]
        done = wait_for(lambda: (o := world.hub_order(fr, reference))["state"] == "executed" and o, "feedback")
        assert done["authority_key_id"] == fr.key.key_id  # Annex I section E, kept with the hub's record
        with world.db.read() as session:
            received = session.scalar(select(OrderEvent).where(OrderEvent.subject == reference,
                                                               OrderEvent.kind == "order.received"))
            assert received is not None and received.data["authority_signature"] == "verified"
        # Annex II section A as the reference names it
        answer = done["answer"]
        assert (answer["addressee"], answer["issuing_authority"], answer["authority_file_number"]) == (
            "Bastion Video Ltd", "authority FR", "PN-FR-2026-1")

        later = world.issue(de, "DE-77")
        assert later.status_code == 201 and later.json()["state"] == "linked"
        seen = world.hub_order(de, later.json()["hub_reference"])
        first = seen["linked_order"]
        assert first["hub_reference"] == reference and first["state"] == "executed"
        assert first["action_at"] == done["action_at"] and first["received_at"] == done["received_at"]
        assert first["answer"]["action"] == "removed" and first["answer"]["provider"] == done["answer"]["provider"]
        assert "authority_file_number" not in first["answer"]  # the first authority's own file stays its own
        assert httpx.get(f"{world.hub_url}/v1/hub/orders/{reference}",
                         headers={"Authorization": f"Bearer {de.token}"}).status_code == 404
