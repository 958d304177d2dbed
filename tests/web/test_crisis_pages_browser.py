"""The crisis pages in a real browser at 1366x800: an analyst finds the crisis in the menu and reads its timeline
(activation, rules, uploads blocked per minute, variants found, notes); a moderator has no such menu entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal, create_user
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.feed import crisis
from bastion.feed.crisis import Crises, CrisisProtocol
from bastion.hashing.services import hash_path
from bastion.matching.matcher import Matcher
from bastion.moderation import intake
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import DEFAULT_POLICY_PATH, ContentType, PolicyFile
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve
from tests.factories.media import make_image

pytestmark = needs_chromium
ADMIN = Principal("cli", 0, "ops-lead", Role.ADMIN)


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    with serve(create_app(settings, db=db)) as base:
        yield base


def _seed(db: Database, tmp: Path) -> int:
    """A crisis with its known image, three re-uploads blocked (one mirrored) and a note."""
    matcher = Matcher(db)
    adjuster = crisis.CrisisAdjuster()
    mod = Moderation(db, matcher, PolicyFile(DEFAULT_POLICY_PATH), SystemClock(), adjuster=adjuster)
    c = Crises(db, SystemClock(), mod)
    image = make_image(tmp / "attack.jpg", seed=95, size=(480, 360))
    row = crisis.activate(c, crisis.NewCrisis(CrisisProtocol.EU_CRISIS_PROTOCOL, "ECP-2026-09", ["FR"],
                                              title="attack in Lyon", material=crisis.material_from_file(image)),
                          actor=ADMIN)
    with db.read() as session:
        adjuster.update(tuple(crisis.active_crises(session)))
    matcher.load()
    mirrored = tmp / "mirrored.jpg"
    ImageOps.mirror(Image.open(image)).save(mirrored)
    for i, path in enumerate((image, image, mirrored)):
        sub = intake.Submission(f"re-{i}-{path.stem}", "acct", 30, "FR", ContentType.IMAGE)
        result = intake.submit(mod, sub, hash_path(path, variants=True), actor=ADMIN)
        assert result.status.value == "blocked"
    crisis.add_note(c, row.id, "hashes shared with GIFCT", actor=ADMIN)
    return row.id


def _login(page: object, base: str, username: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]


def test_an_analyst_reads_the_crisis_timeline(live_server: str, db: Database, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    crisis_id = _seed(db, tmp_path)
    create_user(db, username="ana", password=PASSWORD, role=Role.ANALYST, actor="test")
    create_user(db, username="mod", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1366, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _login(page, live_server, "ana")
        page.get_by_role("link", name="Crises").click()
        expect(page).to_have_url(f"{live_server}/console/crises")
        row = page.locator(f"tr[data-crisis='{crisis_id}']")
        expect(row).to_contain_text("eu_crisis_protocol")
        expect(row).to_contain_text("active")
        row.get_by_role("link", name="ECP-2026-09").click()
        expect(page).to_have_url(f"{live_server}/console/crises/{crisis_id}")
        expect(page.locator(".crisis-rules")).to_contain_text("livestreams from FR are kept out of feeds")
        expect(page.locator(".crisis-counts .blocked")).to_have_text("3")
        expect(page.locator(".crisis-counts .variants")).to_have_text("1")
        expect(page.locator("table.per-minute tbody tr")).to_have_count(1)
        timeline = page.locator("ol.timeline li")
        expect(timeline).to_have_count(3)
        expect(timeline.nth(0)).to_contain_text("activated under eu_crisis_protocol (ECP-2026-09) for FR")
        expect(timeline.nth(1)).to_contain_text("known hashes banked")
        expect(timeline.nth(2)).to_contain_text("hashes shared with GIFCT")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1366, width  # nothing overflows sideways
        assert errors == []

        page.get_by_role("button", name="Log out").click()
        _login(page, live_server, "mod")
        expect(page.get_by_role("link", name="Crises")).to_have_count(0)
        assert page.goto(f"{live_server}/console/crises").status == 403  # type: ignore[union-attr]
