"""Review in a real browser: a moderator removes a held upload, the platform hears of it, an appeal reverses it.

Set BASTION_CONSOLE_SCREENSHOT=/some/file.png to keep a screenshot of the case page (as file-case.png).

Debian's chromium through Playwright against the real app under uvicorn; the platform's webhook is a real loopback
HTTP server; uploads and the appeal arrive over HTTP with a platform token, as a platform would send them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from tests.factories.receiver import Receiver
from tests.moderation.test_flow import _flip, _pdq

pytestmark = needs_chromium

SECRET = b"platform-webhook-secret"


@pytest.fixture
def live_server(settings: Settings, db: Database, receiver: Receiver) -> Iterator[str]:
    configured = Settings(**{**settings.__dict__, "platform_webhook_url": receiver.url, "webhook_secret": SECRET,
                             "outbox_interval_seconds": 0.05})
    with serve(create_app(configured, db=db)) as base:
        yield base


def _hook(receiver: Receiver, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15  # the outbox delivers after commit; waiting for it is not a speed check
    while time.monotonic() < deadline:
        for request in list(receiver.requests):
            if request.headers.get("Bastion-Event") == kind:
                return dict(json.loads(request.body))
        time.sleep(0.05)
    raise AssertionError(f"no {kind} webhook; got {[r.headers.get('Bastion-Event') for r in receiver.requests]}")


def test_a_moderator_removes_a_held_upload_and_another_reverses_it_on_appeal(
        live_server: str, db: Database, receiver: Receiver, tmp_path: Path) -> None:
    from playwright.sync_api import Page, expect

    for name in ("mona", "marek"):
        create_user(db, username=name, password=PASSWORD, role=Role.MODERATOR, actor="test")
    platform = {"Authorization": f"Bearer {create_token(db, role=Role.PLATFORM, name='platform', actor='test')}"}
    curator = {"Authorization": f"Bearer {create_token(db, role=Role.CURATOR, name='curator', actor='test')}"}
    upload = make_image(tmp_path / "upload.jpg", seed=41, size=(800, 600))
    with httpx.Client(base_url=live_server, timeout=30) as api:
        assert api.post("/v1/banks", json={"name": "TERRORIST_CONTENT"}, headers=curator).status_code == 201
        entry = {"signal_type": "pdq", "value": _flip(_pdq(upload), 16), "category": "terrorist_content"}
        assert api.post("/v1/banks/TERRORIST_CONTENT/entries", json=entry, headers=curator).status_code == 201
        time.sleep(0.3)  # the server's matcher replays the bank change log every 0.1 s
        with upload.open("rb") as f:
            r = api.post("/v1/content", headers=platform, files={"media": ("upload.jpg", f, "image/jpeg")},
                         data={"content_id": "vid-1", "account_id": "acct-7", "account_age": "24",
                               "account_country": "BE", "content_type": "image"})
        assert r.status_code == 200 and r.json()["verdict"] == "review", r.text
        case_id = r.json()["case_id"]

    def login(page: Page, username: str) -> None:
        page.goto(f"{live_server}/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{live_server}/console/queues")

    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        login(page, "mona")
        if shot := os.environ.get("BASTION_CONSOLE_SCREENSHOT"):
            page.screenshot(path=shot.replace(".png", "-queues.png"), full_page=True)
        row = page.locator('tr[data-queue="terrorism"]')
        expect(row.locator("td.open")).to_have_text("1")
        row.get_by_role("button", name="Take next case").click()
        expect(page).to_have_url(f"{live_server}/console/cases/{case_id}")
        expect(page.locator("h1")).to_contain_text(f"Case {case_id}")
        expect(page.locator("table.matches td.distance")).to_have_text("16")

        media = page.locator("img.media")
        expect(media).to_have_attribute("src", f"/console/cases/{case_id}/media?view=blurred")
        page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=media.element_handle())
        page.wait_for_load_state("load")  # the keys are read once the page has loaded
        page.keyboard.press("v")  # the shortcut reveals: the clear preview is fetched only now
        expect(media).to_have_attribute("src", f"/console/cases/{case_id}/media?view=clear")
        expect(page.locator("[data-reveal-label]")).to_have_text("Blur again (V)")
        page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=media.element_handle())
        if shot:
            page.screenshot(path=shot.replace(".png", "-case.png"), full_page=True)
        page.get_by_role("button", name="Remove (X)").click()  # a first click arms the removal
        page.get_by_role("button", name="Press X again to remove (Esc cancels)").click()
        expect(page).to_have_url(f"{live_server}/console/queues")
        expect(page.locator(".flash-ok")).to_contain_text(f"Case {case_id} decided: the content is now removed.")

        removed = _hook(receiver, "moderation.action")
        assert removed["content_id"] == "vid-1" and removed["status"] == "removed"
        assert removed["actions"] == ["remove"] and removed["statement_puid"]

        with httpx.Client(base_url=live_server, timeout=30) as api:
            r = api.post("/v1/appeals", headers=platform,
                         json={"statement_puid": removed["statement_puid"], "text": "This is news reporting."})
            assert r.status_code == 201, r.text
            appeal_case = r.json()["case_id"]

        page.reload()
        page.locator('tr[data-queue="terrorism"]').get_by_role("button", name="Take next case").click()
        expect(page).to_have_url(f"{live_server}/console/queues")  # mona decided: the appeal is not hers
        expect(page.locator(".flash-ok")).to_contain_text("No case is waiting in terrorism")
        page.get_by_role("button", name="Log out").click()

        login(page, "marek")
        page.locator('tr[data-queue="terrorism"]').get_by_role("button", name="Take next case").click()
        expect(page).to_have_url(f"{live_server}/console/cases/{appeal_case}")
        expect(page.locator(".appeal-text")).to_have_text("This is news reporting.")
        page.wait_for_load_state("load")  # the keys are read once the page has loaded
        page.keyboard.press("x")  # on an appeal, X reverses and reinstates, once confirmed by a second X
        expect(page.locator("button[data-key='x']")).to_have_text(
            "Press X again to reverse and reinstate (Esc cancels)")
        page.keyboard.press("x")
        expect(page.locator(".flash-ok")).to_contain_text(f"Case {appeal_case} decided: the content is now published.")
        assert errors == [], errors  # no CSP violations, no script errors

    reinstated = _hook(receiver, "moderation.reinstated")
    assert reinstated["content_id"] == "vid-1" and reinstated["status"] == "published"
