"""The platform end to end: a restriction's statement is queued with the decision, submitted by the app's worker to
the fake database, and its state (and a refusal's errors) read back over the API by admin and analyst only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.transparency import submission
from bastion.web.app import create_app
from tests.factories.console import login
from tests.factories.media import make_image
from tests.moderation.test_flow import _bank, _pdq, _upload
from tests.transparency.conftest import TOKEN, AddStatements, Fake
from tests.transparency.test_submission import START, _drain, _submitter

Header = Callable[[Role], dict[str, str]]


@pytest.fixture
def submitting(settings: Settings, db: Database, fake: Fake) -> Iterator[TestClient]:
    configured = replace(settings, transparency_db_url=fake.url, transparency_db_token=TOKEN,
                         transparency_interval_seconds=0.05)
    with TestClient(create_app(configured, db=db)) as client:
        yield client


def _listing(client: TestClient, h: Header, **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/transparency/statements", params=params, headers=h(Role.ANALYST))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_restriction_s_statement_reaches_the_database(submitting: TestClient, auth_header: Header, fake: Fake,
                                                        tmp_path: Path) -> None:
    img = make_image(tmp_path / "known.jpg", seed=41, size=(640, 480))
    _bank(submitting, auth_header, "TERRORIST_CONTENT", _pdq(img), "terrorist_content")
    puid = _upload(submitting, auth_header, img, "vid-1")["statement_puid"]
    deadline = time.monotonic() + 20  # eventual delivery by the app's worker, not a speed check
    while (items := _listing(submitting, auth_header)["items"]) and items[0]["state"] != "accepted":
        assert time.monotonic() < deadline, items
        time.sleep(0.05)
    assert [(i["puid"], i["state"]) for i in items] == [(puid, "accepted")] and items[0]["uuid"]
    assert fake.receipts()["created"] == {puid: 1}
    status = submitting.get("/status", headers=auth_header(Role.ADMIN)).json()
    assert status["transparency_database"] == {
        "submitting": True, "statements": {"queued": 0, "sending": 0, "accepted": 1, "rejected": 0}}


def test_refused_statements_are_listed_with_their_errors(client: TestClient, auth_header: Header, db: Database,
                                                         fake: Fake, add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    add_statements(3)
    bad = add_statements(2, prefix="bad", territorial_scope=["US"])
    submission.backfill(db, clock=clock)
    _drain(_submitter(db, fake.url, clock))
    page = _listing(client, auth_header, state="rejected")
    assert page["counts"] == {"queued": 0, "sending": 0, "accepted": 3, "rejected": 2}
    assert page["submitting"] is False  # this app was started without the database's settings
    assert [i["puid"] for i in page["items"]] == bad
    assert page["items"][0]["errors"] == {"territorial_scope": ["must be EU/EEA ISO 3166-1 alpha-2 codes"]}
    first = _listing(client, auth_header, limit=2)
    second = _listing(client, auth_header, limit=2, after=first["next_after"])
    assert len(first["items"]) == len(second["items"]) == 2 and first["items"][-1]["puid"] < second["items"][0]["puid"]
    assert client.get("/v1/transparency/statements", params={"state": "lost"},
                      headers=auth_header(Role.ADMIN)).status_code == 422
    for role in (Role.MODERATOR, Role.PLATFORM):
        assert client.get("/v1/transparency/statements", headers=auth_header(role)).status_code == 403
    assert client.get("/v1/transparency/statements").status_code == 401


def test_nothing_is_queued_while_submission_is_off(client: TestClient, auth_header: Header,
                                                   tmp_path: Path) -> None:
    img = make_image(tmp_path / "known.jpg", seed=41, size=(640, 480))
    _bank(client, auth_header, "TERRORIST_CONTENT", _pdq(img), "terrorist_content")
    assert _upload(client, auth_header, img, "vid-1")["statement_puid"]
    assert _listing(client, auth_header)["counts"]["queued"] == 0  # the backfill takes it once switched on


def test_the_console_page_shows_refusals_to_admins_and_analysts(client: TestClient, db: Database, fake: Fake,
                                                                add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    add_statements(2)
    bad = add_statements(1, prefix="bad", territorial_scope=["US"])
    submission.backfill(db, clock=clock)
    _drain(_submitter(db, fake.url, clock))
    login(client, db, "ana", Role.ANALYST)
    html = client.get("/console/transparency/statements").text
    assert 'href="/console/transparency/statements"' in html and 'id="submission-off"' in html
    assert f'data-puid="{bad[0]}"' in html and "must be EU/EEA ISO 3166-1 alpha-2 codes" in html
    assert 'data-state="accepted"' in html and "accepted: <span class=\"count\">2</span>" in html
    accepted = client.get("/console/transparency/statements", params={"state": "accepted"}).text
    assert accepted.count("data-puid=") == 2 and bad[0] not in accepted


def test_the_console_page_is_refused_to_moderators(client: TestClient, db: Database) -> None:
    login(client, db, "mo", Role.MODERATOR)
    page = client.get("/console/transparency/statements")
    assert page.status_code == 403 and 'href="/console/transparency/statements"' not in client.get(
        "/console/queues").text
