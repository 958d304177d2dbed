"""The analysts' classifiers page: over HTTP for roles and content, and in a real browser for CSP and layout."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bastion.classifiers import services
from bastion.classifiers.features import HashedNgrams
from bastion.classifiers.interfaces import LabelledText
from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_user
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app
from tests.factories.console import PASSWORD, login
from tests.factories.live import browser, needs_chromium, serve

CLOCK = FrozenClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC))


def _trained(db: Database) -> services.TrainedModel:
    examples = [LabelledText(f"c-{i}", f"they are vermin, drive them out {i}" if i % 2 else f"a lovely day {i}",
                             "hate_speech", bool(i % 2)) for i in range(24)]
    return services.train(db, examples, category="hate_speech", features=HashedNgrams(), clock=CLOCK,
                          actor="ana")




@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db)) as c:
        yield c


def test_an_analyst_sees_held_out_precision_and_recall(client: TestClient, db: Database) -> None:
    row = _trained(db)
    _login(client, db, "ana", Role.ANALYST)
    page = client.get("/console/classifiers")
    assert page.status_code == 200
    m = row.metrics
    assert f'<td class="num precision">{m["precision"]:.2f}</td>' in page.text
    assert f'<td class="num recall">{m["recall"]:.2f}</td>' in page.text
    assert 'data-category="hate_speech"' in page.text and "2026-06-01 09:30" in page.text
    assert 'href="/console/classifiers"' in page.text  # in the navigation
    assert "No classifier is configured" in page.text


def test_other_roles_and_visitors_are_refused(client: TestClient, db: Database) -> None:
    assert client.get("/console/classifiers", follow_redirects=False).headers["location"] == "/login"
    _login(client, db, "mo", Role.MODERATOR)
    page = client.get("/console/classifiers")
    assert page.status_code == 403
    assert 'href="/console/classifiers"' not in page.text


@pytest.mark.browser
@needs_chromium[1]
def test_the_page_in_a_browser_with_no_console_errors(settings: Settings, db: Database) -> None:
    from playwright.sync_api import expect

    _trained(db)
    create_user(db, username="ana", password=PASSWORD, role=Role.ANALYST, actor="test")
    with serve(create_app(settings, db=db)) as base, browser() as chromium:
        page = chromium.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/login")
        page.get_by_label("Username").fill("ana")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Classifiers").click()
        expect(page).to_have_url(f"{base}/console/classifiers")
        expect(page.locator('tr[data-category="hate_speech"] td').first).to_have_text("hate_speech")
        assert errors == []


def _login(client: TestClient, db: Database, username: str, role: Role) -> None:
    login(client, db, username, role)
