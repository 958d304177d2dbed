"""Fact-checking end to end over HTTP: a partner registered, an item sent through the outbox (signed), the partner's
signed rating applied by moderation as any restriction (event, statement, appeal), and the feed gate's query."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from bastion.core import signing
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.webhooks import canonical_body, verify_signature
from bastion.factchecks import queries
from bastion.factchecks.models import FactcheckEvent, FactcheckRating
from bastion.moderation import queries as moderated
from bastion.moderation.models import ContentItem, ModerationEvent, StatementOfReasons
from bastion.web.app import create_app
from tests.factories.receiver import Receiver, serving

Header = Callable[[Role], dict[str, str]]
SECRET = b"platform-webhook-secret"


@dataclass
class World:
    client: TestClient
    db: Database
    bastion: signing.SigningKey
    partner: signing.SigningKey
    receiver: Receiver
    h: Header
    #: The platform's webhook (moderation's messages), apart from the partner's endpoint.
    platform: Receiver

    def rate(self, body: dict[str, Any] | bytes, key: signing.SigningKey | None = None,
             headers: dict[str, str] | None = None) -> Any:
        raw = body if isinstance(body, bytes) else canonical_body(body)
        signed = (key or self.partner).headers(raw, dt.datetime.now(dt.UTC)) if headers is None else headers
        return self.client.post("/v1/factchecks/ratings", content=raw,
                                headers={**signed, "Content-Type": "application/json"})


@pytest.fixture
def world(settings: Settings, db: Database, receiver: Receiver, auth_header: Header) -> Iterator[World]:
    bastion, partner = signing.SigningKey.generate(), signing.SigningKey.generate()
    with serving() as platform:
        configured = Settings(**{**settings.__dict__, "orders_signing_key": bastion.to_text(),
                                 "outbox_interval_seconds": 0.05, "platform_webhook_url": platform.url,
                                 "webhook_secret": SECRET})
        with TestClient(create_app(configured, db=db)) as client:
            r = client.post("/v1/factchecks/partners", headers=auth_header(Role.ADMIN), json={
                "name": "checkers-eu", "public_key": partner.public_text, "url": receiver.url})
            assert r.status_code == 201, r.text
            assert r.json()["key_id"] == partner.key_id
            yield World(client, db, bastion, partner, receiver, auth_header, platform)


def _post(w: World, content_id: str, text: str = "The moon landing was staged in a studio.") -> None:
    r = w.client.post("/v1/content", headers=w.h(Role.PLATFORM), data={
        "content_id": content_id, "account_id": "acct-1", "account_age": "30", "account_country": "FR",
        "content_type": "text", "text": text})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "published"


def _send(w: World, content_id: str) -> str:
    r = w.client.post("/v1/factchecks/requests", headers=w.h(Role.MODERATOR),
                      json={"content_id": content_id, "partner": "checkers-eu"})
    assert r.status_code == 202, r.text
    return str(r.json()["request_id"])


def _delivered(receiver: Receiver, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10  # eventual delivery by the outbox worker, not a speed check
    while len(receiver.requests) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(receiver.requests) >= n
    return [json.loads(r.body) for r in receiver.requests]


def test_item_goes_to_the_partner_signed_with_this_platforms_key(world: World) -> None:
    _post(world, "c1")
    request_id = _send(world, "c1")
    [message] = _delivered(world.receiver, 1)
    sent = world.receiver.requests[0]
    verified = signing.verify(sent.headers, sent.body, now=dt.datetime.now(dt.UTC),
                              keys=lambda k: world.bastion.public if k == world.bastion.key_id else None)
    assert verified.key_id == world.bastion.key_id
    assert sent.headers["Bastion-Event"] == "factcheck.request"
    assert message == {"request_id": request_id, "content_id": "c1", "content_type": "text",
                       "text": "The moon landing was staged in a studio.", "url": "",
                       "ratings_path": "/v1/factchecks/ratings",
                       "ratings": ["false", "partly_false", "missing_context", "true"]}


def test_a_false_rating_restricts_through_moderation_with_a_statement_and_an_appeal(world: World) -> None:
    _post(world, "c1")
    _post(world, "c2", "Water is wet.")
    _send(world, "c1")
    _send(world, "c2")
    body = {"rating_id": "r-1", "content_id": "c1", "rating": "false", "explanation": "No, it was filmed on the Moon.",
            "review_url": "https://checkers.example/moon"}
    r = world.rate(body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["actions"] == ["label", "demote", "not_recommended"]
    assert answer["applied"] is True and answer["status"] == "restricted" and answer["replay"] is False
    puid = answer["statement_puid"]
    listed = world.client.get("/v1/factchecks/content/c1", headers=world.h(Role.MODERATOR))
    assert listed.status_code == 200 and listed.json()[0]["answer"] == answer  # as the partner was answered

    content = world.client.get("/v1/content/c1", headers=world.h(Role.MODERATOR)).json()
    assert content["status"] == "restricted"
    assert sorted(content["restrictions"]) == ["demote", "label", "not_recommended"]
    statement = world.client.get(f"/v1/statements/{puid}", headers=world.h(Role.MODERATOR)).json()
    assert "fact-checking partner checkers-eu" in json.dumps(statement)
    with world.db.read() as session:
        kinds = [e.kind for e in session.scalars(select(ModerationEvent).where(ModerationEvent.subject == "content:c1")
                                                 .order_by(ModerationEvent.id))]
        assert kinds[-2:] == ["content.actions_applied", "content.statement_issued"]
        rated = session.scalar(select(FactcheckEvent).where(FactcheckEvent.kind == "item.rated"))
        assert rated is not None and rated.data["rating"] == "false" and rated.data["statement_puid"] == puid
        assert queries.false_rated(session, ["c1", "c2", "nope"]) == {"c1"}

    # a "true" rating limits nothing
    true = world.rate({"rating_id": "r-2", "content_id": "c2", "rating": "true"}).json()
    assert true["actions"] == [] and true["applied"] is False and true["status"] == "published"
    with world.db.read() as session:
        assert queries.latest_ratings(session, ["c1", "c2"]) == {"c1": "false", "c2": "true"}

    # the uploader appeals like any restriction; a moderator reverses it and the content is published again
    appeal = world.client.post("/v1/appeals", headers=world.h(Role.PLATFORM),
                               json={"statement_puid": puid, "text": "It is satire."})
    assert appeal.status_code == 201, appeal.text
    moderator = world.h(Role.MODERATOR)
    case = world.client.post("/v1/queues/general/claim", headers=moderator).json()
    assert case["content_id"] == "c1" and case["reason"] == "appeal"
    decided = world.client.post(f"/v1/cases/{case['id']}/decision", headers=moderator,
                                json={"violation": False})
    assert decided.status_code == 200, decided.text
    assert world.client.get("/v1/content/c1", headers=world.h(Role.MODERATOR)).json()["status"] == "published"


def test_the_same_rating_id_replays_and_another_body_conflicts(world: World) -> None:
    _post(world, "c1")
    _send(world, "c1")
    body = {"rating_id": "r-1", "content_id": "c1", "rating": "missing_context"}
    first = world.rate(body).json()
    again = world.rate(body)  # a fresh signature over the same body: the same answer
    assert again.status_code == 200 and again.json() == {**first, "replay": True}
    other = world.rate({**body, "rating": "false"})
    assert other.status_code == 409, other.text
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(FactcheckRating)) == 1
        assert queries.latest_ratings(session, ["c1"]) == {"c1": "missing_context"}
        assert session.scalar(select(ContentItem.restrictions).where(ContentItem.content_id == "c1")) == ["label"]


def test_refusals_change_nothing(world: World) -> None:
    _post(world, "c1")
    _post(world, "c3")
    _send(world, "c1")
    good = {"rating_id": "r-1", "content_id": "c1", "rating": "false"}
    # fail closed: a rating value Bastion does not know is refused, not mapped to something
    assert world.rate({**good, "rating": "mostly_false"}).status_code == 422
    assert world.rate({**good, "extra": 1}).status_code == 422
    assert world.rate(b"not json").status_code == 422
    # unsigned, signed by a stranger, altered after signing, too old
    assert world.rate(good, headers={}).status_code == 401
    stranger = world.rate(good, key=signing.SigningKey.generate())
    assert stranger.status_code == 401 and stranger.json()["reason"] == "unknown_key"
    signed = world.partner.headers(canonical_body(good), dt.datetime.now(dt.UTC))
    assert world.rate({**good, "rating": "true"}, headers=signed).json()["reason"] == "bad_signature"
    old = world.partner.headers(canonical_body(good), dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert world.rate(good, headers=old).json()["reason"] == "outside_time_window"
    # content never sent to this partner
    assert world.rate({**good, "content_id": "c3"}).status_code == 403
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(FactcheckRating)) == 0
        statuses = dict(session.execute(select(ContentItem.content_id, ContentItem.status)).tuples().all())
    assert statuses == {"c1": "published", "c3": "published"}


def test_restricted_material_is_never_sent(world: World) -> None:
    _post(world, "c1")
    with world.db.write() as session:  # as if it had turned out to be child sexual abuse material
        session.execute(update(ContentItem).where(ContentItem.content_id == "c1").values(category="csam"))
    r = world.client.post("/v1/factchecks/requests", headers=world.h(Role.MODERATOR),
                          json={"content_id": "c1", "partner": "checkers-eu"})
    assert r.status_code == 404
    missing = world.client.post("/v1/factchecks/requests", headers=world.h(Role.MODERATOR),
                                json={"content_id": "never", "partner": "checkers-eu"})
    assert missing.status_code == 404 and missing.json()["detail"] == r.json()["detail"].replace("c1", "never")
    assert world.receiver.requests == []


def test_a_rating_of_content_found_restricted_since_reveals_nothing(world: World) -> None:
    _post(world, "c1")
    _send(world, "c1")
    with world.db.write() as session:  # found to be child sexual abuse material after it was sent
        session.execute(update(ContentItem).where(ContentItem.content_id == "c1").values(category="csam"))
    r = world.rate({"rating_id": "r-9", "content_id": "c1", "rating": "false"})
    never = world.rate({"rating_id": "r-10", "content_id": "never", "rating": "false"})
    assert r.status_code == never.status_code == 403
    assert r.json()["detail"] == never.json()["detail"].replace("never", "c1") and "restricted" not in r.text
    with world.db.read() as session:
        assert session.scalar(select(FactcheckEvent).where(FactcheckEvent.kind == "item.rated")) is None


def test_partners_are_registered_by_admins_with_a_real_key(world: World) -> None:
    h = world.h
    bad = world.client.post("/v1/factchecks/partners", headers=h(Role.ADMIN),
                            json={"name": "x", "public_key": "not-a-key", "url": "https://x.example"})
    assert bad.status_code == 422
    same_key = world.client.post("/v1/factchecks/partners", headers=h(Role.ADMIN), json={
        "name": "other", "public_key": world.partner.public_text, "url": "https://x.example"})
    assert same_key.status_code == 409
    assert world.client.post("/v1/factchecks/partners", headers=h(Role.MODERATOR), json={
        "name": "y", "public_key": signing.SigningKey.generate().public_text, "url": "https://y.example"}
    ).status_code == 403
    listed = world.client.get("/v1/factchecks/partners", headers=h(Role.MODERATOR)).json()
    assert [p["name"] for p in listed] == ["checkers-eu"]


def test_held_content_is_rated_but_not_published_by_a_restriction(world: World) -> None:
    c, h = world.client, world.h
    sample = c.post("/v1/content", headers=h(Role.PLATFORM), data={
        "content_id": "sample", "account_id": "acct-1", "account_age": "30", "account_country": "FR",
        "content_type": "text", "text": "A miracle cure the doctors hide from you."}).json()
    value = next(s["value"] for s in sample["signals"] if s["signal_type"] == "text")
    assert c.post("/v1/banks", headers=h(Role.CURATOR), json={"name": "HOAXES"}).status_code == 201
    assert c.post("/v1/banks/HOAXES/entries", headers=h(Role.CURATOR), json={
        "signal_type": "text", "value": value, "category": "hate_speech"}).status_code == 201
    held = c.post("/v1/content", headers=h(Role.PLATFORM), data={
        "content_id": "held", "account_id": "acct-2", "account_age": "30", "account_country": "FR",
        "content_type": "text", "text": "A miracle cure the doctors hide from you!"}).json()
    assert held["status"] == "held"
    _send(world, "held")
    answer = world.rate({"rating_id": "r-9", "content_id": "held", "rating": "false"}).json()
    assert answer["applied"] is False and answer["status"] == "held" and answer["statement_puid"] is None
    with world.db.read() as session:
        assert queries.false_rated(session, ["held"]) == {"held"}  # the feed gate still knows the rating
        assert session.scalar(select(ContentItem.status).where(ContentItem.content_id == "held")) == "held"


def test_a_follower_sees_each_rating_once_with_the_items_state_now(world: World) -> None:
    for content_id in ("c1", "c2"):
        _post(world, content_id)
        _send(world, content_id)
    with world.db.read() as session:
        assert queries.false_rated_since(session, 0) == queries.RatedSince(0, {})
    world.rate({"rating_id": "r-1", "content_id": "c1", "rating": "false"})
    world.rate({"rating_id": "r-2", "content_id": "c2", "rating": "missing_context"})
    with world.db.read() as session:
        first = queries.false_rated_since(session, 0)
        assert first.false == {"c1": True, "c2": False}
        assert queries.false_rated_since(session, first.cursor) == queries.RatedSince(first.cursor, {})
    world.rate({"rating_id": "r-3", "content_id": "c1", "rating": "true"})  # the partner's correction
    with world.db.read() as session:
        second = queries.false_rated_since(session, first.cursor)
    assert second.false == {"c1": False} and second.cursor > first.cursor


def test_a_disabled_partner_is_neither_heard_nor_sent_to(world: World) -> None:
    _post(world, "c1")
    _send(world, "c1")
    assert world.client.post("/v1/factchecks/partners/checkers-eu/disable",
                             headers=world.h(Role.SENIOR_MODERATOR)).status_code == 403
    disabled = world.client.post("/v1/factchecks/partners/checkers-eu/disable", headers=world.h(Role.ADMIN))
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    refused = world.rate({"rating_id": "r-1", "content_id": "c1", "rating": "false"})
    assert refused.status_code == 401 and refused.json()["reason"] == "unknown_key"
    assert world.client.post("/v1/factchecks/requests", headers=world.h(Role.MODERATOR),
                             json={"content_id": "c1", "partner": "checkers-eu"}).status_code == 404
    assert world.client.post("/v1/factchecks/partners/nobody/disable", headers=world.h(Role.ADMIN)).status_code == 404
    with world.db.read() as session:
        assert session.scalar(select(ContentItem.status).where(ContentItem.content_id == "c1")) == "published"
        kinds = list(session.scalars(select(FactcheckEvent.kind).order_by(FactcheckEvent.id)))
    assert kinds == ["partner.added", "item.sent", "partner.disabled"]


def _filtered(w: World, candidates: list[str], wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 10  # the feed's view follows the logs every refresh: eventual, not a speed check
    while True:
        r = w.client.post("/v1/feed/filter", headers=w.h(Role.PLATFORM),
                          json={"viewer": {"account_id": "viewer-1", "age": 30}, "candidates": candidates})
        assert r.status_code == 200, r.text
        answer = dict(r.json())
        if wanted(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_ratings_reach_the_feed_gate(world: World) -> None:
    for content_id in ("c1", "c2"):
        _post(world, content_id)
        _send(world, content_id)
    world.rate({"rating_id": "r-1", "content_id": "c1", "rating": "false"})
    answer = _filtered(world, ["c1", "c2"], lambda a: a["eligible"] == ["c2"] and "fact_checked_false" in json.dumps(a))
    assert answer["eligible"] == ["c2"]
    [excluded] = answer["excluded"]
    assert excluded["content_id"] == "c1"
    assert {"fact_checked_false", "not_recommended"} <= set(excluded["reasons"])
    # a correction: the rating no longer excludes it, and the limits it led to are lifted
    world.rate({"rating_id": "r-2", "content_id": "c1", "rating": "true"})
    answer = _filtered(world, ["c1"], lambda a: a["eligible"] == ["c1"])
    assert answer["eligible"] == ["c1"] and answer["excluded"] == []


# --- corrections: a later rating lifts the limits an earlier one applied ---------------------------------------------


def _hook(w: World, kind: str) -> dict[str, Any]:
    """The platform's last webhook of ``kind``, signed with the webhook secret."""
    deadline = time.monotonic() + 10  # eventual delivery by the outbox worker, not a speed check
    while time.monotonic() < deadline:
        found = [r for r in list(w.platform.requests) if r.headers["Bastion-Event"] == kind]
        if found:
            last = found[-1]
            assert verify_signature(SECRET, last.headers["Bastion-Signature"], last.body, now=dt.datetime.now(dt.UTC))
            return dict(json.loads(last.body))
        time.sleep(0.02)
    raise AssertionError(f"no {kind} webhook")


