"""The transparency dashboard in a real browser at 1366x800: an analyst logs in, opens the dashboard, changes the
grouping and the period, reads the charts (inline SVG under the console's Content-Security-Policy) and downloads a
chart's CSV; a researcher lands on it with small cells suppressed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_user
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve
from tests.web.test_transparency_pages import scenario

pytestmark = needs_chromium


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    with serve(create_app(settings, db=db)) as base:
        yield base


def _login(page: object, base: str, username: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]


def test_an_analyst_filters_the_dashboard_and_downloads_a_chart(live_server: str, db: Database,
                                                                tmp_path: Path) -> None:
    from playwright.sync_api import expect

    scenario(db)
    create_user(db, username="ana", password=PASSWORD, role=Role.ANALYST, actor="test")
    create_user(db, username="res", password=PASSWORD, role=Role.RESEARCHER, actor="test")
    with browser() as chromium:
        context = chromium.new_context(viewport={"width": 1366, "height": 800}, accept_downloads=True)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)  # CSP refusals land here
        _login(page, live_server, "ana")
        page.get_by_role("link", name="Transparency", exact=True).click()
        expect(page).to_have_url(f"{live_server}/console/transparency")
        expect(page.get_by_role("heading", level=1)).to_have_text("Transparency")
        page.get_by_label("From", exact=True).fill("2026-01-01")
        page.get_by_label("To", exact=True).fill("2026-01-31")
        page.get_by_label("Group by", exact=True).select_option("source")
        page.get_by_role("button", name="Apply").click()
        expect(page).to_have_url(f"{live_server}/console/transparency?from=2026-01-01&to=2026-01-31&by=source"
                                 "&category=")
        expect(page.get_by_role("img")).to_have_count(6)
        expect(page.get_by_role("heading", name="Actions by source")).to_be_visible()
        hash_match = page.locator("#chart-actions g.bar[data-label='hash_match']")
        expect(hash_match).to_have_attribute("data-value", "900")
        expect(hash_match.locator("text").last).to_have_text("900")
        box = page.locator("#chart-actions svg").bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 50  # drawn, not an empty box
        columns = page.locator("#chart-proactive g.bar")
        assert columns.count() >= 2
        with page.expect_download() as download:
            page.locator("#chart-actions a.csv").click()
        saved = tmp_path / "actions.csv"
        download.value.save_as(saved)
        rows = list(csv.reader(io.StringIO(saved.read_text())))
        assert rows[0] == ["source", "actions", "proactive", "proactive share"]
        assert ["hash_match", "900", "900", "1.0"] in rows
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        assert problems == [], problems

        other = context.browser.new_page(viewport={"width": 1366, "height": 800}) if context.browser else None
        assert other is not None
        _login(other, live_server, "res")
        expect(other).to_have_url(f"{live_server}/console/transparency")
        expect(other.get_by_text("are suppressed")).to_be_visible()
        expect(other.get_by_role("link", name="Queues")).to_have_count(0)
