"""The platform's contact point over HTTP: signed orders in, moderation actions, Annex II/III out, the hour's clock."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import OutboxWorker
from bastion.core.outbox.webhooks import WebhookSender, canonical_body
from bastion.core.sealing import new_key
from bastion.moderation.models import ContentItem, ModerationEvent, StatementOfReasons
from bastion.orders import services
from bastion.orders.interfaces import SenderRole
from bastion.orders.models import OrderEvent, PreservedContent, ReceivedOrder
from bastion.orders.wire import (
    AUTHORITY_SIGNATURE,
    SIGNATURE_HEADER,
    AuthoritySignature,
    Clarification,
    Feedback,
    Inability,
    Referral,
    Reinstatement,
    RemovalOrder,
    SigningKey,
    WireMessage,
    envelope,
    parse,
    signed_request,
    verify,
)
from bastion.review.models import Case
from bastion.web.app import create_app, outbox_routes
from tests.factories.orders import make_order, order_fields, raw_signature_header
from tests.factories.receiver import Receiver

START = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
URL = "https://video.example/v/abc123"
Header = Callable[[Role], dict[str, str]]


@dataclass
class Platform:
    client: TestClient
    db: Database
    clock: FrozenClock
    hub: SigningKey
    platform: SigningKey
    receiver: Receiver
    settings: Settings

    def send(self, message: WireMessage, key: SigningKey | None = None) -> Any:
        body, headers = signed_request(key or self.hub, message, self.clock.now())
        return self.client.post("/v1/orders", content=body, headers=headers)

    def deliver(self) -> None:
        routes = outbox_routes(replace(self.settings, webhook_secret=b"hmac-secret"), self.clock,
                               reports=WebhookSender(b"", clock=self.clock))  # no report is queued here
        OutboxWorker(self.db, routes, clock=self.clock).run_once()

    def answers(self) -> list[WireMessage]:
        keys = {self.platform.key_id: self.platform.public}
        out = []
        for request in self.receiver.requests:
            verify(request.headers, request.body, keys=keys.get, now=self.clock.now())
            out.append(parse(json.loads(request.body)))
        return out

    def upload(self, header: Header, content_id: str, url: str = URL) -> None:
        r = self.client.post("/v1/content", data={
            "content_id": content_id, "account_id": "acct-1", "account_age": "30", "account_country": "FR",
            "content_type": "text", "text": "a video page", "url": url}, headers=header(Role.PLATFORM))
        assert r.status_code == 200, r.text


def _platform(settings: Settings, db: Database, receiver: Receiver, **overrides: Any) -> Iterator[Platform]:
    clock = FrozenClock(START)
    hub, platform = SigningKey.generate(), SigningKey.generate()
    configured = replace(settings, orders_signing_key=platform.to_text(), media_key=new_key(), **overrides)
    services.trust_key(db, name="hub", role=SenderRole.HUB, public_key=hub.public_text, clock=clock,
                       answer_url=receiver.url)
    with TestClient(create_app(configured, db=db, clock=clock, refresh=False)) as client:
        yield Platform(client, db, clock, hub, platform, receiver, configured)


@pytest.fixture
def cp(settings: Settings, db: Database, receiver: Receiver) -> Iterator[Platform]:
    yield from _platform(settings, db, receiver)


@pytest.fixture
def manual_cp(settings: Settings, db: Database, receiver: Receiver) -> Iterator[Platform]:
    yield from _platform(settings, db, receiver, orders_auto_execute=False,
                         orders_escalation_url=receiver.url.replace("/hooks/", "/duty/"))


def _count(db: Database, model: Any, *where: Any) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_an_order_removes_the_content_through_moderation_and_answers_with_annex_ii(cp: Platform,
                                                                                  auth_header: Header) -> None:
    cp.upload(auth_header, "vid-1")
    r = cp.send(make_order("HUB-1", urls=[URL]))
    assert r.status_code == 200, r.text
    ack = r.json()
    assert ack["order_reference"] == "HUB-1" and ack["state"] == "executed"
    assert ack["received_at"].startswith("2026-11-29T10:00:00")
    with cp.db.read() as session:
        item = session.get(ContentItem, "vid-1")
        assert item is not None and item.status == "removed"
        actions = session.scalars(select(ModerationEvent).where(ModerationEvent.kind == "content.actions_applied"))
        assert [e.actor for e in actions] == ["order:HUB-1"]
        statement = session.scalar(select(StatementOfReasons).where(StatementOfReasons.content_id == "vid-1"))
        assert statement is not None and "HUB-1" in str(statement.body["decision_facts"])
    cp.deliver()
    [feedback] = cp.answers()  # signed with the platform's key, verified here
    assert isinstance(feedback, Feedback)
    assert feedback.order_reference == "HUB-1" and feedback.action == "removed" and feedback.action_at == START
    assert feedback.provider_reference == ack["provider_reference"]
    # Annex II section A: the addressee and the issuing authority as the order names them, with its file number
    assert (feedback.addressee, feedback.issuing_authority, feedback.authority_file_number) == (
        "Bastion Video Ltd", "OCLCTIC", "PN-HUB-1")
    assert cp.receiver.requests[0].headers["Bastion-Event"] == "tco.feedback"


def test_the_same_order_again_is_the_same_order_and_nothing_is_done_twice(cp: Platform, auth_header: Header) -> None:
    cp.upload(auth_header, "vid-1")
    first = cp.send(make_order("HUB-1", urls=[URL])).json()
    cp.clock.advance(seconds=30)
    again = cp.send(make_order("HUB-1", urls=[URL]))  # a retry by the hub: a fresh signature, the same order
    assert again.status_code == 200 and again.json() == first
    assert _count(cp.db, ModerationEvent, ModerationEvent.kind == "content.actions_applied") == 1
    assert _count(cp.db, OutboxMessage, OutboxMessage.kind == "tco.feedback") == 1
    with cp.db.read() as session:
        kinds = list(session.scalars(select(OrderEvent.kind).order_by(OrderEvent.id)))
    assert kinds == ["order.received", "order.executed", "order.preserved", "order.content_provider_informed",
                     "order.repeated"]
    changed = cp.send(make_order("HUB-1", urls=["https://video.example/v/other"]))
    assert changed.status_code == 409 and changed.headers["content-type"] == "application/problem+json"


def test_unsigned_altered_replayed_stale_and_unknown_messages_are_refused_and_change_nothing(
        cp: Platform, auth_header: Header, caplog: pytest.LogCaptureFixture) -> None:
    cp.upload(auth_header, "vid-1")
    body, headers = signed_request(cp.hub, make_order("HUB-1", urls=[URL]), cp.clock.now())
    answers = {
        "unsigned": cp.client.post("/v1/orders", content=body, headers={"Content-Type": "application/json"}),
        "altered": cp.client.post("/v1/orders", content=body.replace(b"Video", b"Audio"), headers=headers),
        "unknown": cp.send(make_order("HUB-2", urls=[URL]), key=SigningKey.generate()),
    }
    stale_body, stale_headers = signed_request(cp.hub, make_order("HUB-3", urls=[URL]),
                                               cp.clock.now() - dt.timedelta(minutes=10))
    answers["stale"] = cp.client.post("/v1/orders", content=stale_body, headers=stale_headers)
    for name, answer in answers.items():
        assert answer.status_code == 401, name
        assert answer.headers["content-type"] == "application/problem+json"
    assert _count(cp.db, ReceivedOrder) == 0
    assert cp.client.post("/v1/orders", content=body, headers=headers).status_code == 200
    replay = cp.client.post("/v1/orders", content=body, headers=headers)  # the same request captured and re-sent
    assert replay.status_code == 409 and replay.json()["reason"] == "replayed"
    assert "signed message refused: replayed" in caplog.text and cp.hub.to_text() not in caplog.text
    assert _count(cp.db, ModerationEvent, ModerationEvent.kind == "content.actions_applied") == 1


def test_an_invalid_order_is_refused_with_the_field_named(cp: Platform) -> None:
    body, headers = signed_request(cp.hub, make_order(), cp.clock.now())
    bad = body.replace(b'"issuing_member_state":"FR"', b'"issuing_member_state":"XX"')
    headers = {"Content-Type": "application/json", **cp.hub.headers(bad, cp.clock.now())}
    r = cp.client.post("/v1/orders", content=bad, headers=headers)
    assert r.status_code == 422 and "issuing_member_state" in r.json()["detail"]
    assert _count(cp.db, ReceivedOrder) == 0


def test_an_authority_key_may_only_order_for_its_own_member_state(cp: Platform, auth_header: Header) -> None:
    german = SigningKey.generate()
    services.trust_key(cp.db, name="BKA", role=SenderRole.AUTHORITY, public_key=german.public_text,
                       member_state="DE", clock=cp.clock, answer_url=cp.receiver.url)
    r = cp.send(make_order("FR-1", urls=[URL]), key=german)
    assert r.status_code == 403 and r.json()["reason"] == "not_allowed"
    cp.upload(auth_header, "vid-1")
    german_order = make_order("DE-1", urls=[URL], member_state="DE")
    assert cp.send(german_order, key=german).json()["state"] == "executed"


def test_content_not_found_answers_annex_iii_and_a_clarification_restarts_the_clock(
        cp: Platform, auth_header: Header) -> None:
    r = cp.send(make_order("HUB-1", urls=["https://video.example/v/unknown"]))
    assert r.json()["state"] == "unable"
    cp.deliver()
    [inability] = cp.answers()
    assert isinstance(inability, Inability) and inability.reason == "insufficient_information"
    assert "exact URL" in inability.explanation
    cp.upload(auth_header, "vid-9", url="https://video.example/v/9")
    cp.clock.advance(minutes=70)
    r = cp.send(Clarification(order_reference="HUB-1", explanation="The content id is vid-9.",
                              content_ids=["vid-9"]))
    assert r.status_code == 200 and r.json()["state"] == "executed"
    with cp.db.read() as session:
        order = session.get(ReceivedOrder, "HUB-1")
        assert order is not None and order.clock_started_at == START + dt.timedelta(minutes=70)
        assert order.deadline_at == START + dt.timedelta(minutes=130) and order.content_ids == ["vid-9"]
        item = session.get(ContentItem, "vid-9")
        assert item is not None and item.status == "removed"
        # the order as received is kept as it was; the clarification is beside it
        assert order.body == make_order("HUB-1", urls=["https://video.example/v/unknown"]).model_dump(mode="json")
        assert order.clarified == {"urls": [], "content_ids": ["vid-9"]}
    again = cp.send(make_order("HUB-1", urls=["https://video.example/v/unknown"]))  # a late retry of the original
    assert again.status_code == 200 and again.json()["state"] == "executed"


def test_escalations_at_15_45_55_minutes_then_overdue(manual_cp: Platform, auth_header: Header) -> None:
    cp = manual_cp
    cp.upload(auth_header, "vid-1")
    assert cp.send(make_order("HUB-1", urls=[URL])).json()["state"] == "received"
    steps = []
    for minutes in (10, 16, 46, 56, 61, 70):
        cp.clock.advance(seconds=(START + dt.timedelta(minutes=minutes) - cp.clock.now()).total_seconds())
        report = services.tick(services.contact_point_for(cp.settings, cp.client.app.state.moderation))
        steps.append((minutes, report.escalated, report.overdue))
    assert steps == [(10, 0, 0), (16, 1, 0), (46, 1, 0), (56, 1, 0), (61, 0, 1), (70, 0, 0)]
    cp.deliver()
    duty = [json.loads(r.body) for r in cp.receiver.requests if r.path.startswith("/duty/")]
    assert [(d["minutes"], d["overdue"]) for d in duty] == [(15, False), (45, False), (55, False), (60, True)]
    listed = cp.client.get("/v1/orders", headers=auth_header(Role.SENIOR_MODERATOR)).json()
    assert listed[0]["reference"] == "HUB-1" and listed[0]["overdue"] and listed[0]["seconds_left"] == -600
    done = cp.client.post("/v1/orders/HUB-1/execute", headers=auth_header(Role.SENIOR_MODERATOR))
    assert done.status_code == 200 and done.json()["state"] == "executed"
    kinds = [e["kind"] for e in done.json()["events"]]
    assert kinds.count("order.escalated") == 3 and "order.overdue" in kinds
    assert kinds[-3:] == ["order.executed", "order.preserved", "order.content_provider_informed"]


def test_reinstatement_after_scrutiny_restores_the_content(cp: Platform, auth_header: Header) -> None:
    cp.upload(auth_header, "vid-1")
    cp.send(make_order("HUB-1", urls=[URL]))
    r = cp.send(Reinstatement(order_reference="HUB-1", member_state="IE", reasons="Infringes Art. 3(1).",
                              decided_at=START))
    assert r.status_code == 200 and r.json()["state"] == "reinstated"
    with cp.db.read() as session:
        item = session.get(ContentItem, "vid-1")
        assert item is not None and item.status == "published"


def test_reading_and_acting_need_a_role(cp: Platform, auth_header: Header) -> None:
    assert cp.client.get("/v1/orders").status_code == 401
    assert cp.client.get("/v1/orders", headers=auth_header(Role.PLATFORM)).status_code == 403
    assert cp.client.post("/v1/orders/X/execute", headers=auth_header(Role.ANALYST)).status_code == 403
    assert cp.client.get("/v1/orders/X", headers=auth_header(Role.ANALYST)).status_code == 404


def test_a_removal_order_model_is_what_was_stored(cp: Platform, auth_header: Header) -> None:
    cp.upload(auth_header, "vid-1")
    order = make_order("HUB-1", urls=[URL])
    cp.send(order)
    got = cp.client.get("/v1/orders/HUB-1", headers=auth_header(Role.ANALYST)).json()
    assert RemovalOrder.model_validate(got["order"]) == order


def test_a_voluntary_referral_goes_to_moderators_as_a_trusted_notice(cp: Platform, auth_header: Header) -> None:
    cp.upload(auth_header, "vid-1")
    order = make_order("REF-1", urls=[URL])
    referral = Referral(reference="REF-1", issuing_member_state="FR", addressee=order.addressee,
                        issued_at=order.issued_at, urls=[URL], reasons="Possibly against your terms.",
                        authority=order.authority)
    r = cp.send(referral)
    assert r.status_code == 200 and r.json()["state"] == "referral_in_review"
    with cp.db.read() as session:
        case = session.scalar(select(Case).where(Case.content_id == "vid-1"))
        assert case is not None and case.reason == "notice"
        item = session.get(ContentItem, "vid-1")
        assert item is not None and item.status == "published"  # no one-hour removal: moderators decide


def test_removed_content_is_kept_sealed_then_purged_with_a_record(cp: Platform, auth_header: Header,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    cp.upload(auth_header, "vid-1")
    cp.send(make_order("HUB-1", urls=[URL]))
    mod = cp.client.app.state.moderation
    contact = services.contact_point_for(cp.settings, mod)
    [kept] = services.preserved(contact, "HUB-1")
    assert kept["data"]["url"] == URL and kept["data"]["order"]["reference"] == "HUB-1"
    assert kept["keep_until"].startswith("2027-05-31")  # 183 days
    with cp.db.read() as session:
        sealed = session.scalar(select(PreservedContent.sealed))
        assert sealed and URL.encode() not in sealed and b"a video page" not in sealed
    longer = cp.client.post("/v1/orders/HUB-1/preservation", json={"until": "2027-07-01T00:00:00Z"},
                            headers=auth_header(Role.SENIOR_MODERATOR))
    assert longer.status_code == 200 and longer.json()["preserved"][0]["keep_until"].startswith("2027-07-01")
    cp.clock.advance(days=184)
    services.tick(contact)
    assert services.preserved(contact, "HUB-1")[0]["data"] is not None  # extended: still kept
    cp.clock.advance(days=30)
    with caplog.at_level("INFO"):
        services.tick(contact)
    [purged] = services.preserved(contact, "HUB-1")
    assert purged["data"] is None and purged["purged_at"] is not None
    assert "purged preserved content vid-1 of order HUB-1" in caplog.text
    with cp.db.read() as session:
        assert session.scalar(select(PreservedContent.sealed)) == b""
        kinds = list(session.scalars(select(OrderEvent.kind).order_by(OrderEvent.id)))
    assert [k for k in kinds if k.startswith(("order.preserv", "order.purged"))] == [
        "order.preserved", "order.preservation_extended", "order.purged"]


@pytest.fixture
def told_cp(settings: Settings, db: Database, receiver: Receiver) -> Iterator[Platform]:
    yield from _platform(settings, db, receiver, platform_webhook_url=receiver.url.replace("/hooks/", "/platform/"),
                         webhook_secret=b"platform-secret")


def _provider_notices(cp: Platform) -> list[dict[str, Any]]:
    cp.deliver()
    return [json.loads(r.body) for r in cp.receiver.requests
            if r.headers["Bastion-Event"] == services.PROVIDER_NOTICE_KIND]


def test_the_uploader_is_told_with_reasons_and_redress(told_cp: Platform, auth_header: Header) -> None:
    told_cp.upload(auth_header, "vid-1")
    told_cp.send(make_order("HUB-1", urls=[URL]))
    [notice] = _provider_notices(told_cp)
    assert notice["content_id"] == "vid-1" and notice["account_id"] == "acct-1"
    assert notice["redress"]["body"] == "Tribunal administratif de Paris" and "Art. 4" in notice["complaint"]


def test_non_disclosure_holds_the_notice_until_it_ends(told_cp: Platform, auth_header: Header) -> None:
    told_cp.upload(auth_header, "vid-1")
    until = START + dt.timedelta(weeks=6)
    order = RemovalOrder.model_validate({**order_fields("HUB-1", urls=[URL]), "non_disclosure": True,
                                         "non_disclosure_until": until.isoformat()})
    assert told_cp.send(order).json()["state"] == "executed"
    contact = services.contact_point_for(told_cp.settings, told_cp.client.app.state.moderation)
    told_cp.clock.advance(weeks=6, seconds=-60)
    services.tick(contact)
    assert _provider_notices(told_cp) == []
    told_cp.clock.advance(seconds=61)
    services.tick(contact)
    services.tick(contact)  # once only
    notices = _provider_notices(told_cp)
    assert [n["order_reference"] for n in notices] == ["HUB-1"]
    assert notices[0]["statement_puid"]  # the statement of reasons is issued now, not at the removal


def test_non_disclosure_withholds_the_statement_of_reasons_too(told_cp: Platform, auth_header: Header) -> None:
    told_cp.upload(auth_header, "vid-1")
    until = START + dt.timedelta(weeks=6)
    order = RemovalOrder.model_validate({**order_fields("HUB-1", urls=[URL]), "non_disclosure": True,
                                         "non_disclosure_until": until.isoformat()})
    told_cp.send(order)
    told_cp.deliver()
    actions = [json.loads(r.body) for r in told_cp.receiver.requests
               if r.headers["Bastion-Event"] == "moderation.action"]
    assert [(a["status"], a["statement_puid"]) for a in actions] == [("removed", None)]  # act, tell no one yet
    assert _count(told_cp.db, StatementOfReasons) == 0


def test_one_order_that_cannot_be_executed_does_not_stop_the_clock(
        cp: Platform, auth_header: Header, monkeypatch: pytest.MonkeyPatch) -> None:
    contact = services.contact_point_for(cp.settings, cp.client.app.state.moderation)
    contact = replace(contact, escalation_minutes=(15,))
    cp.upload(auth_header, "vid-1")
    cp.upload(auth_header, "vid-2", url="https://video.example/v/two")
    real = services.moderation.enforce_order

    def broken(mod: Any, session: Any, content_id: str, **kw: Any) -> bool:
        if content_id == "vid-1":
            raise RuntimeError("storage backend down")
        return real(mod, session, content_id, **kw)

    monkeypatch.setattr(services.moderation, "enforce_order", broken)
    r = cp.send(make_order("HUB-A", urls=[URL]))  # acknowledged as received; the action is retried and escalated
    assert r.status_code == 200 and r.json()["state"] == "received"
    cp.clock.advance(minutes=16)
    with cp.db.write() as session:  # a second order that a crash left received but not executed
        session.add(ReceivedOrder(**{**_received_copy(session, "HUB-A"), "reference": "HUB-C",
                                     "provider_reference": "cp-left-by-a-crash",
                                     "body": {**make_order("HUB-C", urls=["https://video.example/v/two"]).model_dump(
                                         mode="json")}}))
    report = services.tick(contact)
    assert report.executed == 1 and report.escalated == 1  # HUB-C done, HUB-A escalated all the same
    with cp.db.read() as session:
        assert session.get(ReceivedOrder, "HUB-A").state == "received"  # type: ignore[union-attr]
        assert session.get(ReceivedOrder, "HUB-C").state == "executed"  # type: ignore[union-attr]


def _received_copy(session: Any, reference: str) -> dict[str, Any]:
    order = session.get(ReceivedOrder, reference)
    columns = ReceivedOrder.__table__.columns.keys()
    return {c: getattr(order, c) for c in columns}


def test_a_reinstatement_restores_only_what_the_order_took_down(cp: Platform, auth_header: Header) -> None:
    cp.upload(auth_header, "vid-1")
    moderator = auth_header(Role.MODERATOR)
    r = cp.client.post("/v1/notices", headers=auth_header(Role.PLATFORM), json={
        "content_id": "vid-1", "category": "hate_speech", "explanation": "x", "notifier": "u"})
    case = cp.client.post("/v1/queues/general/claim", headers=moderator).json()
    assert case["id"] == r.json()["case_id"]
    cp.client.post(f"/v1/cases/{case['id']}/decision", headers=moderator,
                   json={"violation": True, "actions": ["remove"]})  # down already, for another reason
    assert cp.send(make_order("HUB-1", urls=[URL])).json()["state"] == "executed"
    cp.send(Reinstatement(order_reference="HUB-1", member_state="IE", reasons="Infringes Art. 3(1).",
                          decided_at=START))
    with cp.db.read() as session:
        assert session.get(ContentItem, "vid-1").status == "removed"  # type: ignore[union-attr]


def test_a_repeat_of_a_reference_must_come_from_its_sender(cp: Platform, auth_header: Header) -> None:
    cp.upload(auth_header, "vid-1")
    assert cp.send(make_order("HUB-1", urls=[URL])).status_code == 200
    other = SigningKey.generate()
    services.trust_key(cp.db, name="other-hub", role=SenderRole.HUB, public_key=other.public_text, clock=cp.clock,
                       answer_url=cp.receiver.url)
    r = cp.send(make_order("HUB-1", urls=[URL]), key=other)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    ended = cp.send(Reinstatement(order_reference="HUB-1", member_state="IE", reasons="x", decided_at=START),
                    key=other)
    assert ended.status_code == 403  # nor may another hub end it


def test_a_signature_header_with_a_non_ascii_timestamp_is_refused_not_a_crash(cp: Platform) -> None:
    body, headers = signed_request(cp.hub, make_order("HUB-9", urls=[URL]), cp.clock.now())
    name, value = next(iter(headers.items()))
    forged = ",".join("t=\u00b2" if part.startswith("t=") else part for part in value.split(","))
    r = cp.client.post("/v1/orders", content=body, headers={name: forged.encode().decode("unicode_escape")})
    assert r.status_code in (400, 401) and r.headers["content-type"] == "application/problem+json"


def test_new_waiting_orders_come_first_in_the_list(manual_cp: Platform, auth_header: Header) -> None:
    cp = manual_cp
    for i in range(3):
        cp.upload(auth_header, f"vid-{i}", url=f"https://video.example/v/{i}")
        cp.send(make_order(f"OLD-{i}", urls=[f"https://video.example/v/{i}"]))
        cp.client.post(f"/v1/orders/OLD-{i}/execute", headers=auth_header(Role.SENIOR_MODERATOR))
        cp.clock.advance(minutes=1)
    cp.clock.advance(minutes=5)
    cp.upload(auth_header, "vid-new", url="https://video.example/v/new")
    cp.send(make_order("NEW", urls=["https://video.example/v/new"]))
    listed = [o["reference"] for o in services.received_orders(cp.db, cp.clock.now(), limit=2)]
    assert listed == ["NEW", "OLD-2"]


def test_an_imminent_threat_to_life_goes_to_the_state_concerned_else_europol(
        settings: Settings, db: Database, receiver: Receiver, auth_header: Header) -> None:
    europol = receiver.url.replace("/hooks/", "/europol/")
    for cp in _platform(settings, db, receiver, orders_europol_url=europol):
        french = SigningKey.generate()
        services.trust_key(cp.db, name="OCLCTIC", role=SenderRole.AUTHORITY, public_key=french.public_text,
                           member_state="FR", clock=cp.clock, answer_url=receiver.url.replace("/hooks/", "/fr/"))
        cp.upload(auth_header, "vid-1")
        cp.upload(auth_header, "vid-2", url="https://video.example/v/2")
        senior = auth_header(Role.SENIOR_MODERATOR)
        report = {"content_id": "vid-1", "member_state": "FR", "explanation": "Live threat to attack a school."}
        r = cp.client.post("/v1/orders/threats", json=report, headers=senior)
        assert r.status_code == 202 and r.json()["sent_to"] == ["OCLCTIC"]
        assert cp.client.post("/v1/orders/threats", json=report, headers=senior).status_code == 202  # same message
        r = cp.client.post("/v1/orders/threats", json={**report, "content_id": "vid-2", "member_state": None},
                           headers=senior)
        assert r.json()["sent_to"] == ["Europol"]
        assert cp.client.post("/v1/orders/threats", json={**report, "member_state": "XX"},
                              headers=senior).status_code == 422
        assert cp.client.post("/v1/orders/threats", json={**report, "content_id": "nope"},
                              headers=senior).status_code == 404
        assert cp.client.post("/v1/orders/threats", json=report, headers=auth_header(Role.ANALYST)).status_code == 403
        cp.deliver()
        threats = [(r.path.split("/")[1], parse(json.loads(r.body))) for r in receiver.requests]
        assert [(where, t.content_id) for where, t in threats] == [("fr", "vid-1"), ("europol", "vid-2")]
        keys = {cp.platform.key_id: cp.platform.public}
        for request in receiver.requests:
            verify(request.headers, request.body, keys=keys.get, now=cp.clock.now())


def test_without_anywhere_to_send_a_threat_report_is_refused(cp: Platform, auth_header: Header) -> None:
    cp.upload(auth_header, "vid-1")
    r = cp.client.post("/v1/orders/threats", json={"content_id": "vid-1", "explanation": "x"},
                       headers=auth_header(Role.ADMIN))
    assert r.status_code == 409 and "BASTION_ORDERS_EUROPOL_URL" in r.json()["detail"]
    assert _count(cp.db, OutboxMessage, OutboxMessage.kind == services.THREAT_KIND) == 0


def test_spent_nonces_are_forgotten_after_twice_the_window(cp: Platform) -> None:
    body, headers = signed_request(cp.hub, make_order("HUB-1"), cp.clock.now())
    services.accept_signed(cp.db, headers, body, keys={cp.hub.key_id: cp.hub.public}.get, clock=cp.clock)
    cp.clock.advance(seconds=2 * 300 - 1)
    assert services.forget_nonces(cp.db, clock=cp.clock) == 0
    cp.clock.advance(seconds=2)
    assert services.forget_nonces(cp.db, clock=cp.clock) == 1


def test_an_order_for_another_contact_point_is_refused_when_ours_is_configured(
        settings: Settings, db: Database, receiver: Receiver, auth_header: Header) -> None:
    order = make_order("HUB-1", urls=[URL])
    for cp in _platform(settings, db, receiver, orders_contact_point_url="https://other-provider.example/v1/orders"):
        cp.upload(auth_header, "vid-1")
        r = cp.send(order)  # captured on its way to the provider it names, replayed here
        assert r.status_code == 403 and "another contact point" in r.json()["detail"]
        assert _count(cp.db, ReceivedOrder) == 0


def test_with_no_member_state_identified_a_threat_goes_to_the_establishment_state_and_europol(
        settings: Settings, db: Database, receiver: Receiver, auth_header: Header) -> None:
    europol = receiver.url.replace("/hooks/", "/europol/")
    for cp in _platform(settings, db, receiver, orders_europol_url=europol, orders_member_state="IE"):
        irish = SigningKey.generate()
        services.trust_key(cp.db, name="Garda", role=SenderRole.AUTHORITY, public_key=irish.public_text,
                           member_state="IE", clock=cp.clock, answer_url=receiver.url.replace("/hooks/", "/ie/"))
        cp.upload(auth_header, "vid-1")
        senior = auth_header(Role.SENIOR_MODERATOR)
        report = {"content_id": "vid-1", "member_state": None, "explanation": "Live threat to attack a school."}
        for _ in range(2):  # a second report of the same item is the same two messages
            r = cp.client.post("/v1/orders/threats", json=report, headers=senior)
            assert r.status_code == 202 and r.json()["sent_to"] == ["Garda", "Europol"]
        assert _count(cp.db, OutboxMessage, OutboxMessage.kind == services.THREAT_KIND) == 2
        cp.deliver()
        sent = sorted((r.path.split("/")[1], parse(json.loads(r.body)).content_id)  # type: ignore[union-attr]
                      for r in receiver.requests)
        assert sent == [("europol", "vid-1"), ("ie", "vid-1")]
        with cp.db.read() as session:
            recipients = [e.data["recipient"] for e in session.scalars(
                select(OrderEvent).where(OrderEvent.kind == "threat.reported").order_by(OrderEvent.id))]
        assert recipients[:2] == ["Garda", "Europol"]


def _forward(cp: Platform, order: RemovalOrder, authority: SigningKey, *, forwarded: RemovalOrder | None = None,
             carried: Any = None) -> Any:
    """The order as a hub forwards one issued by API: under its own reference, signed by the hub, with the
    authority's own signature over the order it issued beside it."""
    signed_body, signed_headers = signed_request(authority, order, cp.clock.now() - dt.timedelta(hours=2))
    sent = forwarded or order.model_copy(update={"reference": f"HUB-{order.reference}"})
    signature = AuthoritySignature.of(authority.key_id, signed_headers[SIGNATURE_HEADER], signed_body)
    body = canonical_body({**envelope(sent), AUTHORITY_SIGNATURE: carried or signature.model_dump()})
    return cp.client.post("/v1/orders", content=body,
                          headers={"Content-Type": "application/json", **cp.hub.headers(body, cp.clock.now())})


