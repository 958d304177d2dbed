"""The reports console page in headless Chromium: it renders, with no console errors (no inline script or CSS)."""

from __future__ import annotations

from dataclasses import replace
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


def test_send_is_disabled_with_the_reason_when_no_schema_is_configured_and_the_review_has_room(
        db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeNcmec) -> None:
    settings = replace(make_settings(database_url, fake_ncmec.url), ncmec_xsd=None)
    world = make_world(db, tmp_path, settings)
    world.known("k-1", "acct-a", seed=1)
    world.confirmed("c-2", "acct-a", seed=2)
    world.confirmed("c-3", "acct-a", seed=3)
    (report_id,) = services.draft_pending(world.rep)
    app = create_app(settings, db=db, clock=FrozenClock(NOW), refresh=False)
    create_user(db, username="cs", password=PASSWORD, role=Role.CHILD_SAFETY, actor="test")
    with serve(app) as base, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "cs")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base}/console/reports")
        send = page.locator(f'tr[data-report="{report_id}"] form[action$="/send"] button')
        assert send.is_disabled()
        reason = page.locator("#send-blocked").inner_text()
        assert "BASTION_NCMEC_XSD" in reason and send.get_attribute("aria-describedby") == "send-blocked"
        review = page.locator(f'tr[data-review="{report_id}"]')
        urgent = review.locator("input[name=urgent_reason]").bounding_box()
        assert urgent is not None and urgent["width"] >= 400  # room to type a reason
        boxes = [review.locator(f'label.file:has(select[name="class:{c}"])').bounding_box()
                 for c in ("k-1", "c-2", "c-3")]
        selects = [review.locator(f'select[name="class:{c}"]').bounding_box() for c in ("k-1", "c-2", "c-3")]
        assert all(b is not None for b in boxes + selects)
        for box, select in zip(boxes, selects, strict=True):  # each file is its own card: name, hash, then class
            assert box is not None and select is not None
            assert select["y"] > box["y"] + 20 and select["x"] >= box["x"]
        tops = sorted({round(b["y"]) for b in boxes if b is not None})
        assert len(tops) == 1  # side by side in one row, not squeezed into one line of text
        page.screenshot(path=str(tmp_path / "reports.png"), full_page=True)
        assert errors == []
