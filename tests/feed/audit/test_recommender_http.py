"""The platform-recommender contract over real HTTP: the reference recommender served behind it gives exactly the
figures it gives in process, and an answer out of contract stops the audit with its reason."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bastion.feed.audit import catalogue, runner
from bastion.feed.audit.personas import AMNESTY, NEWSGUARD
from bastion.feed.audit.recommender import (
    HttpRecommender,
    RecommenderError,
    RecommendRequest,
    ReferenceRecommender,
    answer_json,
    request_from_json,
)
from tests.factories.live import loopback

CATALOGUE = catalogue.build(6, 300)
REFERENCE = ReferenceRecommender(CATALOGUE, 6)


class Platform(BaseHTTPRequestHandler):
    """A platform's recommender, as the contract describes it; labels left out (the catalogue supplies them)."""

    broken = False
    seen: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Platform.seen.append(body)
        items = answer_json(REFERENCE.recommend(request_from_json(body)))["items"]
        data = json.dumps({"items": [{k: v for k, v in i.items() if k != "label"} for i in items]}
                          if not self.broken else {"slate": []}).encode()
        self.send_response(200 if self.path == "/recommend" else 404)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_the_contract_over_http_gives_the_in_process_figures() -> None:
    settings = runner.AuditSettings("t", (NEWSGUARD[0], AMNESTY[0]), 3, 6, 300, bucket_minutes=1)
    with loopback(ThreadingHTTPServer(("127.0.0.1", 0), Platform)) as url:
        over_http = runner.run(settings, HttpRecommender(url, "secret", CATALOGUE), None)
    assert over_http == runner.run(settings, REFERENCE, None)
    first = Platform.seen[0]
    assert first == {"persona_id": "adult-war-watcher", "session_minute": 0.0, "history": [], "exclude": []}
    later = Platform.seen[5]
    assert len(later["history"]) == 5 and set(later["history"][0]) == {  # type: ignore[arg-type]
        "content_id", "topic", "watched_seconds", "fraction"}


def test_an_answer_out_of_contract_stops_the_audit() -> None:
    class Broken(Platform):
        broken = True

    with loopback(ThreadingHTTPServer(("127.0.0.1", 0), Broken)) as url, pytest.raises(RecommenderError, match="items"):
        HttpRecommender(url, catalogue=CATALOGUE).recommend(RecommendRequest("p", 0, [], []))
