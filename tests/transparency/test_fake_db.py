"""The fake Transparency Database applies the documented rules, so the submission is tested against them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from bastion.moderation import statements
from bastion.moderation.policy import Action, Category
from tests.transparency.conftest import TOKEN, Fake

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _body(key: str, **overrides: Any) -> dict[str, Any]:
    body = statements.build(puid=key, category=Category.HATE_SPEECH, actions=[Action.REMOVE], content_type="text",
                            content_date=NOW.date(), decided_at=NOW, facts="f", source_type=statements.Source.NOTICE,
                            automated_detection=False, automated_decision=False)
    return {k: v for k, v in {**body, **overrides}.items() if v is not None}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"category": None}, "category"),
    ({"category": "STATEMENT_CATEGORY_GOSSIP"}, "category"),
    ({"content_type": []}, "content_type"),
    ({"content_date": "1999-12-31"}, "content_date"),
    ({"application_date": "2026-13"}, "application_date"),
    ({"decision_facts": "x" * 5001}, "decision_facts"),
    ({"automated_detection": "yes"}, "automated_detection"),
    ({"puid": "has space"}, "puid"),
    ({"decision_visibility": None}, "decision_visibility"),
    ({"incompatible_content_ground": None}, "incompatible_content_ground"),
    ({"content_type": ["CONTENT_TYPE_OTHER"]}, "content_type_other"),
    ({"territorial_scope": ["US"]}, "territorial_scope"),
    ({"account_id": "acct-1"}, "account_id"),
])
def test_the_documented_rules_are_applied(fake: Fake, overrides: dict[str, Any], field: str) -> None:
    answer = httpx.post(f"{fake.url}/api/v1/statements", headers=AUTH,
                        json={"statements": [_body("ok-1"), _body("bad-1", **overrides)]})
    assert answer.status_code == 422
    assert list(answer.json()["errors"]) == [f"statements.1.{field}"]
    assert set(fake.receipts()["created"].values()) == {0}  # all or nothing


def test_token_batch_size_and_existing_puid(fake: Fake) -> None:
    assert httpx.post(f"{fake.url}/api/v1/statements", json={"statements": [_body("a")]}).status_code == 401
    too_many = {"statements": [_body(f"p{i}") for i in range(101)]}
    assert httpx.post(f"{fake.url}/api/v1/statements", headers=AUTH, json=too_many).status_code == 422
    one = httpx.post(f"{fake.url}/api/v1/statement", headers=AUTH, json=_body("a"))
    assert one.status_code == 201 and one.json()["permalink"].endswith(one.json()["uuid"])
    again = httpx.post(f"{fake.url}/api/v1/statement", headers=AUTH, json=_body("a"))
    assert again.status_code == 422 and again.json()["existing"]["uuid"] == one.json()["uuid"]
    batch = httpx.post(f"{fake.url}/api/v1/statements", headers=AUTH, json={"statements": [_body("b"), _body("a")]})
    assert batch.status_code == 422 and batch.json()["existing"] == {"statements.1": {"puid": "a",
                                                                                      "uuid": one.json()["uuid"]}}
    known = httpx.get(f"{fake.url}/api/v1/statement/existing-puid/a", headers=AUTH, follow_redirects=False)
    assert known.status_code == 302 and known.headers["location"].endswith(one.json()["uuid"])
    assert httpx.get(f"{fake.url}/api/v1/statement/existing-puid/b", headers=AUTH).status_code == 404
