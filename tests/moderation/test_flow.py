"""Upload moderation end to end over HTTP: verdicts, review, actions reaching the platform, appeals."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.events import payload
from bastion.core.outbox.webhooks import verify_signature
from bastion.hashing.services import hash_path
from bastion.moderation import statements
from bastion.moderation.events import PAYLOADS, EventKind
from bastion.moderation.models import Account, ContentItem, ModerationEvent
from bastion.transparency import rollups
from bastion.web.app import create_app
from tests.factories.media import make_image
from tests.factories.receiver import Receiver

SECRET = b"platform-webhook-secret"
Header = Callable[[Role], dict[str, str]]


@pytest.fixture
def platform_client(settings: Settings, db: Database, receiver: Receiver) -> Iterator[TestClient]:
    configured = Settings(**{**settings.__dict__, "platform_webhook_url": receiver.url, "webhook_secret": SECRET,
                             "outbox_interval_seconds": 0.05})
    with TestClient(create_app(configured, db=db)) as c:
        yield c


def _flip(value: str, bits: int) -> str:
    n = int(value, 16)
    for i in range(bits):
        n ^= 1 << (i * 9 + 3)
    return f"{n:064x}"


def _pdq(path: Path) -> str:
    return next(s.value for s in hash_path(path).signals if s.signal_type == "pdq")


def _bank(client: TestClient, h: Header, name: str, value: str, category: str, role: Role = Role.CURATOR) -> None:
    if client.post("/v1/banks", json={"name": name, "restricted": name.startswith("CSAM")},
                   headers=h(role)).status_code not in (201, 409):
        raise AssertionError("bank not created")
    r = client.post(f"/v1/banks/{name}/entries", json={"signal_type": "pdq", "value": value, "category": category},
                    headers=h(role))
    assert r.status_code == 201, r.text


def _upload(client: TestClient, h: Header, path: Path, content_id: str, **form: str) -> dict[str, Any]:
    data = {"content_id": content_id, "account_id": "acct-1", "account_age": "27", "account_country": "FR",
            "content_type": "image", **form}
    with path.open("rb") as f:
        r = client.post("/v1/content", data=data, files={"media": (path.name, f, "image/jpeg")},
                        headers=h(Role.PLATFORM))
    assert r.status_code == 200, r.text
    return dict(r.json())


def _hooks(receiver: Receiver, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10  # eventual delivery by the outbox worker, not a speed check
    while len(receiver.requests) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    bodies = []
    for request in receiver.requests:
        assert verify_signature(SECRET, request.headers["Bastion-Signature"], request.body, now=dt.datetime.now(dt.UTC))
        bodies.append({**json.loads(request.body), "_kind": request.headers["Bastion-Event"]})
    return bodies


def test_known_terrorist_image_is_blocked_with_a_statement_and_the_platform_told(
        platform_client: TestClient, auth_header: Header, receiver: Receiver, tmp_path: Path) -> None:
    img = make_image(tmp_path / "known.jpg", seed=41, size=(640, 480))
    _bank(platform_client, auth_header, "TERRORIST_CONTENT", _pdq(img), "terrorist_content")
    result = _upload(platform_client, auth_header, img, "vid-1")
    assert (result["verdict"], result["status"], result["case_id"]) == ("block", "blocked", None)
    # the platform hears what was found, not which bank, rule or distance (reviewers keep those in the history)
    assert result["reasons"] == ["known terrorist content, matched automatically"]
    sor = platform_client.get(f"/v1/statements/{result['statement_puid']}", headers=auth_header(Role.ANALYST)).json()
    assert statements.problems(sor) == []
    assert sor["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    assert sor["automated_decision"] == "AUTOMATED_DECISION_FULLY" and sor["source_type"] == "SOURCE_VOLUNTARY"
    (hook,) = _hooks(receiver, 1)
    assert (hook["_kind"], hook["content_id"], hook["status"]) == ("moderation.action", "vid-1", "blocked")
    assert hook["statement_puid"] == result["statement_puid"]


def test_unrelated_upload_is_published_and_resubmission_is_a_replay(
        platform_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    known = make_image(tmp_path / "known.jpg", seed=41, size=(640, 480))
    _bank(platform_client, auth_header, "TERRORIST_CONTENT", _pdq(known), "terrorist_content")
    other = make_image(tmp_path / "other.jpg", seed=42, size=(640, 480))
    first = _upload(platform_client, auth_header, other, "img-2")
    assert (first["verdict"], first["status"], first["replay"]) == ("allow", "published", False)
    with db.read() as session:
        events = session.scalar(select(func.count()).select_from(ModerationEvent))
    again = _upload(platform_client, auth_header, other, "img-2")
    assert (again["verdict"], again["status"], again["replay"]) == ("allow", "published", True)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ModerationEvent)) == events


def test_review_decision_and_appeal_to_another_moderator(
        platform_client: TestClient, auth_header: Header, receiver: Receiver, tmp_path: Path) -> None:
    img = make_image(tmp_path / "near.jpg", seed=43, size=(640, 480))
    _bank(platform_client, auth_header, "TERRORIST_CONTENT", _flip(_pdq(img), 20), "terrorist_content")
    result = _upload(platform_client, auth_header, img, "vid-3")
    assert (result["verdict"], result["status"]) == ("review", "held")
    mona, omar = auth_header(Role.MODERATOR), auth_header(Role.MODERATOR)
    queues = {q["name"]: q for q in platform_client.get("/v1/queues", headers=mona).json()["queues"]}
    assert queues["terrorism"]["open"] == 1 and "child_safety" not in queues
    case = platform_client.post("/v1/queues/terrorism/claim", headers=mona).json()
    assert case["id"] == result["case_id"] and 0 < case["seconds_left"] <= 3600
    assert platform_client.post(f"/v1/cases/{case['id']}/decision", json={"violation": True, "actions": ["remove"]},
                                headers=omar).status_code == 409  # omar holds no claim
    decided = platform_client.post(f"/v1/cases/{case['id']}/decision",
                                   json={"violation": True, "actions": ["remove", "strike"], "note": "ISIS logo"},
                                   headers=mona)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "removed"
    again = platform_client.post(f"/v1/cases/{case['id']}/decision", json={"violation": False}, headers=mona)
    assert again.status_code == 409  # decided once, never twice
    puid = decided.json()["statement_puid"]
    sor = platform_client.get(f"/v1/statements/{puid}", headers=mona).json()
    assert sor["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED" and statements.problems(sor) == []
    appeal = platform_client.post("/v1/appeals", json={"statement_puid": puid, "text": "It is a news report."},
                                  headers=auth_header(Role.PLATFORM))
    assert appeal.status_code == 201, appeal.text
    assert platform_client.post("/v1/queues/terrorism/claim", headers=mona).status_code == 404  # not the decider
    appeal_case = platform_client.post("/v1/queues/terrorism/claim", headers=omar).json()
    assert appeal_case["reason"] == "appeal"
    reversed_ = platform_client.post(f"/v1/cases/{appeal_case['id']}/decision", json={"violation": False},
                                     headers=omar).json()
    assert (reversed_["appeal"], reversed_["status"]) == ("reversed", "published")
    kinds = [(h["_kind"], h["status"]) for h in _hooks(receiver, 3)]
    assert kinds == [("content.verdict", "held"), ("moderation.action", "removed"),
                     ("moderation.reinstated", "published")]
    history = platform_client.get("/v1/content/vid-3", headers=mona).json()["events"]
    assert [e["kind"] for e in history][-4:] == ["content.appeal_filed", "content.decision", "content.appeal_decided",
                                                  "content.reinstated"]


def test_csam_queue_is_for_child_safety_specialists(
        platform_client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    img = make_image(tmp_path / "x.jpg", seed=44, size=(640, 480))
    _bank(platform_client, auth_header, "CSAM_KNOWN", _pdq(img), "csam", role=Role.CHILD_SAFETY)
    result = _upload(platform_client, auth_header, img, "img-5")
    assert (result["verdict"], result["status"]) == ("block", "blocked")
    assert platform_client.post("/v1/queues/child_safety/claim",
                                headers=auth_header(Role.MODERATOR)).status_code == 403
    assert platform_client.post("/v1/queues/child_safety/claim",
                                headers=auth_header(Role.CHILD_SAFETY)).status_code == 404  # blocked: nothing to do


def test_notices_and_view_thresholds_open_cases_once(
        platform_client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    img = make_image(tmp_path / "y.jpg", seed=45, size=(640, 480))
    _upload(platform_client, auth_header, img, "vid-6")
    p = auth_header(Role.PLATFORM)
    r = platform_client.post("/v1/content/vid-6/metrics", json={"views": 150_000}, headers=p)
    assert r.json()["thresholds_crossed"] == [10_000, 100_000]
    assert platform_client.post("/v1/content/vid-6/metrics", json={"views": 160_000},
                                headers=p).json()["thresholds_crossed"] == []
    notice = platform_client.post("/v1/notices", json={"content_id": "vid-6", "category": "hate_speech",
                                                       "explanation": "slur at 0:42", "notifier": "user-9",
                                                       "trusted_flagger": True}, headers=p)
    assert notice.status_code == 201
    general = next(q for q in platform_client.get("/v1/queues", headers=auth_header(Role.MODERATOR)).json()["queues"]
                   if q["name"] == "general")
    assert general["open"] == 2  # one for the views (raised, not duplicated), one for the notice
    assert platform_client.post("/v1/notices", json={"content_id": "nope", "category": "hate_speech",
                                                     "explanation": "x", "notifier": "u"}, headers=p).status_code == 404


@pytest.mark.parametrize(("form", "detail"), [
    ({"content_id": ""}, "content_id is required"),
    ({"account_country": "France"}, "account_country is not valid"),
    ({"account_country": "ZZ"}, "'ZZ' is not an ISO 3166-1 alpha-2 code"),
    ({"account_country": "XX"}, "account_country is not valid"),
    ({"url": "javascript:alert(1)"}, "url is not valid: must be an absolute http(s) URL with a host"),
    ({"url": "file:///etc/passwd"}, "url is not valid"),
    ({"url": "https:///no-host"}, "url is not valid"),
    ({"account_age": "old"}, "account_age must be a number"),
    ({"account_age": "-3"}, "between 0 and 150"),
    ({"content_type": "video"}, "content_type says video but the file is image"),
    ({"content_type": "audio"}, "content_type one of image, video, text"),
])
def test_bad_intake_is_refused_and_records_nothing(
        platform_client: TestClient, auth_header: Header, db: Database, tmp_path: Path, form: dict[str, str],
        detail: str) -> None:
    img = make_image(tmp_path / "z.jpg", seed=46, size=(320, 240))
    data = {"content_id": "bad-1", "account_id": "a", "account_age": "20", "account_country": "FR",
            "content_type": "image", **form}
    with img.open("rb") as f:
        r = platform_client.post("/v1/content", data=data, files={"media": ("z.jpg", f, "image/jpeg")},
                                 headers=auth_header(Role.PLATFORM))
    assert r.status_code == 422 and detail in r.json()["detail"]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ContentItem)) == 0
        assert session.scalar(select(func.count()).select_from(ModerationEvent)) == 0


def test_intake_needs_the_platform_role(platform_client: TestClient, auth_header: Header) -> None:
    data = {"content_id": "t", "account_id": "a", "account_age": "20", "account_country": "FR",
            "content_type": "text", "text": "hello"}
    assert platform_client.post("/v1/content", data=data).status_code == 401
    assert platform_client.post("/v1/content", data=data, headers=auth_header(Role.MODERATOR)).status_code == 403
    ok = platform_client.post("/v1/content", data=data, headers=auth_header(Role.PLATFORM))
    assert ok.status_code == 200 and ok.json()["status"] == "published"


def test_a_geo_block_does_not_cancel_the_review_another_rule_asked_for(
        platform_client: TestClient, auth_header: Header, receiver: Receiver, tmp_path: Path) -> None:
    image = make_image(tmp_path / "flag.jpg", seed=52, size=(640, 480))
    _bank(platform_client, auth_header, "EXTREMIST_SYMBOLS", _flip(_pdq(image), 4), "violent_extremism")
    _bank(platform_client, auth_header, "TERRORIST_CONTENT", _flip(_pdq(image), 16), "terrorist_content")
    platform_client.app.state.matcher.refresh()  # type: ignore[attr-defined]
    result = _upload(platform_client, auth_header, image, "geo-1")
    assert (result["verdict"], result["status"]) == ("block", "restricted")
    assert result["case_id"] is not None  # terror-known-near still sends it to a person
    moderator = auth_header(Role.MODERATOR)
    case = platform_client.post("/v1/queues/terrorism/claim", headers=moderator).json()
    assert case["id"] == result["case_id"] and case["content_id"] == "geo-1"
    # no violation found by the reviewer: the automatic geo-block stays in force
    r = platform_client.post(f"/v1/cases/{case['id']}/decision", json={"violation": False}, headers=moderator)
    assert r.status_code == 200 and r.json()["status"] == "restricted"


def test_a_policy_can_publish_with_limits_while_review_waits(
        settings: Settings, db: Database, receiver: Receiver, auth_header: Header, tmp_path: Path) -> None:
    from bastion.moderation.policy import DEFAULT_POLICY_PATH

    policy = tmp_path / "policy.toml"
    text = DEFAULT_POLICY_PATH.read_text()
    near = 'name = "terror-known-near"'
    assert near in text
    policy.write_text(text.replace(near, near + '\nwhile_in_review = ["not_recommended", "age_restrict"]', 1))
    configured = Settings(**{**settings.__dict__, "platform_webhook_url": receiver.url, "webhook_secret": SECRET,
                             "outbox_interval_seconds": 0.05, "policy_path": policy})
    image = make_image(tmp_path / "near.jpg", seed=53, size=(640, 480))
    with TestClient(create_app(configured, db=db)) as client:
        _bank(client, auth_header, "TERRORIST_CONTENT", _flip(_pdq(image), 16), "terrorist_content")
        client.app.state.matcher.refresh()  # type: ignore[attr-defined]
        result = _upload(client, auth_header, image, "soft-1")
        assert (result["verdict"], result["status"]) == ("review", "restricted")
        assert result["case_id"] is not None
        hooks = _hooks(receiver, 1)
    assert hooks[0]["_kind"] == "content.verdict" and hooks[0]["status"] == "restricted"
    assert hooks[0]["restrictions"] == ["age_restrict", "not_recommended"]


def test_policy_edits_take_effect_without_a_restart_and_a_broken_edit_is_refused(
        settings: Settings, db: Database, auth_header: Header, tmp_path: Path) -> None:
    from bastion.moderation.policy import DEFAULT_POLICY_PATH

    policy = tmp_path / "policy.toml"
    text = DEFAULT_POLICY_PATH.read_text()
    policy.write_text(text)
    image = make_image(tmp_path / "near.jpg", seed=54, size=(640, 480))
    configured = Settings(**{**settings.__dict__, "policy_path": policy})
    with TestClient(create_app(configured, db=db)) as client:
        client.app.state.moderation.policy_source.check_every = 0  # type: ignore[attr-defined]  # look every time
        _bank(client, auth_header, "TERRORIST_CONTENT", _flip(_pdq(image), 16), "terrorist_content")
        client.app.state.matcher.refresh()  # type: ignore[attr-defined]
        assert _upload(client, auth_header, image, "p-1")["verdict"] == "review"
        # tighten the rule: near matches of known terrorist content are now removed at once
        stricter = text.replace('when.bank_match = { categories = ["terrorist_content"], max_distance = 10 }',
                                'when.bank_match = { categories = ["terrorist_content"], max_distance = 20 }', 1)
        assert stricter != text
        policy.write_text(stricter.replace('version = "2025-06-01"', 'version = "2025-06-02"', 1))
        assert _upload(client, auth_header, image, "p-2")["verdict"] == "block"
        in_force = client.get("/status", headers=auth_header(Role.ADMIN)).json()["policy"]
        assert in_force == {"in_force": "bastion-default@2025-06-02", "error": None}
        policy.write_text(stricter.replace('severity = 5', 'severity = 50', 1))  # a broken edit
        assert _upload(client, auth_header, image, "p-3")["verdict"] == "block"  # the last good policy stays
        status = client.get("/status", headers=auth_header(Role.ADMIN)).json()["policy"]
        assert status["in_force"] == "bastion-default@2025-06-02" and "severity" in status["error"]
        verdicts = client.get("/v1/content/p-2", headers=auth_header(Role.ANALYST)).json()["events"]
        assert any(e["actor"] == "policy:bastion-default@2025-06-02" for e in verdicts)


def test_shadow_rules_are_counted_against_what_moderators_decided(
        platform_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    from bastion.core.clock import SystemClock
    from bastion.core.events import record
    from bastion.moderation.events import Decided, EventKind, ShadowVerdict
    from bastion.moderation.kernel import content_subject

    now = SystemClock().now()
    with db.write() as session:  # two uploads a shadow rule held on; a moderator later found one a violation
        for content_id, violation in (("s-1", True), ("s-2", False), ("s-3", None)):
            record(session, ModerationEvent, subject=content_subject(content_id), kind=EventKind.SHADOW_VERDICT,
                   actor="policy:test", at=now, data=ShadowVerdict(rule="terror-text-autoblock", would_be="block"))
            if violation is not None:
                record(session, ModerationEvent, subject=content_subject(content_id), kind=EventKind.DECISION,
                       actor="user:mo", at=now, data=Decided(case_id=1, violation=violation, reason="upload"))
    report = platform_client.get("/v1/policy", headers=auth_header(Role.ANALYST)).json()
    assert report["policy"] == "bastion-default@2025-06-01"
    assert {"name": "terror-text-autoblock", "category": "terrorist_content", "verdict": "block", "mode": "shadow",
            "severity": 5} in report["rules"]
    assert report["shadow"] == [{"rule": "terror-text-autoblock", "would_be": "block", "held": 3, "reviewed": 2,
                                 "agreed": 1, "agreement": 0.5}]
    assert platform_client.get("/v1/policy", headers=auth_header(Role.PLATFORM)).status_code == 403


def test_a_violation_decision_adds_to_the_automatic_geo_block(
        platform_client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    image = make_image(tmp_path / "flag2.jpg", seed=55, size=(640, 480))
    _bank(platform_client, auth_header, "EXTREMIST_SYMBOLS", _flip(_pdq(image), 4), "violent_extremism")
    _bank(platform_client, auth_header, "TERRORIST_CONTENT", _flip(_pdq(image), 16), "terrorist_content")
    platform_client.app.state.matcher.refresh()  # type: ignore[attr-defined]
    result = _upload(platform_client, auth_header, image, "geo-2")
    moderator = auth_header(Role.MODERATOR)
    case = platform_client.post("/v1/queues/terrorism/claim", headers=moderator).json()
    assert case["id"] == result["case_id"]
    r = platform_client.post(f"/v1/cases/{case['id']}/decision", headers=moderator,
                             json={"violation": True, "actions": ["age_restrict"]})
    assert r.status_code == 200 and r.json()["status"] == "restricted"
    item = platform_client.get("/v1/content/geo-2", headers=moderator).json()
    assert item["restrictions"] == ["age_restrict", "disable_in_territories"]


def test_the_third_strike_suspends_the_account_and_records_until_when(
        platform_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    """The default policy strikes on known child abuse material and suspends at three strikes; the suspension event's
    ``until`` is written as ISO 8601 text (a datetime in the JSON column made the third strike fail)."""
    img = make_image(tmp_path / "known.jpg", seed=41, size=(640, 480))
    _bank(platform_client, auth_header, "CSAM_KNOWN", _pdq(img), "csam", role=Role.CHILD_SAFETY)
    for n in range(3):
        assert _upload(platform_client, auth_header, img, f"strike-{n}", account_id="acct-3")["verdict"] == "block"
    with db.read() as session:
        account = session.get(Account, "acct-3")
        assert account is not None and (account.strikes, account.status) == (3, "suspended")
        (event,) = session.scalars(select(ModerationEvent).where(ModerationEvent.subject == "account:acct-3",
                                                                 ModerationEvent.kind == "account.suspended"))
    assert dt.datetime.fromisoformat(str(event.data["until"])) == account.suspended_until


def test_every_kind_has_a_payload_model() -> None:
    assert set(PAYLOADS) == set(EventKind)


def test_a_review_an_appeal_and_a_strike_write_only_typed_payloads(
        platform_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    img = make_image(tmp_path / "near.jpg", seed=43, size=(640, 480))
    _bank(platform_client, auth_header, "TERRORIST_CONTENT", _flip(_pdq(img), 20), "terrorist_content")
    assert _upload(platform_client, auth_header, img, "typed-1")["verdict"] == "review"
    mona, omar = auth_header(Role.MODERATOR), auth_header(Role.MODERATOR)
    case = platform_client.post("/v1/queues/terrorism/claim", headers=mona).json()
    decided = platform_client.post(f"/v1/cases/{case['id']}/decision",
                                   json={"violation": True, "actions": ["remove", "strike"]}, headers=mona).json()
    platform_client.post("/v1/appeals", json={"statement_puid": decided["statement_puid"], "text": "news"},
                         headers=auth_header(Role.PLATFORM))
    appeal_case = platform_client.post("/v1/queues/terrorism/claim", headers=omar).json()
    platform_client.post(f"/v1/cases/{appeal_case['id']}/decision", json={"violation": False}, headers=omar)
    with db.read() as session:
        events = session.scalars(select(ModerationEvent).order_by(ModerationEvent.id)).all()
    assert {e.kind for e in events} >= {"content.submitted", "content.verdict", "case.opened", "content.decision",
                                         "content.actions_applied", "content.statement_issued", "account.strike",
                                         "content.appeal_filed", "content.appeal_decided", "content.reinstated"}
    for event in events:  # nothing stored beyond (or other than) what the kind's model says
        assert payload(event, PAYLOADS[EventKind(event.kind)]).model_dump(mode="json") == event.data, event.kind


def test_a_partial_reversal_lifts_only_its_own_limits_and_leaves_a_later_removal_alone(
        platform_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    img = make_image(tmp_path / "near.jpg", seed=48, size=(640, 480))
    _bank(platform_client, auth_header, "TERRORIST_CONTENT", _flip(_pdq(img), 20), "terrorist_content")
    _upload(platform_client, auth_header, img, "vid-8")
    mona, omar = auth_header(Role.MODERATOR), auth_header(Role.MODERATOR)
    case = platform_client.post("/v1/queues/terrorism/claim", headers=mona).json()
    decided = platform_client.post(f"/v1/cases/{case['id']}/decision", headers=mona, json={
        "violation": True, "actions": ["demote", "not_recommended"]}).json()
    assert decided["status"] == "restricted"
    platform_client.post("/v1/appeals", json={"statement_puid": decided["statement_puid"], "text": "satire"},
                         headers=auth_header(Role.PLATFORM))
    with db.write() as session:  # meanwhile an order disabled it in Germany: a limit this appeal did not contest
        item = session.get(ContentItem, "vid-8")
        assert item is not None
        item.restrictions, item.territories = sorted([*item.restrictions, "disable_in_territories"]), ["DE"]
    appeal_case = platform_client.post("/v1/queues/terrorism/claim", headers=omar).json()
    partly = platform_client.post(f"/v1/cases/{appeal_case['id']}/decision", headers=omar, json={
        "violation": True, "appeal_outcome": "partly_reversed", "actions": ["not_recommended"]})
    assert partly.status_code == 200, partly.text
    with db.read() as session:
        item = session.get(ContentItem, "vid-8")
    assert item is not None and (item.status, item.restrictions) == (
        "restricted", ["disable_in_territories", "not_recommended"])


def test_an_appeal_partly_reversed_lifts_the_removal_keeps_the_rest_and_is_counted(
        platform_client: TestClient, auth_header: Header, receiver: Receiver, db: Database, tmp_path: Path) -> None:
    img = make_image(tmp_path / "near.jpg", seed=47, size=(640, 480))
    _bank(platform_client, auth_header, "TERRORIST_CONTENT", _flip(_pdq(img), 20), "terrorist_content")
    result = _upload(platform_client, auth_header, img, "vid-7")
    mona, omar = auth_header(Role.MODERATOR), auth_header(Role.MODERATOR)
    case = platform_client.post("/v1/queues/terrorism/claim", headers=mona).json()
    decided = platform_client.post(f"/v1/cases/{case['id']}/decision", headers=mona, json={
        "violation": True, "actions": ["remove", "not_recommended", "strike"], "note": "ISIS logo"}).json()
    assert decided["status"] == "removed" and result["case_id"] == case["id"]
    puid = decided["statement_puid"]
    platform_client.post("/v1/appeals", json={"statement_puid": puid, "text": "It is a news report."},
                         headers=auth_header(Role.PLATFORM))
    appeal_case = platform_client.post("/v1/queues/terrorism/claim", headers=omar).json()

    def decide(body: dict[str, Any]) -> Any:
        return platform_client.post(f"/v1/cases/{appeal_case['id']}/decision", json=body, headers=omar)

    # what stands must be among what was decided, and a partial reversal lifts some and keeps some
    refused = decide({"violation": True, "appeal_outcome": "partly_reversed", "actions": ["age_restrict"]})
    assert refused.status_code == 422 and "age_restrict" in refused.json()["detail"]
    everything = ["remove", "not_recommended", "strike"]
    assert decide({"violation": True, "appeal_outcome": "partly_reversed", "actions": everything}).status_code == 422
    assert decide({"violation": True, "appeal_outcome": "partly_reversed", "actions": []}).status_code == 422
    partly = decide({"violation": True, "appeal_outcome": "partly_reversed", "actions": ["not_recommended", "strike"],
                     "note": "Newsworthy, but not for recommendation."})
    assert partly.status_code == 200, partly.text
    answer = partly.json()
    assert (answer["appeal"], answer["status"]) == ("partly_reversed", "restricted")
    assert (answer["lifted"], answer["standing"]) == (["remove"], ["not_recommended", "strike"])
    # the new statement says what remains, and is valid for the Transparency Database
    sor = platform_client.get(f"/v1/statements/{answer['statement_puid']}", headers=mona).json()
    assert statements.problems(sor) == []
    assert sor["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_DEMOTED"]
    assert "remove lifted; not recommended, strike remains" in sor["decision_facts"]
    assert puid in sor["decision_facts"] and "Newsworthy" in sor["decision_facts"]
    hooks = _hooks(receiver, 4)
    last = hooks[-1]
    assert (last["_kind"], last["status"], last["restrictions"]) == (
        "moderation.partly_reinstated", "restricted", ["not_recommended"])
    assert (last["lifted"], last["actions"], last["statement_puid"]) == (
        ["remove"], ["not_recommended", "strike"], answer["statement_puid"])
    with db.read() as session:
        item = session.get(ContentItem, "vid-7")
        events = list(session.scalars(select(ModerationEvent).where(ModerationEvent.subject == "content:vid-7")
                                      .order_by(ModerationEvent.id)))
    assert item is not None and (item.status, item.restrictions) == ("restricted", ["not_recommended"])
    decided_event = next(e for e in events if e.kind == EventKind.APPEAL_DECIDED.value)
    recorded = payload(decided_event, PAYLOADS[EventKind.APPEAL_DECIDED]).model_dump()
    assert {k: recorded[k] for k in ("outcome", "lifted", "standing")} == {
        "outcome": "partly_reversed", "lifted": ["remove"], "standing": ["not_recommended", "strike"]}
    assert [e.kind for e in events if e.id > decided_event.id] == ["content.statement_issued",
                                                                   "content.partly_reinstated"]
    rollups.catch_up(db)
    month = {"from": events[0].at.date().replace(day=1).isoformat(), "to": events[-1].at.date().isoformat()}
    [figures] = platform_client.get("/v1/transparency/metrics", params=month,
                                    headers=auth_header(Role.ANALYST)).json()["groups"]
    assert (figures["appeals_filed"], figures["appeals_upheld"], figures["appeals_partly_reversed"],
            figures["appeals_reversed"]) == (1, 0, 1, 0)