def _content(w: World, content_id: str) -> dict[str, Any]:
    return dict(w.client.get(f"/v1/content/{content_id}", headers=w.h(Role.MODERATOR)).json())


def _events(w: World, content_id: str) -> list[ModerationEvent]:
    with w.db.read() as session:
        return list(session.scalars(select(ModerationEvent).where(ModerationEvent.subject == f"content:{content_id}")
                                    .order_by(ModerationEvent.id)))


def test_a_correction_lifts_the_limits_the_rating_applied(world: World) -> None:
    _post(world, "c1")
    _send(world, "c1")
    false = world.rate({"rating_id": "r-1", "content_id": "c1", "rating": "false"}).json()
    assert false["applied"] is True and false["lifted"] == []
    excluded = _filtered(world, ["c1"], lambda a: "not_recommended" in json.dumps(a["excluded"]))
    assert "not_recommended" in excluded["excluded"][0]["reasons"]
    with world.db.read() as session:
        statements = session.scalar(select(func.count()).select_from(StatementOfReasons))

    body = {"rating_id": "r-2", "content_id": "c1", "rating": "true", "explanation": "The studio claim was retracted."}
    corrected = world.rate(body)
    assert corrected.status_code == 200, corrected.text
    answer = corrected.json()
    assert answer["lifted"] == ["label", "demote", "not_recommended"]
    assert (answer["actions"], answer["applied"], answer["status"], answer["statement_puid"]) == (
        [], False, "published", None)
    content = _content(world, "c1")
    assert (content["status"], content["restrictions"]) == ("published", [])
    # one event says what was lifted, why and by whom; no statement of reasons (a lift restricts nothing)
    lift = _events(world, "c1")[-1]
    assert (lift.kind, lift.actor) == ("content.restrictions_lifted", "factcheck:checkers-eu")
    assert lift.data["lifted"] == ["label", "demote", "not_recommended"] and lift.data["kept"] == []
    assert "rating r-2" in lift.data["reason"] and lift.data["status"] == "published"
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(StatementOfReasons)) == statements
        rated = session.scalars(select(FactcheckEvent).where(FactcheckEvent.kind == "item.rated")
                                .order_by(FactcheckEvent.id)).all()[-1]
        assert rated.data["lifted"] == answer["lifted"]
        # transparency counts the lift as nothing: no action, no appeal's reversal
        facts, _ = moderated.moderation_facts(session, after=0, limit=1000)
    assert [f for f in facts if f.event_id == lift.id] == []
    assert not any(f.kind is moderated.FactKind.REVERSAL for f in facts)
    # the platform is told, and the feed gate follows moderation's events
    hook = _hook(world, "moderation.restrictions_lifted")
    assert (hook["content_id"], hook["status"], hook["restrictions"], hook["lifted"], hook["statement_puid"]) == (
        "c1", "published", [], ["label", "demote", "not_recommended"], None)
    assert _filtered(world, ["c1"], lambda a: a["eligible"] == ["c1"])["eligible"] == ["c1"]

    # the correction replayed: the first answer, nothing lifted or written again
    again = world.rate(body)
    assert again.status_code == 200 and again.json() == {**answer, "replay": True}
    assert _events(world, "c1")[-1].id == lift.id


