"""The feed gate over HTTP: every reason, in the order given, and decisions honoured as the view follows them."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from tests.factories.media import make_image
from tests.feed.conftest import Header, bank, decide, feed, flip, pdq, until, upload


def _excluded(answer: dict[str, object]) -> dict[str, list[str]]:
    return {e["content_id"]: e["reasons"] for e in answer["excluded"]}  # type: ignore[attr-defined]


def test_each_reason_and_the_order_kept(client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    known = make_image(tmp_path / "known.jpg", seed=61, size=(640, 480))
    near = make_image(tmp_path / "near.jpg", seed=62, size=(640, 480))
    bank(client, auth_header, "TERRORIST_CONTENT", pdq(known), "terrorist_content")
    bank(client, auth_header, "TERRORIST_CONTENT", flip(pdq(near), 20), "terrorist_content")
    assert upload(client, auth_header, "blocked-1", known)["status"] == "blocked"
    assert upload(client, auth_header, "held-1", near)["status"] == "held"
    for i in (1, 2, 3):
        assert upload(client, auth_header, f"ok-{i}")["status"] == "published"
    candidates = ["ok-3", "blocked-1", "nope", "held-1", "ok-1", "ok-2"]
    adult = {"account_id": "viewer-1", "age": 30}
    answer = until(lambda: (a := feed(client, auth_header, adult, candidates))["eligible"] == ["ok-3", "ok-1", "ok-2"]
                   and a)
    assert answer["eligible"] == ["ok-3", "ok-1", "ok-2"]  # the order given
    assert _excluded(answer) == {"blocked-1": ["removed"], "nope": ["unknown"], "held-1": ["held_for_review"]}
    assert [e["content_id"] for e in answer["excluded"]] == ["blocked-1", "nope", "held-1"]
    assert answer["reasons"]["removed"].startswith("The content was removed")


def test_a_decision_is_honoured_by_the_next_requests(client: TestClient, auth_header: Header,
                                                     tmp_path: Path) -> None:
    near = make_image(tmp_path / "near.jpg", seed=63, size=(640, 480))
    near2 = make_image(tmp_path / "near2.jpg", seed=64, size=(640, 480))
    bank(client, auth_header, "TERRORIST_CONTENT", flip(pdq(near), 20), "terrorist_content")
    bank(client, auth_header, "TERRORIST_CONTENT", flip(pdq(near2), 20), "terrorist_content")
    upload(client, auth_header, "aged", near)
    upload(client, auth_header, "norec", near2)
    assert decide(client, auth_header, "terrorism", ["age_restrict"])["status"] == "restricted"
    assert decide(client, auth_header, "terrorism", ["not_recommended"])["status"] == "restricted"
    adult, teen = {"account_id": "a", "age": 40}, {"account_id": "t", "age": 15}
    # wait until the view has followed both decisions (until then "norec" is still excluded as held for review)
    answer = until(lambda: (a := feed(client, auth_header, adult, ["aged", "norec"]))
                   and _excluded(a) == {"norec": ["not_recommended"]} and a)
    assert answer["eligible"] == ["aged"]  # age-restricted content stays eligible for adults
    assert _excluded(feed(client, auth_header, teen, ["aged"])) == {"aged": ["age_restricted"]}


def test_viewer_by_account_uses_the_recorded_age_and_unknown_is_a_minor(
        client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    near = make_image(tmp_path / "near.jpg", seed=65, size=(640, 480))
    bank(client, auth_header, "TERRORIST_CONTENT", flip(pdq(near), 20), "terrorist_content")
    upload(client, auth_header, "aged", near)
    decide(client, auth_header, "terrorism", ["age_restrict"])
    p = auth_header(Role.PLATFORM)
    assert client.put("/v1/accounts/grown-up/age", json={"years": 35}, headers=p).status_code == 200
    assert client.put("/v1/accounts/kid/age", json={"years": 14}, headers=p).status_code == 200
    assert until(lambda: feed(client, auth_header, "grown-up", ["aged"])["eligible"] == ["aged"])
    assert _excluded(feed(client, auth_header, "kid", ["aged"])) == {"aged": ["age_restricted"]}
    assert _excluded(feed(client, auth_header, "stranger", ["aged"])) == {"aged": ["age_restricted"]}  # fail closed


def test_content_disabled_in_territories_is_kept_from_viewers_there_and_from_viewers_placed_nowhere(
        client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    near = make_image(tmp_path / "near.jpg", seed=66, size=(640, 480))
    bank(client, auth_header, "TERRORIST_CONTENT", flip(pdq(near), 20), "terrorist_content")
    upload(client, auth_header, "geo", near)
    upload(client, auth_header, "plain")
    assert decide(client, auth_header, "terrorism", ["disable_in_territories"],
                  territories=["DE", "AT"])["status"] == "restricted"
    german = {"account_id": "v-de", "age": 30, "country": "de"}
    assert until(lambda: _excluded(feed(client, auth_header, german, ["geo", "plain"]))
                 == {"geo": ["disabled_in_territory"]})
    french = {"account_id": "v-fr", "age": 30, "country": "FR"}
    assert feed(client, auth_header, french, ["geo", "plain"])["eligible"] == ["geo", "plain"]
    # where the viewer is was not said: content disabled anywhere stays out (fail closed)
    for nowhere in ({"account_id": "v-x", "age": 30}, "v-x"):
        assert _excluded(feed(client, auth_header, nowhere, ["geo", "plain"])) == {"geo": ["disabled_in_territory"]}
    content = client.get("/v1/content/geo", headers=auth_header(Role.PLATFORM)).json()
    assert content["territories"] == ["AT", "DE"]
    assert content["restrictions"] == ["disable_in_territories"]
    bad = client.post("/v1/feed/filter", json={"viewer": {"account_id": "v", "country": "DEU"}, "candidates": []},
                      headers=auth_header(Role.PLATFORM))
    assert bad.status_code == 422


def test_bad_requests_are_refused(client: TestClient, auth_header: Header) -> None:
    p = auth_header(Role.PLATFORM)
    for body in ({"viewer": "v"}, {"viewer": "bad id!", "candidates": []}, {"viewer": {"account_id": "v", "age": -1},
                 "candidates": []}, {"viewer": "v", "candidates": ["x"] * 5001}, {"viewer": "v", "candidates": [""]},
                 {"viewer": "v", "candidates": [], "extra": 1}):
        r = client.post("/v1/feed/filter", json=body, headers=p)
        assert r.status_code == 422, body
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.post("/v1/feed/filter", json={"viewer": "v", "candidates": []},
                       headers=auth_header(Role.MODERATOR)).status_code == 403
    assert client.post("/v1/feed/filter", json={"viewer": "v", "candidates": []}).status_code == 401
    reasons = client.get("/v1/feed/reasons", headers=p).json()
    assert {r["code"] for r in reasons} >= {"removed", "held_for_review", "not_recommended", "borderline",
                                            "age_restricted", "crisis_exclusion", "fact_checked_false",
                                            "designated_entity", "unknown", "disabled_in_territory"}
