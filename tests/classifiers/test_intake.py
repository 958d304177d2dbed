"""Classifier scores at intake: ``POST /v1/content`` with a hosted model changing the verdict by the default policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app
from tests.factories.media import make_image
from tests.factories.model_host import Host

Header = Callable[[Role], dict[str, str]]


@pytest.fixture
def client(settings: Settings, db: Database, host: Host, tmp_path: Path) -> Iterator[TestClient]:
    config = tmp_path / "classifiers.toml"
    config.write_text(f"""
[[classifiers]]
kind = "http"
name = "safety-model"
url = "{host.url}"
scores = ["hate_speech", "violent_extremism"]
accepts = ["text", "image"]
timeout_seconds = 0.5
""")
    configured = Settings(**{**settings.__dict__, "classifiers_path": config, "classifier_token": "tok-123"})
    with TestClient(create_app(configured, db=db)) as c:
        yield c


def _post(client: TestClient, h: Header, content_id: str, text: str, media: Path | None = None) -> dict[str, object]:
    data = {"content_id": content_id, "account_id": "acct-9", "account_age": "30", "account_country": "DE",
            "content_type": "image" if media else "text", "text": text}
    if media:
        with media.open("rb") as f:
            r = client.post("/v1/content", data=data, files={"media": (media.name, f, "image/jpeg")},
                            headers=h(Role.PLATFORM))
    else:
        r = client.post("/v1/content", data=data, headers=h(Role.PLATFORM))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_high_score_holds_the_upload_for_review_by_the_policy(client: TestClient, auth_header: Header,
                                                                 host: Host) -> None:
    host.answer(body='{"scores": {"hate_speech": 0.93, "violent_extremism": 0.1}}')
    result = _post(client, auth_header, "post-1", "they are vermin")
    assert (result["verdict"], result["status"]) == ("review", "held")
    # what was found and how; the score and threshold stay with reviewers (an evader would tune against them)
    assert result["reasons"] == ["likely hate speech, found by an automated classifier"]
    history = client.get("/v1/content/post-1", headers=auth_header(Role.ANALYST)).json()["events"]
    verdict = next(e for e in history if e["kind"] == "content.verdict")
    assert verdict["data"]["reasons"] == ["hate-speech-review (hate_speech): classifier hate_speech scored 0.93 "
                                          "(threshold 0.85)"]
    queues = {q["name"]: q for q in client.get("/v1/queues", headers=auth_header(Role.MODERATOR)).json()["queues"]}
    assert queues["general"]["open"] == 1
    assert host.requests[0][0]["authorization"] == "Bearer tok-123"


def test_a_low_score_publishes(client: TestClient, auth_header: Header, host: Host) -> None:
    host.answer(body='{"scores": {"hate_speech": 0.2}}')
    result = _post(client, auth_header, "post-2", "lovely day")
    assert (result["verdict"], result["reasons"]) == ("allow", [])


def test_an_outage_never_blocks_intake_and_is_said_in_the_reasons(client: TestClient, auth_header: Header,
                                                                   host: Host) -> None:
    host.answer(body='{"scores": {"hate_speech": 0.99}}', delay=2.0)
    result = _post(client, auth_header, "post-3", "they are vermin")
    assert result["verdict"] == "allow"
    assert result["reasons"] == ["classifier safety-model gave no score: no answer within 0.5 s"]
    history = client.get("/v1/content/post-3", headers=auth_header(Role.ANALYST)).json()["events"]
    verdict = next(e for e in history if e["kind"] == "content.verdict")
    assert verdict["data"]["reasons"] == result["reasons"]  # kept in the event log too
    before = _failures(client, auth_header)
    host.answer(500)
    assert _post(client, auth_header, "post-4", "x")["reasons"] == [
        "classifier safety-model gave no score: answered HTTP 500"]
    assert _failures(client, auth_header) == before + 1  # seen on /metrics too


def _failures(client: TestClient, h: Header) -> float:
    text = client.get("/metrics", headers=h(Role.ANALYST)).text
    series = 'bastion_classifier_failures_total{classifier="safety-model"}'
    line = next(x for x in text.splitlines() if x.startswith(series))
    return float(line.split()[-1])


def test_the_media_file_reaches_the_hosted_model(client: TestClient, auth_header: Header, host: Host,
                                                 tmp_path: Path) -> None:
    img = make_image(tmp_path / "flag.jpg", seed=11)
    host.answer(body='{"scores": {"violent_extremism": 0.95}}')
    result = _post(client, auth_header, "img-1", "", img)
    assert result["verdict"] == "review"
    assert result["reasons"] == ["likely violent extremist content, found by an automated classifier"]
    headers, body = host.requests[0]
    assert headers["content-type"].startswith("multipart/form-data") and img.read_bytes() in body


def test_media_matching_a_restricted_bank_is_never_sent_to_a_classifier(
        client: TestClient, auth_header: Header, host: Host, tmp_path: Path) -> None:
    from tests.moderation.test_flow import _bank, _pdq

    image = make_image(tmp_path / "standin.jpg", seed=81, size=(640, 480))
    _bank(client, auth_header, "CSAM_KNOWN", _pdq(image), "csam", role=Role.CHILD_SAFETY)
    client.app.state.matcher.refresh()  # type: ignore[attr-defined]
    result = _post(client, auth_header, "cs-9", "caption", media=image)
    assert result["verdict"] == "block"
    assert len(host.requests) == 1  # the caption was scored ...
    headers, body = host.requests[0]
    assert headers["content-type"] == "application/json" and image.read_bytes()[:64] not in body  # ... the file not


def test_a_classifier_outage_is_in_the_reasons_but_not_in_the_uploaders_statement(
        client: TestClient, auth_header: Header, host: Host, tmp_path: Path) -> None:
    from tests.moderation.test_flow import _bank, _pdq

    image = make_image(tmp_path / "known.jpg", seed=83, size=(640, 480))
    _bank(client, auth_header, "TERRORIST_CONTENT", _pdq(image), "terrorist_content")
    client.app.state.matcher.refresh()  # type: ignore[attr-defined]
    host.answer(500)
    result = _post(client, auth_header, "t-9", "caption", media=image)
    assert result["verdict"] == "block" and any("gave no score" in r for r in result["reasons"])
    statement = client.get(f"/v1/statements/{result['statement_puid']}", headers=auth_header(Role.ANALYST)).json()
    assert statement["decision_facts"] == "Known terrorist content, matched automatically."  # no outage either