def _received_event(cp: Platform, reference: str) -> dict[str, Any]:
    with cp.db.read() as session:
        event = session.scalar(select(OrderEvent).where(OrderEvent.subject == reference,
                                                        OrderEvent.kind == "order.received"))
        assert event is not None
        return dict(event.data)


def test_a_forwarded_order_s_authority_signature_is_checked_when_its_key_is_trusted(
        cp: Platform, auth_header: Header, caplog: pytest.LogCaptureFixture) -> None:
    french, unknown = SigningKey.generate(), SigningKey.generate()
    services.trust_key(cp.db, name="OCLCTIC", role=SenderRole.AUTHORITY, public_key=french.public_text,
                       member_state="FR", clock=cp.clock, answer_url=cp.receiver.url)
    cp.upload(auth_header, "vid-1")
    r = _forward(cp, make_order("FR-1", urls=[URL]), french)  # signed two hours ago: no time window applies
    assert r.status_code == 200 and r.json()["state"] == "executed", r.text
    assert _received_event(cp, "HUB-FR-1")["authority_signature"] == "verified"
    assert _received_event(cp, "HUB-FR-1")["authority_key"] == french.key_id
    # The hub (or someone between) changed what the authority ordered: refused, nothing recorded.
    altered = make_order("HUB-FR-2", urls=[URL]).model_copy(update={"reasons": "Something else entirely."})
    r = _forward(cp, make_order("FR-2", urls=[URL]), french, forwarded=altered)
    assert r.status_code == 403 and r.json()["reason"] == "bad_authority_signature"
    assert "forwarded order refused: bad_authority_signature" in caplog.text
    # A trusted key of another Member State does not vouch for a French order.
    german = SigningKey.generate()
    services.trust_key(cp.db, name="BKA", role=SenderRole.AUTHORITY, public_key=german.public_text,
                       member_state="DE", clock=cp.clock, answer_url=cp.receiver.url)
    assert _forward(cp, make_order("FR-3", urls=[URL]), german).status_code == 403
    assert _count(cp.db, ReceivedOrder) == 1
    # A key this platform does not trust: the hub's signature stands alone, and the receipt says so.
    assert _forward(cp, make_order("FR-4", urls=[URL]), unknown).status_code == 200
    assert _received_event(cp, "HUB-FR-4")["authority_signature"].startswith("not checked")
    # An order issued in the hub's console carries none.
    assert cp.send(make_order("HUB-5", urls=[URL])).status_code == 200
    assert _received_event(cp, "HUB-5")["authority_signature"] == "none"
    bad = _forward(cp, make_order("FR-6", urls=[URL]), french, carried={"key_id": "zz"})
    assert bad.status_code == 422 and "authority_signature.key_id" in bad.json()["detail"]
    assert _count(cp.db, ReceivedOrder) == 3