def test_an_appeal_open_when_a_correction_lifts_everything_can_still_be_reversed(world: World) -> None:
    _post(world, "c1")
    _send(world, "c1")
    puid = world.rate({"rating_id": "r-1", "content_id": "c1", "rating": "false"}).json()["statement_puid"]
    assert world.client.post("/v1/appeals", headers=world.h(Role.PLATFORM),
                             json={"statement_puid": puid, "text": "It is satire."}).status_code == 201
    assert world.rate({"rating_id": "r-2", "content_id": "c1", "rating": "true"}).json()["status"] == "published"
    moderator = world.h(Role.MODERATOR)
    case = world.client.post("/v1/queues/general/claim", headers=moderator).json()
    assert (case["content_id"], case["reason"]) == ("c1", "appeal")
    decided = world.client.post(f"/v1/cases/{case['id']}/decision", headers=moderator, json={"violation": False})
    assert decided.status_code == 200, decided.text
    assert (decided.json()["appeal"], decided.json()["status"]) == ("reversed", "published")
    kinds = [e.kind for e in _events(world, "c1")]
    assert kinds[-1] == "content.appeal_decided" and "content.reinstated" not in kinds
    assert _events(world, "c1")[-1].data["outcome"] == "reversed"
    with world.db.read() as session:  # counted as an appeal reversed; the lift, not the appeal, undid the limits
        facts, _ = moderated.moderation_facts(session, after=0, limit=1000)
    assert [f.action for f in facts if f.kind is moderated.FactKind.APPEAL_DECIDED] == ["reversed"]
    assert not any(f.kind is moderated.FactKind.REVERSAL for f in facts)


