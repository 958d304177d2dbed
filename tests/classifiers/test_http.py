"""The HTTP classifier against a real model host on loopback: answers, outages and malformed answers."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bastion.classifiers.http import HttpClassifier
from bastion.classifiers.interfaces import Accepts, ClassifierContext, ClassifierError, ClassifierFailed, Content
from bastion.classifiers.services import score
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hashing.interfaces import MediaKind
from bastion.web.app import create_app
from tests.factories.media import make_image
from tests.factories.model_host import Answer, Host

TOKEN = "s3cret-classifier-token"


def _classifier(host: Host, timeout: float = 2.0, accepts: tuple[Accepts, ...] = (Accepts.TEXT,)) -> HttpClassifier:
    return HttpClassifier("vision", host.url, ["violent_extremism", "hate_speech"], frozenset(accepts),
                          timeout_seconds=timeout, token=TOKEN)


def test_text_is_posted_as_json_with_the_token_and_scores_are_read(host: Host) -> None:
    host.answer(body='{"scores": {"hate_speech": 0.93, "violent_extremism": 0}}')
    assert _classifier(host).classify(Content("they are vermin")) == {"hate_speech": 0.93, "violent_extremism": 0.0}
    headers, body = host.requests[0]
    assert json.loads(body) == {"text": "they are vermin"}
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["content-type"] == "application/json"


def test_media_is_posted_as_multipart_with_its_kind(host: Host, tmp_path: Path) -> None:
    img = make_image(tmp_path / "a.jpg", seed=3)
    host.answer(body='{"scores": {"violent_extremism": 0.5}}')
    c = _classifier(host, accepts=(Accepts.IMAGE,))
    assert c.classify(Content("caption", img, MediaKind.IMAGE)) == {"violent_extremism": 0.5}
    headers, body = host.requests[0]
    assert headers["content-type"].startswith("multipart/form-data")
    assert img.read_bytes() in body and b'name="kind"' in body and b"image" in body
    assert not c.wants(Content("", img, MediaKind.VIDEO))  # a kind it does not read is not sent


@pytest.mark.parametrize(("status", "body", "delay", "reason"), [
    (500, '{"scores": {}}', 0.0, "answered HTTP 500"),
    (503, "", 0.0, "answered HTTP 503"),
    (200, "<html>oops</html>", 0.0, "not JSON"),
    (200, '{"score": 0.5}', 0.0, 'without a "scores" object'),
    (200, '{"scores": {"hate_speech": 1.5}}', 0.0, "not a number between 0 and 1"),
    (200, '{"scores": {"hate_speech": -0.1}}', 0.0, "not a number between 0 and 1"),
    (200, '{"scores": {"hate_speech": "high"}}', 0.0, "not a number between 0 and 1"),
    (200, '{"scores": {"hate_speech": true}}', 0.0, "not a number between 0 and 1"),
    (200, '{"scores": {"nudity": 0.2}}', 0.0, "unknown score 'nudity'"),
    (200, '{"scores": {"hate_speech": 0.9}}', 1.0, "no answer within 0.2 s"),
])
def test_failures_give_no_score_and_a_reason(host: Host, status: int, body: str, delay: float, reason: str) -> None:
    host.answer(status, body, delay)
    with pytest.raises(ClassifierFailed, match=reason.replace("(", r"\(")) as failed:
        _classifier(host, timeout=0.2).classify(Content("text"))
    assert TOKEN not in str(failed.value)


def test_a_trickled_answer_is_cut_at_the_deadline(host: Host) -> None:
    host.answer(200, '{"scores": {"hate_speech": 0.9}}', trickle=0.1)  # 33 bytes: 3.3 s in all
    started = time.monotonic()
    with pytest.raises(ClassifierFailed, match=r"no answer within 0\.3 s"):
        _classifier(host, timeout=0.3).classify(Content("text"))
    assert time.monotonic() - started < 2.0  # not the whole trickle: each byte arriving in time is not enough


def test_an_unreachable_host_is_a_failure_too(host: Host) -> None:
    c = HttpClassifier("gone", "http://127.0.0.1:9/score", ["hate_speech"], frozenset({Accepts.TEXT}),
                       timeout_seconds=0.5)
    with pytest.raises(ClassifierFailed, match="unreachable"):
        c.classify(Content("text"))


def test_an_outage_never_stops_the_others_and_is_logged_without_the_token(
        host: Host, caplog: pytest.LogCaptureFixture) -> None:
    working = HttpClassifier("other", host.url, ["borderline"], frozenset({Accepts.TEXT}))
    host.script.extend([Answer(500), Answer(200, b'{"scores": {"borderline": 0.4}}')])  # in the order asked
    with caplog.at_level(logging.WARNING, logger="bastion.classifiers.services"):
        result = score([_classifier(host), working], Content("text"))
    assert result.scores == {"borderline": 0.4}
    assert [str(f) for f in result.failures] == ["classifier vision gave no score: answered HTTP 500"]
    assert "answered HTTP 500" in caplog.text and TOKEN not in caplog.text
    assert TOKEN not in repr(_classifier(host))


def test_configure_validates_the_entry(db: Database) -> None:
    ctx = ClassifierContext(db, token=TOKEN)
    ok = HttpClassifier.configure({"kind": "http", "name": "v", "url": "http://127.0.0.1:1/s", "scores": ["a"],
                                   "accepts": ["text", "image"], "timeout_seconds": 1}, ctx)
    assert (tuple(ok.score_names()), set(ok.accepts()), ok.timeout_seconds) == (("a",), {Accepts.TEXT, Accepts.IMAGE},
                                                                                  1.0)
    cases: list[tuple[dict[str, object], str]] = [
        ({"url": "ftp://x", "scores": ["a"]}, "url: an http"),
        ({"url": "http://x", "scores": []}, "scores: a non-empty list"),
        ({"url": "http://x", "scores": ["a b"]}, "score names are"),
        ({"url": "http://x", "scores": ["a"], "accepts": ["audio"]}, "accepts"),
        ({"url": "http://x", "scores": ["a"], "timeout_seconds": 0}, "timeout_seconds"),
        ({"url": "http://x", "scores": ["a"], "tiemout_seconds": 1}, "unknown field 'tiemout_seconds'"),
    ]
    for entry, message in cases:
        with pytest.raises(ClassifierError, match=message):
            HttpClassifier.configure({"kind": "http", "name": "v", **entry}, ctx)


def test_the_app_closes_the_connection_pool_at_shutdown(settings: Settings, db: Database, host: Host) -> None:
    host.answer(body='{"scores": {"hate_speech": 0.2}}')
    c = _classifier(host)
    with TestClient(create_app(settings, db=db, classifiers=[c])):
        assert c.classify(Content("while the app runs")) == {"hate_speech": 0.2}
    with pytest.raises(ClassifierFailed, match="closed"):  # a clear failure reason, not a crash
        c.classify(Content("after shutdown"))
    assert len(host.requests) == 1
    c.close()  # twice is harmless
