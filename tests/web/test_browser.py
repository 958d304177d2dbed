"""The console in a real browser: Debian's chromium driven by Playwright against a live uvicorn server.

Set BASTION_CONSOLE_SCREENSHOT=/some/file.png to keep a screenshot of the match page for a human to look at.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal, create_user
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hashing.services import hash_path
from bastion.matching import services
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve
from tests.factories.media import make_image

pytestmark = needs_chromium


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    with serve(create_app(settings, db=db)) as base:
        yield base


def test_a_curator_matches_an_upload_and_disables_the_bank(live_server: str, db: Database, admin: Principal,
                                                            tmp_path: Path) -> None:
    from playwright.sync_api import expect

    create_user(db, username="carla", password=PASSWORD, role=Role.CURATOR, actor="test")
    known = make_image(tmp_path / "known.jpg", seed=11, size=(800, 600))
    pdq = next(s.value for s in hash_path(known).signals if s.signal_type == "pdq")
    services.create_bank(db, "TERRORIST_CONTENT", actor=admin, description="Known terrorist propaganda")
    entry = services.NewEntry.parse("pdq", pdq, "terrorist_content", "test")
    services.add_entry(db, "TERRORIST_CONTENT", entry, actor=admin)
    copy = tmp_path / "copy.jpg"
    with Image.open(known) as img:
        img.resize((400, 300)).save(copy, quality=60)
    time.sleep(0.3)  # the server's matcher replays the change log every 0.1 s

    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{live_server}/console/banks")
        expect(page).to_have_url(f"{live_server}/login")
        page.get_by_label("Username").fill("carla")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

        expect(page).to_have_url(f"{live_server}/console/banks")
        row = page.locator('tr[data-bank="TERRORIST_CONTENT"]')
        expect(row).to_contain_text("TERRORIST_CONTENT")
        expect(row.locator("td.entries")).to_have_text("1")
        expect(row.locator("td.status")).to_have_text("enabled")
        expect(page.locator(".who")).to_contain_text("carla")

        page.get_by_role("link", name="Match").click()
        expect(page).to_have_url(f"{live_server}/console/match")
        page.set_input_files("#file", str(copy))
        page.get_by_role("button", name="Match", exact=True).click()

        matches = page.locator("table.matches")
        expect(matches).to_contain_text("TERRORIST_CONTENT")
        distance = int(matches.locator("td.distance").first.inner_text())
        assert 0 <= distance <= 31

        thumb = page.locator("img.thumb")
        expect(thumb).to_be_visible()
        assert "blur" in thumb.evaluate("e => getComputedStyle(e).filter")
        reveal = page.get_by_role("button", name="Click to reveal")
        expect(page.get_by_text("Click to reveal", exact=True)).to_be_visible()
        shot = os.environ.get("BASTION_CONSOLE_SCREENSHOT")
        page.screenshot(path=shot or str(tmp_path / "match.png"), full_page=True)
        reveal.click()
        filter_is = ("([e, want]) => want ? getComputedStyle(e).filter.includes(want)"
                     " : getComputedStyle(e).filter === 'none'")
        # the filter fades, so wait for it to settle
        page.wait_for_function(filter_is, arg=[thumb.element_handle(), ""], timeout=5000)
        expect(page.get_by_text("Click to blur again", exact=True)).to_be_visible()
        if shot:
            page.screenshot(path=shot.replace(".png", "-revealed.png"), full_page=True)
        page.keyboard.press("Enter")  # the control keeps focus: the keyboard blurs the image again
        page.wait_for_function(filter_is, arg=[thumb.element_handle(), "blur"], timeout=5000)

        page.get_by_role("link", name="Banks").click()
        row = page.locator('tr[data-bank="TERRORIST_CONTENT"]')
        row.get_by_role("button", name="Disable").click()
        expect(page.locator(".flash-ok")).to_have_text("Bank TERRORIST_CONTENT disabled.")
        expect(row.locator("td.status")).to_have_text("disabled")
        expect(row.get_by_role("button", name="Enable")).to_be_visible()
        assert errors == [], errors  # no CSP violations, no script errors

    with db.read() as session:
        assert not services.get_bank(session, "TERRORIST_CONTENT").enabled
