"""A world for designation tests: a bank of a group's material, a past decision on one of its texts, open cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.db import Database

Header = Callable[[Role], dict[str, str]]
HATE = "The Black Banner Front says outsiders must leave our town."


def post_text(client: TestClient, h: Header, content_id: str, text: str) -> dict[str, Any]:
    r = client.post("/v1/content", headers=h(Role.PLATFORM), data={
        "content_id": content_id, "account_id": "acct-1", "account_age": "30", "account_country": "FR",
        "content_type": "text", "text": text})
    assert r.status_code == 200, r.text
    return dict(r.json())


def notice(client: TestClient, h: Header, content_id: str) -> int:
    r = client.post("/v1/notices", headers=h(Role.PLATFORM), json={
        "content_id": content_id, "category": "hate_speech", "explanation": "hateful", "notifier": "user-9"})
    assert r.status_code == 201, r.text
    return int(r.json()["case_id"])


def queue_of(client: TestClient, h: Header, content_id: str) -> list[str]:
    record = client.get(f"/v1/content/{content_id}", headers=h(Role.SENIOR_MODERATOR)).json()
    return [e["data"]["queue"] for e in record["events"] if e["kind"] == "case.opened"] + \
        [e["data"]["to_queue"] for e in record["events"] if e["kind"] == "case.moved"]


@pytest.fixture
def world(client: TestClient, auth_header: Header, db: Database) -> dict[str, Any]:
    """A bank of the group's material, a past decision on one of its texts, and an open case about another."""
    h = auth_header
    sample = post_text(client, h, "sample", "Join the Black Banner Front march on Saturday.")
    text_signal = next(s for s in sample["signals"] if s["signal_type"] == "text")
    assert client.post("/v1/banks", headers=h(Role.CURATOR), json={"name": "BLACK_BANNER"}).status_code == 201
    entry = client.post("/v1/banks/BLACK_BANNER/entries", headers=h(Role.CURATOR), json={
        "signal_type": "text", "value": text_signal["value"], "category": "hate_speech"})
    assert entry.status_code == 201, entry.text

    # a past decision: BBF content a moderator found to be hate speech
    post_text(client, h, "old", "BBF: outsiders out.")
    notice(client, h, "old")
    moderator = h(Role.MODERATOR)
    case = client.post("/v1/queues/general/claim", headers=moderator).json()
    assert case["content_id"] == "old"
    decided = client.post(f"/v1/cases/{case['id']}/decision", headers=moderator, json={
        "violation": True, "actions": ["remove"], "category": "hate_speech"})
    assert decided.status_code == 200, decided.text

    # an open case: a copy of the banked text, held by the bank match
    copy = post_text(client, h, "copy", "Join the Black Banner Front march on Saturday!")
    assert copy["case_id"] is not None
    # an open case linked by a keyword only, and one linked by nothing
    post_text(client, h, "named", HATE)
    notice(client, h, "named")
    post_text(client, h, "unrelated", "Outsiders must leave, says a rival club.")
    unrelated = notice(client, h, "unrelated")

    senior = h(Role.SENIOR_MODERATOR)
    entity = client.post("/v1/designations", headers=senior, json={
        "name": "Black Banner Front", "aliases": ["BBF"], "keywords": [], "designating_body": "EU Council",
        "designated_on": "2026-03-01", "category": "hate_speech", "banks": ["BLACK_BANNER"]})
    assert entity.status_code == 201, entity.text
    return {"entity": entity.json(), "copy_case": copy["case_id"], "unrelated_case": unrelated, "senior": senior,
            # four eyes: another person's credential confirms what ``senior`` proposes (every ``auth_header``
            # token is minted by the same "test" person, so this one is minted by someone else)
            "second": other_person(db, Role.SENIOR_MODERATOR)}


def other_person(db: Database, role: Role, person: str = "user:second-officer") -> dict[str, str]:
    """A bearer header for a token minted by ``person`` (not the tests' usual "test")."""
    return {"Authorization": f"Bearer {auth.create_token(db, role=role, name='second', actor=person)}"}
