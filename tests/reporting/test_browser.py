"""The reports console page in headless Chromium: it renders, with no console errors (no inline script or CSS)."""

from __future__ import annotations

from pathlib import Path

from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_user
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.reporting import services
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve
from tests.factories.ncmec import FakeNcmec
from tests.reporting.conftest import NOW, make_settings, make_world

pytestmark = needs_chromium


def test_the_reports_page_in_a_browser_has_no_console_errors(
        db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeNcmec) -> None:
    settings = make_settings(database_url, fake_ncmec.url)
    world = make_world(db, tmp_path, settings)
    world.known("k-1", "acct-a", seed=1)
    (report_id,) = services.draft_pending(world.rep)
    app = create_app(settings, db=db, clock=FrozenClock(NOW), refresh=False)
    create_user(db, username="cs", password=PASSWORD, role=Role.CHILD_SAFETY, actor="test")
    with serve(app) as base, browser() as chromium:
        page = chromium.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "cs")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base}/console/reports")
        assert page.locator("h1").inner_text() == "Child-safety reports"
        assert page.locator(f'tr[data-report="{report_id}"] td.state').inner_text() == "draft"
        page.select_option(f'tr[data-review="{report_id}"] select[name="class:k-1"]', "A2")
        page.fill(f'tr[data-review="{report_id}"] input[name=urgent_reason]', "ongoing abuse")
        page.click(f'tr[data-review="{report_id}"] button[type=submit]')
        page.wait_for_url(f"{base}/console/reports")
        assert "saved" in page.locator("body").inner_text()
        assert page.locator(f'tr[data-review="{report_id}"] select[name="class:k-1"]').input_value() == "A2"
        assert page.locator(f'tr[data-report="{report_id}"] .badge').inner_text() == "urgent"
        assert errors == []
