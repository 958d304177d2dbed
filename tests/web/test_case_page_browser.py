"""The case page for a long shift, in a real browser at a laptop's 1366 by 800: the media large, the decision form and
the clocks on the first screen, removal by one key confirmed by a second, and a skip that moves on.

Set BASTION_CONSOLE_SCREENSHOT=/some/file.png to keep a screenshot of the case page (as file-shift.png).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_token, create_user
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve
from tests.factories.media import make_image
from tests.moderation.test_flow import _flip, _pdq

pytestmark = needs_chromium

VIEWPORT = {"width": 1366, "height": 800}


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    with serve(create_app(settings, db=db)) as base:
        yield base


def _held_uploads(base: str, db: Database, tmp_path: Path, n: int) -> list[int]:
    """``n`` uploads 16 bits from a banked terrorist image: each is held for review in the terrorism queue."""
    platform = {"Authorization": f"Bearer {create_token(db, role=Role.PLATFORM, name='platform', actor='test')}"}
    curator = {"Authorization": f"Bearer {create_token(db, role=Role.CURATOR, name='curator', actor='test')}"}
    upload = make_image(tmp_path / "upload.jpg", seed=41, size=(800, 600))
    cases = []
    with httpx.Client(base_url=base, timeout=30) as api:
        assert api.post("/v1/banks", json={"name": "TERRORIST_CONTENT"}, headers=curator).status_code == 201
        entry = {"signal_type": "pdq", "value": _flip(_pdq(upload), 16), "category": "terrorist_content"}
        assert api.post("/v1/banks/TERRORIST_CONTENT/entries", json=entry, headers=curator).status_code == 201
        time.sleep(0.3)  # the server's matcher replays the bank change log every 0.1 s
        for i in range(n):
            with upload.open("rb") as f:
                r = api.post("/v1/content", headers=platform, files={"media": ("upload.jpg", f, "image/jpeg")},
                             data={"content_id": f"held-{i}", "account_id": "acct-7", "account_age": "24",
                                   "account_country": "BE", "content_type": "image"})
            assert r.status_code == 200 and r.json()["verdict"] == "review", r.text
            cases.append(int(r.json()["case_id"]))
    return cases


def _within_viewport(box: dict[str, float] | None) -> bool:
    return box is not None and box["x"] >= 0 and box["y"] >= 0 \
        and box["x"] + box["width"] <= VIEWPORT["width"] and box["y"] + box["height"] <= VIEWPORT["height"]


def test_a_shift_on_a_laptop_screen_decide_confirm_and_skip(live_server: str, db: Database, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    first, second, third = _held_uploads(live_server, db, tmp_path, 3)
    create_user(db, username="mona", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with browser() as chromium:
        page = chromium.new_page(viewport=VIEWPORT)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live_server}/login")
        page.get_by_label("Username").fill("mona")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.locator('tr[data-queue="terrorism"]').get_by_role("button", name="Take next case").click()
        expect(page).to_have_url(f"{live_server}/console/cases/{first}")

        # the first screen holds the decision form and both clocks, each saying which clock it is
        media = page.locator("img.media")
        page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=media.element_handle())
        assert page.evaluate("window.scrollY") == 0
        for part in ("form#decision", ".clocks .sla", ".clocks .claim", "img.media"):
            assert _within_viewport(page.locator(part).bounding_box()), part
        expect(page.locator(".clocks .sla")).to_have_text(re.compile(r"^SLA: \d+m left$"))
        expect(page.locator(".clocks .claim")).to_have_text(re.compile(r"^Your claim: \d+m left$"))
        width = media.bounding_box()
        assert width is not None and width["width"] >= 400  # was capped at 256 px
        preview = page.locator(".case-media").bounding_box()
        form = page.locator("form#decision").bounding_box()
        assert preview is not None and form is not None and form["x"] > preview["x"] + preview["width"]  # beside
        if shot := os.environ.get("BASTION_CONSOLE_SCREENSHOT"):
            page.screenshot(path=shot.replace(".png", "-shift.png"))

        # skip moves on, and a run of skips does not come back to the skipped ones
        page.wait_for_load_state("load")  # the keys are read once the page has loaded
        page.keyboard.press("k")
        expect(page).to_have_url(f"{live_server}/console/cases/{second}?skipped={first}")
        expect(page.locator(".flash-ok")).to_contain_text(f"Case {first} skipped")
        page.wait_for_load_state("load")  # the keys are read once the page has loaded
        page.keyboard.press("k")
        expect(page).to_have_url(f"{live_server}/console/cases/{third}?skipped={first},{second}")

        # X arms the removal; Escape disarms; X twice removes and opens the next case
        remove = page.locator("button[data-key='x']")
        page.wait_for_load_state("load")  # the keys are read once the page has loaded
        page.keyboard.press("x")
        expect(remove).to_have_text("Press X again to remove (Esc cancels)")
        expect(page).to_have_url(f"{live_server}/console/cases/{third}?skipped={first},{second}")
        page.keyboard.press("Escape")
        expect(remove).to_have_text("Remove (X)")
        page.keyboard.press("x")
        page.keyboard.press("x")
        expect(page.locator(".flash-ok")).to_contain_text(f"Case {third} decided: the content is now removed.")
        expect(page).to_have_url(f"{live_server}/console/cases/{first}")  # the skips are over: back to the first

        # skipping the last waiting case hands it back and says there is no other
        page.wait_for_load_state("load")  # the keys are read once the page has loaded
        page.keyboard.press("k")
        expect(page).to_have_url(f"{live_server}/console/cases/{second}?skipped={first}")
        page.wait_for_load_state("load")  # the keys are read once the page has loaded
        page.keyboard.press("k")
        expect(page).to_have_url(f"{live_server}/console/queues")
        expect(page.locator(".flash-ok")).to_contain_text("No other case is waiting in terrorism.")
        assert errors == [], errors


def test_a_senior_moderator_searches_cases_and_opens_the_uploader_s_history(
        live_server: str, db: Database, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    first, second = _held_uploads(live_server, db, tmp_path, 2)
    create_user(db, username="sam", password=PASSWORD, role=Role.SENIOR_MODERATOR, actor="test")
    with browser() as chromium:
        page = chromium.new_page(viewport=VIEWPORT)
        page.goto(f"{live_server}/login")
        page.get_by_label("Username").fill("sam")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Cases").click()
        expect(page.locator("table.cases tbody tr")).to_have_count(2)
        page.get_by_label("Content").fill("held-1")
        page.get_by_label("State").select_option("open")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("table.cases tbody tr")).to_have_count(1)
        expect(page.locator(f'tr[data-case="{second}"]')).to_be_visible()
        page.locator(f'tr[data-case="{second}"]').get_by_role("link", name="acct-7").click()
        expect(page.locator("h1")).to_contain_text("acct-7")
        expect(page.locator("table.uploads tbody tr")).to_have_count(2)
        expect(page.locator("table.account-cases tbody tr")).to_have_count(2)
        page.get_by_role("link", name=str(first), exact=True).click()
        expect(page).to_have_url(f"{live_server}/console/cases/{first}")
