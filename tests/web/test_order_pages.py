"""The contact point's console page in a real browser: orders, their live one-hour clock, the receipt→action chart."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.orders import services as orders
from bastion.orders.interfaces import SenderRole
from bastion.orders.wire import SigningKey, signed_request
from bastion.web.app import create_app
from bastion.web.order_pages import clock_label
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve
from tests.factories.orders import make_order

URL = "https://video.example/v/abc123"


def test_clock_labels() -> None:
    assert clock_label(3599.4) == "59:59 left" and clock_label(0) == "0:00 left"
    assert clock_label(-62) == "overdue by 1:02"


@pytest.fixture
def live(settings: Settings, db: Database) -> Iterator[tuple[str, SigningKey]]:
    hub = SigningKey.generate()
    orders.trust_key(db, name="hub", role=SenderRole.HUB, public_key=hub.public_text, clock=SystemClock(),
                     answer_url="http://127.0.0.1:9/v1/hub/answers")
    configured = replace(settings, orders_auto_execute=False, orders_signing_key=SigningKey.generate().to_text())
    with serve(create_app(configured, db=db)) as base:
        yield base, hub


def _orders(base: str, hub: SigningKey, db: Database) -> None:
    token = auth.create_token(db, role=Role.PLATFORM, name="p", actor="t")
    r = httpx.post(f"{base}/v1/content", headers={"Authorization": f"Bearer {token}"}, data={
        "content_id": "vid-1", "account_id": "a", "account_age": "30", "account_country": "FR",
        "content_type": "text", "text": "a video page", "url": URL})
    assert r.status_code == 200, r.text
    for reference in ("HUB-DONE", "HUB-WAITING"):
        body, headers = signed_request(hub, make_order(reference, urls=[URL]), dt.datetime.now(dt.UTC))
        assert httpx.post(f"{base}/v1/orders", content=body, headers=headers).json()["state"] == "received"
    senior = auth.create_token(db, role=Role.SENIOR_MODERATOR, name="s", actor="t")
    done = httpx.post(f"{base}/v1/orders/HUB-DONE/execute", headers={"Authorization": f"Bearer {senior}"})
    assert done.json()["state"] == "executed"


def test_people_without_an_orders_role_are_refused(live: tuple[str, SigningKey], db: Database) -> None:
    base, _hub = live
    auth.create_user(db, username="cora", password=PASSWORD, role=Role.CURATOR, actor="test")
    with httpx.Client(base_url=base) as client:
        login = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        form = {"username": "cora", "password": PASSWORD, "csrf_token": csrf.group(1) if csrf else ""}
        client.post("/login", data=form)
        assert client.get("/console/orders").status_code == 403


@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_chromium)])
def test_orders_page_shows_live_clocks_and_the_chart(live: tuple[str, SigningKey], db: Database, _: None) -> None:
    from playwright.sync_api import expect

    base, hub = live
    _orders(base, hub, db)
    auth.create_user(db, username="sam", password=PASSWORD, role=Role.SENIOR_MODERATOR, actor="test")
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/login")
        page.get_by_label("Username").fill("sam")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        errors.clear()  # the landing page is the review queues: another page's business
        page.goto(f"{base}/console/orders")
        expect(page.get_by_role("link", name="Orders")).to_have_attribute("aria-current", "page")
        waiting = page.locator('tr[data-order="HUB-WAITING"]')
        expect(waiting.locator("td.state")).to_have_text("received")
        countdown = waiting.locator(".countdown")
        expect(countdown).to_have_text(re.compile(r"^59:\d\d left$"))
        first = countdown.inner_text()
        time.sleep(1.3)
        assert countdown.inner_text() != first  # the clock is live
        expect(page.locator('tr[data-order="HUB-DONE"] td.action')).to_contain_text("removed")
        bar = page.locator('svg.chart g.bar[data-order="HUB-DONE"]')
        expect(bar).to_have_count(1)
        assert float(bar.get_attribute("data-seconds") or "-1") >= 0
        assert errors == []


def _send(base: str, hub: SigningKey, reference: str) -> None:
    body, headers = signed_request(hub, make_order(reference, urls=[URL]), dt.datetime.now(dt.UTC))
    assert httpx.post(f"{base}/v1/orders", content=body, headers=headers).json()["state"] == "received"


def _log_in(chromium: Any, base: str, username: str) -> Any:
    page = chromium.new_page(viewport={"width": 1366, "height": 800})
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return page


@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_chromium)])
def test_a_person_executes_an_order_or_answers_annex_iii_from_its_page(live: tuple[str, SigningKey], db: Database,
                                                                      _: None) -> None:
    """With auto-execution off, the contact point works from the console alone (issue 15)."""
    from playwright.sync_api import expect

    base, hub = live
    _orders(base, hub, db)
    _send(base, hub, "HUB-CANNOT")
    auth.create_user(db, username="sam", password=PASSWORD, role=Role.SENIOR_MODERATOR, actor="test")
    with browser() as chromium:
        page = _log_in(chromium, base, "sam")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/console/orders")
        page.get_by_role("link", name="HUB-WAITING").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Removal order HUB-WAITING")
        expect(page.locator("td.clock .countdown")).to_have_text(re.compile(r"^\d+:\d\d left$"))
        expect(page.locator("td.received")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
        page.get_by_role("button", name="Execute: remove the content now").click()
        expect(page.get_by_role("status")).to_contain_text("executed")
        expect(page.locator("td.state")).to_have_text("executed")
        expect(page.get_by_role("button", name="Execute: remove the content now")).to_have_count(0)
        expect(page.locator('tr.event[data-kind="order.executed"] td').nth(2)).to_have_text("user:sam")

        page.goto(f"{base}/console/orders/HUB-CANNOT")
        page.get_by_role("button", name="Send Annex III: cannot execute").click()  # nothing chosen, nothing said
        expect(page.locator("#reason-error")).to_have_text("Reason: choose why the order cannot be executed.")
        expect(page.locator("#explanation-error")).to_contain_text("Explanation:")
        expect(page.locator("td.state")).to_have_text("received")
        page.get_by_label("The order contains manifest errors").check()
        page.get_by_label("Explanation").fill("The URL names a news report on the attack, not the video.")
        page.get_by_role("button", name="Send Annex III: cannot execute").click()
        expect(page.get_by_role("status")).to_contain_text("Annex III sent")
        expect(page.locator("td.state")).to_have_text("unable")
        assert errors == []
    with db.read() as session:
        from bastion.orders.models import OrderEvent
        unable = session.query(OrderEvent).filter_by(subject="HUB-CANNOT", kind="order.unable").one()
        assert unable.data["reason"] == "manifest_error" and unable.actor == "user:sam"


def test_an_analyst_reads_an_order_but_may_not_act_on_it(live: tuple[str, SigningKey], db: Database) -> None:
    base, hub = live
    _send(base, hub, "HUB-READ")
    auth.create_user(db, username="ana", password=PASSWORD, role=Role.ANALYST, actor="test")
    with httpx.Client(base_url=base) as client:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": csrf.group(1) if csrf
                                    else ""})
        shown = client.get("/console/orders/HUB-READ")
        assert shown.status_code == 200 and "HUB-READ" in shown.text and "Execute" not in shown.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/orders").text)
        refused = client.post("/console/orders/HUB-READ/execute",
                              data={"csrf_token": token.group(1) if token else ""})
        assert refused.status_code == 403
        assert client.get("/console/orders/NO-SUCH").status_code == 404
    with db.read() as session:
        from bastion.orders.models import ReceivedOrder
        assert session.get(ReceivedOrder, "HUB-READ").state == "received"  # type: ignore[union-attr]