def test_a_correction_to_missing_context_keeps_the_label(world: World) -> None:
    _post(world, "c1")
    _send(world, "c1")
    world.rate({"rating_id": "r-1", "content_id": "c1", "rating": "false"})
    answer = world.rate({"rating_id": "r-2", "content_id": "c1", "rating": "missing_context"}).json()
    assert (answer["actions"], answer["applied"], answer["lifted"], answer["status"]) == (
        ["label"], True, ["demote", "not_recommended"], "restricted")
    assert answer["statement_puid"]  # the label stands, now for missing context: stated again
    content = _content(world, "c1")
    assert (content["status"], content["restrictions"]) == ("restricted", ["label"])
    hook = _hook(world, "moderation.restrictions_lifted")
    assert (hook["status"], hook["restrictions"], hook["lifted"]) == ("restricted", ["label"],
                                                                      ["demote", "not_recommended"])


def test_a_moderators_own_limit_survives_a_correction(world: World) -> None:
    _post(world, "c1")
    _send(world, "c1")
    notice = world.client.post("/v1/notices", headers=world.h(Role.PLATFORM), json={
        "content_id": "c1", "category": "hate_speech", "explanation": "stirs hatred", "notifier": "user-9"})
    assert notice.status_code == 201, notice.text
    moderator = world.h(Role.MODERATOR)
    case = world.client.post("/v1/queues/general/claim", headers=moderator).json()
    decided = world.client.post(f"/v1/cases/{case['id']}/decision", headers=moderator,
                                json={"violation": True, "actions": ["not_recommended"], "category": "hate_speech"})
    assert decided.status_code == 200, decided.text
    world.rate({"rating_id": "r-1", "content_id": "c1", "rating": "false"})
    assert sorted(_content(world, "c1")["restrictions"]) == ["demote", "label", "not_recommended"]

    answer = world.rate({"rating_id": "r-2", "content_id": "c1", "rating": "true"}).json()
    assert (answer["lifted"], answer["status"]) == (["label", "demote"], "restricted")
    content = _content(world, "c1")
    assert (content["status"], content["restrictions"]) == ("restricted", ["not_recommended"])
    lift = _events(world, "c1")[-1]
    assert (lift.data["lifted"], lift.data["kept"]) == (["label", "demote"], ["not_recommended"])
    filtered = _filtered(world, ["c1"], lambda a: [e["reasons"] for e in a["excluded"]] == [["not_recommended"]])
    assert filtered["eligible"] == [] and filtered["excluded"][0]["reasons"] == ["not_recommended"]


