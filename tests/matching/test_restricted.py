"""Restricted banks (child sexual abuse material) tell nothing to anyone outside the child-safety roles.

The attack these tests close: with ``/v1/match`` answering a restricted bank's name and distance, flipping one bit
of a query at a time and keeping the flips that lower the distance recovers a banked hash in a few hundred
requests, unthrottled and unaudited. Now the restricted bank does not exist for those callers, every lookup is
counted against the caller's budget, and every lookup is audited without the queried values in clear.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.audit.models import AuditEntry
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.matching.budget import LookupBudget
from bastion.web.app import create_app

Header = Callable[[Role], dict[str, str]]
BANKED = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
OUTSIDE = (Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CURATOR, Role.PLATFORM)


def _flip(value: str, bit: int) -> str:
    return f"{int(value, 16) ^ (1 << bit):064x}"


def _restricted_bank(client: TestClient, h: Header, name: str = "NCMEC_HASHES") -> int:
    cs = h(Role.CHILD_SAFETY)
    assert client.post("/v1/banks", json={"name": name, "restricted": True, "description": "hashes from NCMEC"},
                       headers=cs).status_code == 201
    r = client.post(f"/v1/banks/{name}/entries", json={"signal_type": "pdq", "value": BANKED, "category": "csam"},
                    headers=cs)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _lookup(client: TestClient, headers: dict[str, str], value: str, banks: list[str] | None = None) -> Any:
    body: dict[str, Any] = {"signal_type": "pdq", "value": value}
    if banks is not None:
        body["banks"] = banks
    return client.post("/v1/match", json=body, headers=headers)


@pytest.mark.parametrize("role", OUTSIDE)
def test_a_restricted_match_is_indistinguishable_from_no_match(client: TestClient, auth_header: Header,
                                                               role: Role) -> None:
    h = auth_header(role)
    before = {v: _lookup(client, h, v) for v in (BANKED, _flip(BANKED, 7))}  # no bank yet: the "no" answer
    _restricted_bank(client, auth_header)
    for value, nothing in before.items():
        for banks in (None, ["NCMEC_HASHES"], ["NO_SUCH_BANK"]):  # naming the bank is no oracle either
            r = _lookup(client, h, value, banks)
            assert (r.status_code, r.headers["content-type"], r.json()) == (
                nothing.status_code, nothing.headers["content-type"], nothing.json())
            assert r.json()["matches"] == [] and "NCMEC" not in r.text and "csam" not in r.text


def test_the_bit_flip_walk_learns_nothing(client: TestClient, auth_header: Header) -> None:
    _restricted_bank(client, auth_header)
    h = auth_header(Role.PLATFORM)
    start = _flip(_flip(BANKED, 3), 200)
    answers = {json.dumps(_lookup(client, h, _flip(start, bit)).json()["matches"]) for bit in range(0, 256, 16)}
    assert answers == {"[]"}  # no distance to follow, whichever bit is flipped


def test_child_safety_and_admins_see_the_restricted_match(client: TestClient, auth_header: Header) -> None:
    entry_id = _restricted_bank(client, auth_header)
    for role in (Role.CHILD_SAFETY, Role.ADMIN):
        (match,) = _lookup(client, auth_header(role), BANKED).json()["matches"]
        assert (match["bank"], match["entry_id"], match["category"], match["distance"]) == (
            "NCMEC_HASHES", entry_id, "csam", 0)


def test_a_csam_entry_goes_only_into_a_restricted_bank(client: TestClient, auth_header: Header) -> None:
    curator = auth_header(Role.CURATOR)
    assert client.post("/v1/banks", json={"name": "OPEN_BANK"}, headers=curator).status_code == 201
    for category in ("csam", "CSAM_A1", "csam-b2"):
        r = client.post("/v1/banks/OPEN_BANK/entries", headers=curator,
                        json={"signal_type": "pdq", "value": BANKED, "category": category})
        assert r.status_code == 422 and "restricted bank" in r.json()["detail"], r.text
    assert client.get("/v1/banks", headers=curator).json()["banks"][0]["entries"] == 0


def test_restricted_banks_are_not_listed_outside_child_safety(client: TestClient, auth_header: Header) -> None:
    _restricted_bank(client, auth_header)
    assert client.post("/v1/banks", json={"name": "TERRORIST_CONTENT"},
                       headers=auth_header(Role.CURATOR)).status_code == 201
    for role in (Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CURATOR, Role.ANALYST):
        r = client.get("/v1/banks", headers=auth_header(role))
        assert [b["name"] for b in r.json()["banks"]] == ["TERRORIST_CONTENT"] and "NCMEC" not in r.text
    for role in (Role.CHILD_SAFETY, Role.ADMIN):
        names = [b["name"] for b in client.get("/v1/banks", headers=auth_header(role)).json()["banks"]]
        assert names == ["NCMEC_HASHES", "TERRORIST_CONTENT"]


def test_a_restricted_bank_is_answered_as_an_unknown_one(client: TestClient, auth_header: Header) -> None:
    entry_id = _restricted_bank(client, auth_header)
    curator = auth_header(Role.CURATOR)

    def seen(name: str) -> list[tuple[int, str, str]]:
        answers = [client.get(f"/v1/banks/{name}/export", headers=curator),
                   client.post(f"/v1/banks/{name}/entries", headers=curator,
                               json={"signal_type": "md5", "value": "a" * 32}),
                   client.delete(f"/v1/banks/{name}/entries/{entry_id}", headers=curator)]
        return [(r.status_code, r.json()["title"], r.json()["detail"].replace(name, "X")) for r in answers]

    assert seen("NCMEC_HASHES") == seen("NCMEC_OTHER") == [(404, "Bank not found", "no bank named 'X'")] * 3
    with_cs = client.get("/v1/banks/NCMEC_HASHES/export", headers=auth_header(Role.CHILD_SAFETY))
    assert BANKED in with_cs.text  # the entry is untouched


@pytest.fixture
def tight(settings: Settings, db: Database) -> Iterator[TestClient]:
    limited = Settings(**{**settings.__dict__, "match_rate_per_minute": 3})
    with TestClient(create_app(limited, db=db)) as c:
        yield c


def test_lookups_are_limited_per_token(tight: TestClient, auth_header: Header) -> None:
    first, second = auth_header(Role.MODERATOR), auth_header(Role.MODERATOR)
    assert [_lookup(tight, first, BANKED).status_code for _ in range(3)] == [200] * 3
    refused = _lookup(tight, first, BANKED)
    assert refused.status_code == 429 and refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["Retry-After"]) >= 1 and refused.json()["title"] == "Too many requests"
    assert _lookup(tight, second, BANKED).status_code == 200  # another token has its own budget


def test_the_budget_refills_over_the_minute() -> None:
    now = [0.0]
    budget = LookupBudget(2, now=lambda: now[0])
    assert [budget.take("a"), budget.take("a")] == [None, None]
    spent = budget.take("a")
    assert spent is not None and spent.retry_after == 30  # one lookup every 30 s at 2 a minute
    now[0] += 30
    assert budget.take("a") is None and budget.take("a") is not None
    assert LookupBudget(0).take("a") is None  # 0: no limit
    with pytest.raises(ValueError, match="BASTION_MATCH_RATE_PER_MINUTE"):
        LookupBudget(-1)


def test_lookups_are_audited_without_the_value_in_clear(client: TestClient, auth_header: Header,
                                                         db: Database) -> None:
    _restricted_bank(client, auth_header)
    _lookup(client, auth_header(Role.MODERATOR), BANKED)
    _lookup(client, auth_header(Role.CHILD_SAFETY), BANKED)
    with db.read() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "match.lookup")
                                  .order_by(AuditEntry.id)).all()
        rows = [(e.actor, e.details) for e in entries]
    (moderator, moderator_details), (specialist, specialist_details) = rows
    assert "moderator" in moderator and "child_safety" in specialist
    digest = hashlib.sha256(BANKED.encode()).hexdigest()
    assert moderator_details["query_digests"] == [digest] and moderator_details["signal_types"] == ["pdq"]
    # the specialists learn that a moderator's lookup hit a restricted bank; the moderator learnt nothing
    assert (moderator_details["matches"], moderator_details["restricted_withheld"]) == ([], 1)
    assert specialist_details["restricted_withheld"] == 0 and specialist_details["matches"][0]["distance"] == 0
    assert BANKED not in json.dumps([d for _, d in rows])
