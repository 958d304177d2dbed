"""The minors API end to end over the app: ages and bands, checks and their events, grooming cases, defaults and
settings, family pairing with its webhooks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.events import SETTLE_SECONDS
from bastion.core.outbox.models import OutboxMessage
from bastion.minors import interactions
from bastion.minors.models import FamilyLink, MinorEvent, MinorsCase, MinorsMark
from bastion.web.app import create_app

Header = Callable[[Role], dict[str, str]]


@pytest.fixture
def api(settings: Settings, db: Database) -> Iterator[TestClient]:
    hooked = dataclasses.replace(settings, platform_webhook_url="http://127.0.0.1:9/hook", webhook_secret=b"k" * 32)
    with TestClient(create_app(hooked, db=db, refresh=False)) as client:
        yield client


@pytest.fixture
def platform(auth_header: Header) -> dict[str, str]:
    return auth_header(Role.PLATFORM)


def _age(api: TestClient, h: dict[str, str], account: str, years: float, **extra: Any) -> dict[str, Any]:
    answer = api.put(f"/v1/accounts/{account}/age", json={"years": years, **extra}, headers=h)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _watch(api: TestClient) -> None:
    """A round of the grooming watch (the app's ``bastion-grooming`` worker, which these tests do not run)."""
    interactions.watch_grooming(api.app.state.minors)  # type: ignore[attr-defined]


def _events(db: Database, kind: str) -> list[MinorEvent]:
    with db.read() as session:
        return list(session.scalars(select(MinorEvent).where(MinorEvent.kind == kind).order_by(MinorEvent.id)))


def test_ages_give_bands_and_a_low_confidence_estimate_the_youngest_plausible(api: TestClient, platform: dict[str, str]
                                                                               ) -> None:
    assert _age(api, platform, "a1", 14)["band"] == "13_15"
    body = _age(api, platform, "a2", 19, basis="estimated", method="facial-estimation", confidence=0.3)
    assert body["band"] == "13_15"
    got = api.get("/v1/accounts/a2/age", headers=platform).json()
    assert (got["basis"], got["method"], got["band"]) == ("estimated", "facial-estimation", "13_15")
    assert api.get("/v1/accounts/nobody/age", headers=platform).status_code == 404


def test_bad_ages_are_refused_and_change_nothing(api: TestClient, platform: dict[str, str], db: Database) -> None:
    assert api.put("/v1/accounts/a1/age", json={"years": -1}, headers=platform).status_code == 422
    refused = api.put("/v1/accounts/a1/age", json={"years": 20, "basis": "estimated", "method": "x"},
                      headers=platform)
    assert refused.status_code == 422 and "confidence" in refused.json()["detail"]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert _events(db, "age.recorded") == []


def test_an_under_13_account_is_flagged_with_a_statement_of_reasons(api: TestClient, platform: dict[str, str],
                                                                   auth_header: Header) -> None:
    _age(api, platform, "kid", 11)
    _age(api, platform, "kid", 10.5)  # the same account again: the same case
    assert api.get("/v1/minors/cases", headers=auth_header(Role.MODERATOR)).status_code == 403
    cases = api.get("/v1/minors/cases", headers=auth_header(Role.CHILD_SAFETY)).json()
    assert [(c["account_id"], c["kind"]) for c in cases] == [("kid", "under_13")]
    statement = cases[0]["statement"]
    assert statement["category"] == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    assert statement["decision_account"] == "DECISION_ACCOUNT_TERMINATED"
    assert "minimum age of 13" in statement["incompatible_content_ground"]


def test_a_contest_and_its_outcome_are_events(api: TestClient, platform: dict[str, str], db: Database) -> None:
    _age(api, platform, "t", 20, basis="estimated", method="facial-estimation", confidence=0.5)
    assert api.post("/v1/accounts/t/age/contest", json={"statement": "I am 20"}, headers=platform).status_code == 200
    decided = api.post("/v1/accounts/t/age/contest/decision", headers=platform, json={
        "upheld": True, "age": {"basis": "verified", "years": 20, "method": "eu-age-app"}, "note": "verified"})
    assert decided.json()["band"] == "18_plus"
    (outcome,) = _events(db, "age.contest_decided")
    assert (outcome.data["band_before"], outcome.data["band_after"], outcome.data["upheld"]) == (
        "16_17", "18_plus", True)
    assert len(_events(db, "age.contested")) == 1


def test_a_check_names_its_rule_and_every_deny_is_an_event(api: TestClient, platform: dict[str, str],
                                                           db: Database) -> None:
    _age(api, platform, "adult", 35, basis="verified", method="eu-age-app")
    _age(api, platform, "teen", 14)
    denied = api.post("/v1/interactions/check", headers=platform,
                      json={"actor": "adult", "target": "teen", "action": "dm"}).json()
    assert denied["decision"] == "deny" and denied["floor"] is True
    assert denied["rule"] == "floor-adult-dm-unconnected-under-16" and denied["explanation"]
    allowed = api.post("/v1/interactions/check", headers=platform, json={
        "actor": {"account_id": "x1", "age": 30}, "target": {"account_id": "x2", "age": 40}, "action": "dm"}).json()
    assert (allowed["decision"], allowed["rule"], allowed["actor_band"]) == ("allow", "default", "18_plus")
    live = api.post("/v1/interactions/check", headers=platform, json={"actor": "teen", "action": "live"}).json()
    assert live["rule"] == "live-from-18"
    (first, second) = _events(db, "interaction.denied")
    assert (first.subject, first.data["target"], first.data["rule"]) == (
        "account:adult", "teen", "floor-adult-dm-unconnected-under-16")
    assert second.subject == "account:teen" and second.data["target"] is None


def test_a_stored_verified_age_wins_over_an_inline_one(api: TestClient, platform: dict[str, str]) -> None:
    _age(api, platform, "teen", 15, basis="verified", method="eu-age-app")
    answer = api.post("/v1/interactions/check", headers=platform, json={
        "actor": {"account_id": "teen", "age": 30}, "action": "live"}).json()
    assert (answer["actor_band"], answer["decision"]) == ("13_15", "deny")


def test_malformed_checks_are_refused(api: TestClient, platform: dict[str, str], db: Database) -> None:
    for body in ({"actor": "a", "action": "live", "target": "b"}, {"actor": "a", "action": "dm"},
                 {"actor": "a", "target": "a", "action": "dm"}, {"actor": "a", "target": "b", "action": "wave"},
                 {"actor": "a b", "target": "b", "action": "dm"}):
        assert api.post("/v1/interactions/check", headers=platform, json=body).status_code == 422, body
    assert api.post("/v1/interactions/check", json={"actor": "a", "action": "live"}).status_code == 401
    assert _events(db, "interaction.denied") == []


def test_a_batch_answers_in_order(api: TestClient, platform: dict[str, str]) -> None:
    _age(api, platform, "teen", 16)
    checks = [{"actor": {"account_id": f"u{i}", "age": 30}, "target": "teen", "action": "comment",
               "context": {"audience": "followers", "follows": i % 2 == 0}} for i in range(4)]
    results = api.post("/v1/interactions/check-batch", headers=platform, json={"checks": checks}).json()["results"]
    assert [r["decision"] for r in results] == ["allow", "deny", "allow", "deny"]
    assert results[1]["rule"] == "comments-followers"


def test_repeated_denied_attempts_at_minors_raise_a_grooming_case(api: TestClient, platform: dict[str, str],
                                                                  auth_header: Header, db: Database) -> None:
    _age(api, platform, "predator", 40)
    checks = [{"actor": "predator", "target": {"account_id": f"kid{i}", "age": 14}, "action": "dm"}
              for i in range(4)]
    api.post("/v1/interactions/check-batch", headers=platform, json={"checks": checks})
    _watch(api)
    with db.read() as session:
        assert session.scalars(select(MinorsCase)).all() == []  # four: under the threshold of five
    api.post("/v1/interactions/check", headers=platform,
             json={"actor": "predator", "target": {"account_id": "kid9", "age": 13}, "action": "dm_media"})
    with db.read() as session:
        assert session.scalars(select(MinorsCase)).all() == []  # raised by the watch, not in the request
    _watch(api)
    _watch(api)  # a second round finds nothing new
    (case,) = api.get("/v1/minors/cases?kind=grooming", headers=auth_header(Role.CHILD_SAFETY)).json()
    assert (case["account_id"], case["queue"], case["detail"]["denied_attempts"]) == ("predator", "child_safety", 5)
    assert [a["target"] for a in case["detail"]["attempts"]] == ["kid0", "kid1", "kid2", "kid3", "kid9"]
    assert len(_events(db, "case.opened")) == 1


def test_only_a_possible_adults_attempts_at_minors_count_towards_a_grooming_case(
        api: TestClient, platform: dict[str, str], db: Database) -> None:
    """Six denied DMs of a teen at other minors, and six denied lives (no one reached) of an account of unknown age:
    no case. Then five denied DMs of that account (a possible adult, as its band says) at minors: its case, listing
    those five and nothing else."""
    def checks(actor: dict[str, Any], action: str, targets: list[dict[str, Any] | None]) -> list[str]:
        batch = [{"actor": actor, "action": action} | ({"target": t} if t else {}) for t in targets]
        results = api.post("/v1/interactions/check-batch", headers=platform, json={"checks": batch}).json()
        return [r["decision"] for r in results["results"]]

    kids: list[dict[str, Any] | None] = [{"account_id": f"kid{i}", "age": 14} for i in range(6)]
    assert checks({"account_id": "teen", "age": 14}, "dm", kids) == ["deny"] * 6
    assert checks({"account_id": "unknown-age"}, "live", [None] * 6) == ["deny"] * 6
    _watch(api)
    with db.read() as session:
        assert session.scalars(select(MinorsCase)).all() == []
    assert checks({"account_id": "unknown-age"}, "dm", kids[:5]) == ["deny"] * 5
    _watch(api)
    with db.read() as session:
        (case,) = session.scalars(select(MinorsCase)).all()
    assert case.account_id == "unknown-age" and case.detail["denied_attempts"] == 5
    assert [a["target"] for a in case.detail["attempts"]] == [f"kid{i}" for i in range(5)]


def test_the_watch_reads_the_attempts_only_of_accounts_over_a_threshold(api: TestClient, platform: dict[str, str],
                                                                         db: Database) -> None:
    """Counted by the database: four denies or nine minors followed are under the thresholds (5 and 10), five or
    ten are not; attempts before ``since`` are not counted."""
    def at_kids(actor: str, action: str, n: int) -> None:
        api.post("/v1/interactions/check-batch", headers=platform, json={"checks": [
            {"actor": {"account_id": actor, "age": 40}, "target": {"account_id": f"kid{i}", "age": 14},
             "action": action} for i in range(n)]})

    for actor, action, n in [("four", "dm", 4), ("five", "dm", 5), ("nine", "follow", 9), ("ten", "follow", 10)]:
        at_kids(actor, action, n)
    minors = api.app.state.minors  # type: ignore[attr-defined]
    accounts = {"four", "five", "nine", "ten", "silent"}
    with db.read() as session:
        assert interactions.over_a_threshold(minors, session, accounts, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == {
            "five", "ten"}
        assert interactions.over_a_threshold(minors, session, accounts, minors.clock.now() + dt.timedelta(hours=1)
                                             ) == set()


def test_collecting_unconnected_minors_raises_a_grooming_case(api: TestClient, platform: dict[str, str],
                                                              db: Database) -> None:
    checks = [{"actor": {"account_id": "collector", "age": 45}, "target": {"account_id": f"k{i}", "age": 15},
               "action": "follow"} for i in range(10)]
    results = api.post("/v1/interactions/check-batch", headers=platform, json={"checks": checks}).json()["results"]
    assert {r["decision"] for r in results} == {"allow"}
    _watch(api)
    with db.read() as session:
        (case,) = session.scalars(select(MinorsCase)).all()
    assert case.detail["unconnected_minors"] == 10 and case.kind == "grooming"


def test_the_grooming_watch_loses_and_doubles_nothing_across_a_failed_round(
        api: TestClient, platform: dict[str, str], db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = [{"actor": {"account_id": "predator", "age": 40}, "target": {"account_id": f"kid{i}", "age": 14},
               "action": "dm"} for i in range(5)]
    api.post("/v1/interactions/check-batch", headers=platform, json={"checks": checks})
    open_cases = interactions.open_grooming_cases

    def crash(*args: Any) -> Any:
        open_cases(*args)  # the case is written in the round's transaction, then the round dies before its commit
        raise RuntimeError("killed")

    monkeypatch.setattr(interactions, "open_grooming_cases", crash)
    with pytest.raises(RuntimeError):
        _watch(api)
    with db.read() as session:
        assert session.scalars(select(MinorsCase)).all() == []
        mark = session.get(MinorsMark, interactions.GROOMING_LOG)
    assert mark is None or mark.last_id < _events(db, "interaction.denied")[-1].id  # the mark did not move
    monkeypatch.setattr(interactions, "open_grooming_cases", open_cases)
    _watch(api)
    _watch(api)
    with db.read() as session:
        (case,) = session.scalars(select(MinorsCase)).all()
    (opened,) = _events(db, "case.opened")
    assert case.detail["denied_attempts"] == 5 and opened.data["case_id"] == case.id
    assert opened.data["reason"] == "5 denied attempts to reach minors in 24 h" and opened.subject == "account:predator"


def test_a_round_catching_up_on_days_of_attempts_still_sees_a_burst_that_passed_the_threshold(
        api: TestClient, platform: dict[str, str], db: Database) -> None:
    """The watch was stopped: five denies three days ago and one now reach it in one round. The window ending at the
    newest holds one attempt; the window ending at the fifth of the burst holds five, as the check saw then."""
    checks = [{"actor": {"account_id": "predator", "age": 40}, "target": {"account_id": f"kid{i}", "age": 14},
               "action": "dm"} for i in range(5)]
    api.post("/v1/interactions/check-batch", headers=platform, json={"checks": checks})
    with db.write() as session:  # the burst, three days back
        for event in session.scalars(select(MinorEvent).where(MinorEvent.kind == "interaction.denied")):
            event.at -= dt.timedelta(days=3)
    api.post("/v1/interactions/check", headers=platform,
             json={"actor": {"account_id": "predator", "age": 40}, "target": {"account_id": "kid9", "age": 14},
                   "action": "dm"})
    _watch(api)
    with db.read() as session:
        (case,) = session.scalars(select(MinorsCase)).all()
    assert case.detail["denied_attempts"] == 5
    assert [a["target"] for a in case.detail["attempts"]] == [f"kid{i}" for i in range(5)]


def test_an_open_cases_account_is_not_raised_again_and_its_case_lists_new_attempts_when_read(
        api: TestClient, platform: dict[str, str], auth_header: Header, db: Database) -> None:
    def attempts(first: int) -> None:
        api.post("/v1/interactions/check-batch", headers=platform, json={"checks": [
            {"actor": {"account_id": "predator", "age": 40}, "target": {"account_id": f"kid{i}", "age": 14},
             "action": "dm"} for i in range(first, first + 5)]})
        _watch(api)

    attempts(0)
    attempts(5)
    (case,) = api.get("/v1/minors/cases?kind=grooming", headers=auth_header(Role.CHILD_SAFETY)).json()
    assert case["detail"]["denied_attempts"] == 10 and len(_events(db, "case.opened")) == 1


def test_on_postgresql_the_watch_leaves_events_younger_than_the_settling_time_for_a_later_round(
        api: TestClient, platform: dict[str, str], db: Database) -> None:
    checks = [{"actor": {"account_id": "predator", "age": 40}, "target": {"account_id": f"kid{i}", "age": 14},
               "action": "dm"} for i in range(5)]
    api.post("/v1/interactions/check-batch", headers=platform, json={"checks": checks})
    written = _events(db, "interaction.denied")[-1].at
    interactions.watch_grooming(api.app.state.minors, now=written)  # type: ignore[attr-defined]
    with db.read() as session:  # SQLite's ids commit in order: nothing to wait for
        assert len(session.scalars(select(MinorsCase)).all()) == (1 if db.engine.dialect.name == "sqlite" else 0)
    interactions.watch_grooming(api.app.state.minors,  # type: ignore[attr-defined]
                                now=written + dt.timedelta(seconds=SETTLE_SECONDS))
    with db.read() as session:
        assert len(session.scalars(select(MinorsCase)).all()) == 1


def test_defaults_per_band_and_recorded_setting_changes(api: TestClient, platform: dict[str, str],
                                                        auth_header: Header, db: Database) -> None:
    _age(api, platform, "teen", 14)
    got = api.get("/v1/accounts/teen/defaults", headers=auth_header(Role.MODERATOR)).json()
    assert got["band"] == "13_15" and got["settings"]["private_account"] is True and got["settings"]["dm"] == "nobody"
    assert api.get("/v1/accounts/unknown-age/defaults", headers=platform).json()["settings"]["dm"] == "nobody"
    refused = api.patch("/v1/accounts/teen/settings", json={"comments": "everyone"}, headers=platform)
    assert refused.status_code == 422 and "below Bastion's floor" in refused.json()["detail"]
    changed = api.patch("/v1/accounts/teen/settings", json={"screen_time_prompt_minutes": 30}, headers=platform)
    assert changed.json()["set_by"]["screen_time_prompt_minutes"] == "account"
    (event,) = _events(db, "setting.changed")
    assert (event.data["setting"], event.data["before"], event.data["after"]) == ("screen_time_prompt_minutes", 60, 30)


def _pair(api: TestClient, platform: dict[str, str]) -> int:
    _age(api, platform, "mum", 42)
    _age(api, platform, "teen", 16)
    offer = api.post("/v1/family/offers", json={"parent_id": "mum"}, headers=platform).json()
    linked = api.post("/v1/family/links", json={"code": offer["code"].lower(), "teen_id": "teen"}, headers=platform)
    assert linked.status_code == 200 and linked.json()["state"] == "linked"
    link_id: int = linked.json()["link_id"]
    return link_id


def test_family_pairing_tightens_only_and_reaches_the_platform(api: TestClient, platform: dict[str, str],
                                                               db: Database) -> None:
    link = _pair(api, platform)
    looser = api.put(f"/v1/family/links/{link}/limits", headers=platform,
                     json={"parent_id": "mum", "limits": {"dm": "everyone"}})
    assert looser.status_code == 422 and "only tighten" in looser.json()["detail"]
    other = api.put(f"/v1/family/links/{link}/limits", headers=platform,
                    json={"parent_id": "teen", "limits": {"dm": "nobody"}})
    assert other.status_code == 409
    tight = api.put(f"/v1/family/links/{link}/limits", headers=platform, json={
        "parent_id": "mum", "limits": {"dm": "nobody", "restricted_mode": True, "screen_time_minutes": 45}})
    assert tight.status_code == 200
    # the teen sees what is set, and by whom
    seen = api.get("/v1/accounts/teen/defaults", headers=platform).json()
    assert seen["settings"]["dm"] == "nobody" and seen["set_by"]["dm"] == "parent:mum"
    assert seen["settings"]["screen_time_prompt_minutes"] == 45 and seen["restricted_mode"] is True
    (family,) = api.get("/v1/accounts/teen/family", headers=platform).json()
    assert family["parent_id"] == "mum" and family["limits"]["dm"] == "nobody"
    # a friend the file lets message a 16-year-old is stopped by the parent's limit
    dm = api.post("/v1/interactions/check", headers=platform, json={
        "actor": {"account_id": "friend", "age": 16}, "target": "teen", "action": "dm",
        "context": {"follows": True, "followed_by": True}}).json()
    assert (dm["decision"], dm["rule"]) == ("deny", "family-dm-nobody")
    unlinked = api.post(f"/v1/family/links/{link}/unlink", json={"account_id": "teen"}, headers=platform)
    assert unlinked.json()["state"] == "unlinked"
    with db.read() as session:
        messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert session.get(FamilyLink, link) is not None
    sent = [(m.kind, m.payload["notify"]) for m in messages]
    assert sent == [("minors.family.linked", "mum"), ("minors.family.linked", "teen"),
                    ("minors.family.limits_set", "mum"), ("minors.family.limits_set", "teen"),
                    ("minors.family.unlinked", "mum"), ("minors.family.unlinked", "teen")]
    assert all(m.destination == "http://127.0.0.1:9/hook" for m in messages)


def test_pairing_refuses_a_wrong_code_and_a_child_parent(api: TestClient, platform: dict[str, str]) -> None:
    _age(api, platform, "teen", 15)
    assert api.post("/v1/family/offers", json={"parent_id": "teen"}, headers=platform).status_code == 409
    wrong = api.post("/v1/family/links", json={"code": "AAAAAAAA", "teen_id": "teen"}, headers=platform)
    assert wrong.status_code == 409 and "unknown or has expired" in wrong.json()["detail"]


def test_the_rules_table_lists_the_floor_first(api: TestClient, auth_header: Header) -> None:
    table = api.get("/v1/minors/rules", headers=auth_header(Role.MODERATOR)).json()
    assert [r["mode"] for r in table["rules"][:2]] == ["floor", "floor"]
    assert table["error"] is None and any(r["mode"] == "shadow" for r in table["rules"])


def test_a_confirmed_under_13_case_sends_the_platform_its_statement_once(api: TestClient, platform: dict[str, str],
                                                                         auth_header: Header, db: Database) -> None:
    _age(api, platform, "kid", 11)
    specialist = auth_header(Role.CHILD_SAFETY)
    (case,) = api.get("/v1/minors/cases", headers=specialist).json()
    url = f"/v1/minors/cases/{case['id']}/decision"
    assert api.post(url, json={"confirmed": True}, headers=auth_header(Role.MODERATOR)).status_code == 403
    decided = api.post(url, json={"confirmed": True, "note": "declared 11"}, headers=specialist)
    assert decided.json()["state"] == "confirmed"
    again = api.post(url, json={"confirmed": False}, headers=specialist)
    assert again.status_code == 409 and "already confirmed" in again.json()["detail"]
    assert api.get("/v1/minors/cases", headers=specialist).json() == []
    with db.read() as session:
        (message,) = session.scalars(select(OutboxMessage)).all()
    assert message.kind == "minors.case.decided"
    assert message.payload["statement"]["puid"] == case["statement"]["puid"]
    assert api.post("/v1/minors/cases/999/decision", json={"confirmed": True}, headers=specialist).status_code == 404


def test_a_decided_grooming_case_tells_the_platform_nothing_about_the_children(
        api: TestClient, platform: dict[str, str], auth_header: Header, db: Database) -> None:
    checks = [{"actor": {"account_id": "p", "age": 40}, "target": {"account_id": f"k{i}", "age": 12}, "action": "dm"}
              for i in range(5)]
    api.post("/v1/interactions/check-batch", headers=platform, json={"checks": checks})
    _watch(api)
    specialist = auth_header(Role.CHILD_SAFETY)
    (case,) = api.get("/v1/minors/cases?kind=grooming", headers=specialist).json()
    api.post(f"/v1/minors/cases/{case['id']}/decision", json={"confirmed": True}, headers=specialist)
    with db.read() as session:
        (message,) = session.scalars(select(OutboxMessage)).all()
    assert message.payload == {"kind": "case.decided", "case_id": case["id"], "account_id": "p",
                               "case_kind": "grooming", "state": "confirmed"}


def test_a_teen_cannot_undo_a_parents_limit(api: TestClient, platform: dict[str, str], db: Database) -> None:
    link = _pair(api, platform)
    api.put(f"/v1/family/links/{link}/limits", headers=platform, json={"parent_id": "mum", "limits": {"dm": "nobody"}})
    refused = api.patch("/v1/accounts/teen/settings", json={"dm": "friends"}, headers=platform)
    assert refused.status_code == 422 and "set by a parent (parent:mum)" in refused.json()["detail"]
    assert _events(db, "setting.changed") == []
    api.post(f"/v1/family/links/{link}/unlink", json={"account_id": "mum"}, headers=platform)
    assert api.get("/v1/accounts/teen/defaults", headers=platform).json()["set_by"]["dm"] == "default"