def test_another_partners_false_rating_still_holds_the_limits(world: World) -> None:
    other = signing.SigningKey.generate()
    r = world.client.post("/v1/factchecks/partners", headers=world.h(Role.ADMIN), json={
        "name": "faits-fr", "public_key": other.public_text, "url": world.receiver.url})
    assert r.status_code == 201, r.text
    _post(world, "c1")
    _send(world, "c1")
    assert world.client.post("/v1/factchecks/requests", headers=world.h(Role.MODERATOR),
                             json={"content_id": "c1", "partner": "faits-fr"}).status_code == 202
    world.rate({"rating_id": "r-1", "content_id": "c1", "rating": "false"})
    world.rate({"rating_id": "f-1", "content_id": "c1", "rating": "false"}, key=other)

    corrected = world.rate({"rating_id": "r-2", "content_id": "c1", "rating": "true"}).json()
    assert (corrected["lifted"], corrected["status"]) == ([], "restricted")
    assert sorted(_content(world, "c1")["restrictions"]) == ["demote", "label", "not_recommended"]
    assert _events(world, "c1")[-1].kind != "content.restrictions_lifted"  # nothing lifted, nothing recorded

    # the other partner's correction to partly false: only what partly false calls for remains
    partly = world.rate({"rating_id": "f-2", "content_id": "c1", "rating": "partly_false"}, key=other).json()
    assert (partly["lifted"], partly["status"]) == (["not_recommended"], "restricted")
    assert sorted(_content(world, "c1")["restrictions"]) == ["demote", "label"]
    last = world.rate({"rating_id": "f-3", "content_id": "c1", "rating": "true"}, key=other).json()
    assert (last["lifted"], last["status"]) == (["label", "demote"], "published")
    assert _content(world, "c1")["restrictions"] == []