@pytest.mark.parametrize(("length", "status"), [(64, 200), (65, 401), (128, 401)])
def test_a_nonce_longer_than_64_characters_is_malformed_not_a_server_error(cp: Platform, length: int,
                                                                           status: int) -> None:
    """Receivers keep nonces in a column of 64 (``signed_nonces.nonce``): the header rule says the same."""
    body = canonical_body(envelope(make_order(f"HUB-N{length}", urls=[URL])))
    header = raw_signature_header(cp.hub, body, int(cp.clock.now().timestamp()), "n" * length)
    r = cp.client.post("/v1/orders", content=body,
                       headers={"Content-Type": "application/json", SIGNATURE_HEADER: header})
    assert r.status_code == status, r.text
    if status == 401:
        assert r.json()["reason"] == "malformed_signature"
        assert _count(cp.db, ReceivedOrder) == 0


@pytest.mark.parametrize("named", ["https://platform.example", "https://platform.example/v1/orders/"])
def test_an_order_may_name_the_contact_point_by_its_base_url_or_its_endpoint(
        settings: Settings, db: Database, receiver: Receiver, named: str) -> None:
    """``docs/wire.md``: ``contact_point`` is the base URL; the endpoint's URL is read as the same contact point."""
    for cp in _platform(settings, db, receiver, orders_contact_point_url="https://platform.example/"):
        assert cp.send(make_order("HUB-B", urls=[URL], contact_point=named)).status_code == 200
        other = cp.send(make_order("HUB-O", urls=[URL], contact_point="https://other.example/v1/orders"))
        assert other.status_code == 403 and other.json()["reason"] == "not_allowed"
