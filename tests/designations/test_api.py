"""Designated entities end to end over HTTP: an entity linked to a bank and keywords; a change of its category is
previewed (open cases to move, past decisions it would alter), changes nothing until a senior moderator confirms,
then moves the open cases to the new category's queue, recategorises the bank for future matches, and is an event."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.db import Database
from bastion.designations import services
from bastion.designations.events import ChangeState, InvalidStep, Step, next_state
from bastion.designations.queries import DesignatedFollower, designated_content
from bastion.matching.models import BankEntry
from bastion.moderation.models import ModerationEvent
from tests.designations.conftest import Header, other_person, post_text, queue_of


def test_a_change_is_previewed_then_applied_only_when_confirmed(client: TestClient, auth_header: Header,
                                                               db: Database, world: dict[str, Any]) -> None:
    h, senior, entity = auth_header, world["senior"], world["entity"]
    before = {c: queue_of(client, h, c) for c in ("copy", "named", "unrelated")}
    proposed = client.post(f"/v1/designations/{entity['id']}/changes", headers=senior,
                           json={"category": "violent_extremism", "note": "re-designated by the EU Council"})
    assert proposed.status_code == 201, proposed.text
    change = proposed.json()
    assert change["state"] == "proposed"
    preview = change["preview"]
    assert {c["content_id"]: (c["from_queue"], c["to_queue"]) for c in preview["open_cases"]} == {
        "copy": ("general", "terrorism"), "named": ("general", "terrorism")}
    assert {c["content_id"]: c["links"] for c in preview["open_cases"]} == {
        "copy": ["bank:BLACK_BANNER", "keyword:Black Banner Front"], "named": ["keyword:Black Banner Front"]}
    assert [(d["content_id"], d["category"], d["actions"]) for d in preview["past_decisions"]] == [
        ("old", "hate_speech", ["remove"])]
    # nothing has moved yet
    assert {c: queue_of(client, h, c) for c in ("copy", "named", "unrelated")} == before
    assert client.get("/v1/designations", headers=senior).json()[0]["category"] == "hate_speech"

    # a moderator may read, not confirm
    assert client.post(f"/v1/designations/changes/{change['id']}/confirm",
                       headers=h(Role.MODERATOR)).status_code == 403
    assert client.post(f"/v1/designations/changes/{change['id']}/confirm",  # another credential, the same person
                       headers=h(Role.ADMIN)).status_code == 403
    confirmed = client.post(f"/v1/designations/changes/{change['id']}/confirm",
                            headers=other_person(db, Role.ADMIN, "user:admin-2"))
    assert confirmed.status_code == 200, confirmed.text
    result = confirmed.json()["result"]
    assert confirmed.json()["state"] == "confirmed"
    assert sorted(result["moved_cases"].values()) == ["terrorism", "terrorism"]
    assert result["past_decisions"] == ["old"] and result["bank_entries"] == {"BLACK_BANNER": 1}

    assert queue_of(client, h, "copy")[-1] == "terrorism"
    assert queue_of(client, h, "named")[-1] == "terrorism"
    assert queue_of(client, h, "unrelated") == before["unrelated"]
    with db.read() as session:
        assert set(session.scalars(select(BankEntry.category))) == {"violent_extremism"}
        moved = session.scalars(select(ModerationEvent).where(ModerationEvent.kind == "case.moved")).all()
        assert {e.data["category"] for e in moved} == {"violent_extremism"}
    # the case is claimable from its new queue
    claimed = client.post("/v1/queues/terrorism/claim", headers=senior)
    assert claimed.status_code == 200 and claimed.json()["category"] == "violent_extremism"

    detail = client.get(f"/v1/designations/{entity['id']}", headers=h(Role.ANALYST)).json()
    assert detail["category"] == "violent_extremism"
    # the typed answer is the stored view, field for field: {} for a change not confirmed, the preview as shown
    stored = services.get_entity(client.app.state.moderation, entity["id"])  # type: ignore[attr-defined]
    assert detail == stored and confirmed.json() == stored["changes"][0] and change["result"] == {}
    assert change["preview"] == stored["changes"][0]["preview"]
    assert [e["kind"] for e in detail["events"]] == ["entity.designated", "entity.change_proposed",
                                                     "entity.category_changed"]
    # a change is decided once
    assert client.post(f"/v1/designations/changes/{change['id']}/confirm", headers=senior).status_code == 409
    assert client.post(f"/v1/designations/changes/{change['id']}/reject", headers=senior).status_code == 409


def test_future_matches_follow_the_new_category(client: TestClient, auth_header: Header,
                                                world: dict[str, Any]) -> None:
    h, senior = auth_header, world["senior"]
    change = client.post(f"/v1/designations/{world['entity']['id']}/changes", headers=senior,
                         json={"category": "violent_extremism"}).json()
    assert client.post(f"/v1/designations/changes/{change['id']}/confirm", headers=world["second"]).status_code == 200
    later = post_text(client, h, "later", "Join the Black Banner Front march on Saturday!!")
    assert later["case_id"] is not None
    assert queue_of(client, h, "later") == ["terrorism"]


def test_rejected_and_superseded_changes_apply_nothing(client: TestClient, auth_header: Header,
                                                       world: dict[str, Any]) -> None:
    h, senior, entity = auth_header, world["senior"], world["entity"]
    first = client.post(f"/v1/designations/{entity['id']}/changes", headers=senior,
                        json={"category": "violent_extremism"}).json()
    second = client.post(f"/v1/designations/{entity['id']}/changes", headers=senior,
                         json={"category": "terrorist_content"}).json()
    rejected = client.post(f"/v1/designations/changes/{first['id']}/reject", headers=senior)
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    assert queue_of(client, h, "copy") == ["general"]
    third = client.post(f"/v1/designations/{entity['id']}/changes", headers=senior,
                        json={"category": "violent_extremism"}).json()
    other = world["second"]
    assert client.post(f"/v1/designations/changes/{second['id']}/confirm", headers=other).status_code == 200
    assert client.post(f"/v1/designations/changes/{third['id']}/confirm", headers=other).status_code == 409
    detail = client.get(f"/v1/designations/{entity['id']}", headers=senior).json()
    assert {c["id"]: c["state"] for c in detail["changes"]} == {
        first["id"]: "rejected", second["id"]: "confirmed", third["id"]: "superseded"}
    assert detail["category"] == "terrorist_content"


def test_four_eyes_the_proposer_cannot_confirm_but_may_withdraw(client: TestClient, auth_header: Header,
                                                                 world: dict[str, Any]) -> None:
    h, senior, entity = auth_header, world["senior"], world["entity"]
    change = client.post(f"/v1/designations/{entity['id']}/changes", headers=senior,
                         json={"category": "violent_extremism"}).json()
    refused = client.post(f"/v1/designations/changes/{change['id']}/confirm", headers=senior)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["title"] == "Another person must confirm"
    detail = client.get(f"/v1/designations/{entity['id']}", headers=senior).json()
    assert detail["category"] == "hate_speech" and detail["changes"][0]["state"] == "proposed"  # nothing applied
    assert queue_of(client, h, "copy") == ["general"]
    withdrawn = client.post(f"/v1/designations/changes/{change['id']}/reject", headers=senior)
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "rejected"


def test_bad_designations_are_refused(client: TestClient, auth_header: Header, world: dict[str, Any]) -> None:
    h, senior = auth_header, world["senior"]
    base = {"name": "Other Group", "designating_body": "UN Security Council", "designated_on": "2020-01-01",
            "category": "terrorist_content"}
    assert client.post("/v1/designations", headers=senior, json={**base, "category": "csam"}).status_code == 422
    assert client.post("/v1/designations", headers=senior, json={**base, "category": "spam"}).status_code == 422
    assert client.post("/v1/designations", headers=senior, json={**base, "banks": ["NOPE"]}).status_code == 404
    assert client.post("/v1/banks", headers=h(Role.CHILD_SAFETY),
                       json={"name": "CSAM_KNOWN", "restricted": True}).status_code == 201
    # a restricted bank does not exist for a senior moderator, and an admin may not link it either
    assert client.post("/v1/designations", headers=senior, json={**base, "banks": ["CSAM_KNOWN"]}).status_code == 404
    assert client.post("/v1/designations", headers=h(Role.ADMIN),
                       json={**base, "banks": ["CSAM_KNOWN"]}).status_code == 422
    assert client.post("/v1/designations", headers=senior,
                       json={**base, "name": "Black Banner Front"}).status_code == 409
    assert client.post("/v1/designations", headers=h(Role.MODERATOR), json=base).status_code == 403
    assert client.post(f"/v1/designations/{world['entity']['id']}/changes", headers=senior,
                       json={"category": "hate_speech"}).status_code == 422
    assert client.post("/v1/designations/999/changes", headers=senior,
                       json={"category": "hate_speech"}).status_code == 404
    big = 10 ** 23  # beyond any row id: refused as input, never a 500
    assert client.get(f"/v1/designations/{big}", headers=senior).status_code == 422
    assert client.post(f"/v1/designations/changes/{big}/confirm", headers=senior).status_code == 422
    assert [e["name"] for e in client.get("/v1/designations", headers=senior).json()] == ["Black Banner Front"]


@pytest.mark.parametrize(("state", "step", "result"), [
    (ChangeState.PROPOSED, Step.CONFIRM, ChangeState.CONFIRMED),
    (ChangeState.PROPOSED, Step.REJECT, ChangeState.REJECTED),
    (ChangeState.PROPOSED, Step.SUPERSEDE, ChangeState.SUPERSEDED),
    *[(s, step, None) for s in (ChangeState.CONFIRMED, ChangeState.REJECTED, ChangeState.SUPERSEDED) for step in Step],
])
def test_a_change_is_decided_once(state: ChangeState, step: Step, result: ChangeState | None) -> None:
    if result is None:
        with pytest.raises(InvalidStep):
            next_state(state, step)
    else:
        assert next_state(state, step) is result


def test_the_feed_gate_query_names_linked_content(db: Database, world: dict[str, Any]) -> None:
    with db.read() as session:
        found = designated_content(session, ["copy", "named", "old", "unrelated", "never-submitted"])
    assert found == {"copy": ["Black Banner Front"], "named": ["Black Banner Front"], "old": ["Black Banner Front"]}


def test_a_follower_sees_new_content_and_new_designations(client: TestClient, auth_header: Header, db: Database,
                                                          world: dict[str, Any]) -> None:
    follower = DesignatedFollower()
    with db.read() as session:
        start = follower.since(session, 0)
        assert start.content == {c: ["Black Banner Front"] for c in ("copy", "named", "old", "sample")}
        assert follower.since(session, start.cursor).content == {}
    post_text(client, auth_header, "fresh", "BBF meets tonight.")
    post_text(client, auth_header, "quiet", "The Green Hand meets tonight.")
    with db.read() as session:
        later = follower.since(session, start.cursor)
    assert later.content == {"fresh": ["Black Banner Front"]}
    assert client.post("/v1/designations", headers=world["senior"], json={
        "name": "Green Hand", "designating_body": "UN Security Council", "designated_on": "2025-01-01",
        "category": "violent_extremism"}).status_code == 201
    with db.read() as session:
        rescanned = follower.since(session, later.cursor)
    assert rescanned.content["quiet"] == ["Green Hand"] and rescanned.cursor == later.cursor


def test_designated_content_reaches_the_feed_gate(client: TestClient, auth_header: Header,
                                                  world: dict[str, Any]) -> None:
    platform = auth_header(Role.PLATFORM)
    post_text(client, auth_header, "fresh", "BBF meets tonight.")
    deadline = time.monotonic() + 10  # the feed's view follows the logs every refresh: eventual, not a speed check
    while True:
        answer = client.post("/v1/feed/filter", headers=platform, json={
            "viewer": {"account_id": "viewer-1", "age": 30}, "candidates": ["fresh", "unrelated"]}).json()
        excluded = {e["content_id"]: e["reasons"] for e in answer["excluded"]}
        if excluded.get("fresh") == ["designated_entity"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert excluded["fresh"] == ["designated_entity"]
    assert "designated_entity" not in excluded.get("unrelated", [])


def _feed_excluded(client: TestClient, platform: dict[str, str], ids: list[str]) -> dict[str, list[str]]:
    answer = client.post("/v1/feed/filter", headers=platform, json={
        "viewer": {"account_id": "viewer-1", "age": 30}, "candidates": ids}).json()
    return {e["content_id"]: e["reasons"] for e in answer["excluded"]}


def _until(check: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds  # the view follows the logs every refresh: eventual, not a speed check
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_edited_links_and_delisting_reach_the_feed_gate_both_ways(client: TestClient, auth_header: Header,
                                                                 world: dict[str, Any]) -> None:
    h, senior, entity = auth_header, world["senior"], world["entity"]
    platform = h(Role.PLATFORM)
    post_text(client, h, "fresh", "BBF meets tonight.")
    post_text(client, h, "nickname", "The Banner Boys meet tonight.")
    assert _until(lambda: _feed_excluded(client, platform, ["fresh", "nickname"]) == {
        "fresh": ["designated_entity"]})
    # a new keyword links content already there; dropping the alias unlinks what only the alias linked
    edited = client.patch(f"/v1/designations/{entity['id']}", headers=senior,
                          json={"keywords": ["Banner Boys"], "aliases": [], "note": "the nickname is in use"})
    assert edited.status_code == 202, edited.text
    proposed = edited.json()
    assert (proposed["kind"], proposed["state"]) == ("links", "proposed")
    assert proposed["preview"]["links"]["after"]["keywords"] == ["Banner Boys"]
    assert proposed["preview"]["links"]["before"]["aliases"] == ["BBF"]
    # four eyes: nothing applies until another person confirms it, and the proposer cannot
    assert client.get(f"/v1/designations/{entity['id']}", headers=senior).json()["aliases"] == ["BBF"]
    own = client.post(f"/v1/designations/changes/{proposed['id']}/confirm", headers=senior)
    assert own.status_code == 403 and "another person" in own.json()["detail"], own.text
    confirmed = client.post(f"/v1/designations/changes/{proposed['id']}/confirm", headers=world["second"])
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["result"]["links"]["keywords"] == ["Banner Boys"]
    assert _until(lambda: _feed_excluded(client, platform, ["fresh", "nickname"]) == {
        "nickname": ["designated_entity"]})
    # delisted: nothing is designated by it any more, its record and history stay, and it takes no changes
    delisted = client.post(f"/v1/designations/{entity['id']}/delist", headers=senior,
                           json={"delisted_on": "2026-12-01", "note": "revoked by the EU Council"})
    assert delisted.status_code == 202 and delisted.json()["kind"] == "delist", delisted.text
    assert client.get(f"/v1/designations/{entity['id']}", headers=senior).json()["delisted_on"] is None
    assert _feed_excluded(client, platform, ["fresh", "nickname"]) == {"nickname": ["designated_entity"]}
    done = client.post(f"/v1/designations/changes/{delisted.json()['id']}/confirm", headers=world["second"])
    assert done.status_code == 200 and done.json()["result"]["delisted_on"] == "2026-12-01", done.text
    assert _until(lambda: _feed_excluded(client, platform, ["fresh", "nickname"]) == {})
    detail = client.get(f"/v1/designations/{entity['id']}", headers=h(Role.ANALYST)).json()
    assert detail["delisted_on"] == "2026-12-01"
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds == ["entity.designated", "entity.change_proposed", "entity.links_changed",
                     "entity.change_proposed", "entity.delisted"]
    assert detail["events"][2]["data"]["before"]["aliases"] == ["BBF"]
    assert detail["events"][2]["data"]["change_id"] == proposed["id"]
    proposer, confirmer = detail["events"][1]["actor"], detail["events"][2]["actor"]
    assert proposer != confirmer and detail["events"][4]["actor"] == confirmer
    for refused in (client.post(f"/v1/designations/{entity['id']}/changes", headers=senior,
                                json={"category": "violent_extremism"}),
                    client.patch(f"/v1/designations/{entity['id']}", headers=senior, json={"keywords": []}),
                    client.post(f"/v1/designations/{entity['id']}/delist", headers=senior,
                                json={"delisted_on": "2026-12-02"})):
        assert refused.status_code == 409, refused.text


def test_delisting_supersedes_proposed_changes_and_bad_edits_are_refused(client: TestClient, auth_header: Header,
                                                                          world: dict[str, Any]) -> None:
    h, senior, entity = auth_header, world["senior"], world["entity"]
    change = client.post(f"/v1/designations/{entity['id']}/changes", headers=senior,
                         json={"category": "violent_extremism"}).json()
    assert client.post("/v1/banks", headers=h(Role.CHILD_SAFETY),
                       json={"name": "CSAM_KNOWN", "restricted": True}).status_code == 201
    for body in ({"banks": ["CSAM_KNOWN"]}, {"banks": ["NOPE"]}, {"keywords": ["x" * 201]}, {"colour": "red"}):
        r = client.patch(f"/v1/designations/{entity['id']}", headers=senior, json=body)
        assert r.status_code in (404, 422), (body, r.text)
    assert client.patch(f"/v1/designations/{entity['id']}", headers=h(Role.MODERATOR),
                        json={"keywords": []}).status_code == 403
    early = client.post(f"/v1/designations/{entity['id']}/delist", headers=senior, json={"delisted_on": "2020-01-01"})
    assert early.status_code == 422  # before it was designated
    assert client.patch(f"/v1/designations/{entity['id']}", headers=senior,
                        json={"banks": ["BLACK_BANNER"]}).status_code == 422  # nothing would change
    assert client.get(f"/v1/designations/{entity['id']}", headers=senior).json()["banks"] == ["BLACK_BANNER"]
    delist = client.post(f"/v1/designations/{entity['id']}/delist", headers=senior, json={"delisted_on": "2026-12-01"})
    assert delist.status_code == 202
    assert client.post(f"/v1/designations/changes/{delist.json()['id']}/confirm",
                       headers=world["second"]).status_code == 200
    detail = client.get(f"/v1/designations/{entity['id']}", headers=senior).json()
    assert {c["id"]: c["state"] for c in detail["changes"]} == {change["id"]: "superseded",
                                                               delist.json()["id"]: "confirmed"}
    assert detail["events"][-1]["data"]["superseded_changes"] == [change["id"]]
    assert client.post(f"/v1/designations/changes/{change['id']}/confirm", headers=world["second"]).status_code == 409
