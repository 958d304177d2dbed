"""An authority issues a removal order in the hub's console, in a real browser, and sees the platform's feedback.

The hub (with its console) and a platform run as two uvicorn servers on loopback, as in ``test_end_to_end.py``;
the order travels through the hub's outbox to the contact point, which removes the content and answers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx
import pytest

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.services import Claim, SendResult
from bastion.hub import services
from bastion.hub.app import create_hub_app
from bastion.hub.models import Provider
from bastion.orders.wire import AuthorityType, Feedback, Inability, InabilityReason, SigningKey, Verified
from bastion.web.hub_pages import with_console
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve
from tests.factories.orders import make_order
from tests.hub.test_end_to_end import URL, World, world  # noqa: F401 - a shared fixture

pytestmark = needs_chromium


@contextmanager
def hub_with_console(w: World) -> Iterator[str]:
    app = with_console(create_hub_app(w.hub_settings, db=w.hub_db))
    with serve(app, port=w.hub_port) as base:
        w.hub_port = int(base.rsplit(":", 1)[1])
        yield base


def test_an_authority_issues_an_order_in_the_console_and_sees_the_feedback(world: World) -> None:  # noqa: F811
    from playwright.sync_api import expect

    with world.platform(orders_auto_execute=False), hub_with_console(world) as hub:
        world.connect({"OCLCTIC": "FR"})
        world.upload("vid-1")
        auth.create_user(world.hub_db, username="fr-officer", password=PASSWORD, role=Role.AUTHORITY, actor="t")
        services.link_user(world.hub_db, "fr-officer", "OCLCTIC", clock=SystemClock(), actor="t")
        with browser() as chromium:
            page = chromium.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{hub}/login")
            page.get_by_label("Username").fill("fr-officer")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{hub}/console/hub/orders")
            expect(page.locator("#hub-orders-rows")).to_contain_text("No orders yet")

            page.get_by_role("link", name="Issue an order").click()
            page.get_by_label("Your reference").fill("FR-BROWSER-1")
            provider = page.locator("#f-provider option", has_text="Bastion Video Ltd").get_attribute("value")
            page.get_by_label("Hosting service provider").select_option(value=provider)
            page.get_by_label("Exact URLs").fill(URL)
            page.get_by_label("Reasons why the content is terrorist content").fill(
                "Video glorifying an attack and calling for further attacks.")
            page.get_by_role("checkbox", name="incites to commit terrorist offences").check()
            page.get_by_label("File number").fill("PN-2026-17")
            page.get_by_label("Email").fill("tco@authority.example")
            page.get_by_label("Contact point for follow-up").fill("tco@authority.example")
            page.get_by_label("Competent body or court").fill("Tribunal administratif de Paris")
            # Forgotten field first: the error is shown beside it and the rest is kept.
            page.get_by_role("button", name="Issue").click()
            expect(page.locator("#redress-deadline-error")).to_have_text("Deadline for a challenge: fill this in.")
            expect(page.get_by_label("File number")).to_have_value("PN-2026-17")
            errors.clear()  # the browser logs the 422 of that answer as a failed load
            page.get_by_label("Deadline for a challenge").fill("two months from receipt")
            page.get_by_role("button", name="Issue").click()

            expect(page.locator(".flash-ok")).to_contain_text("Issued as TCO-")
            reference = page.url.rsplit("/", 1)[1]
            assert reference.startswith("TCO-")
            # Delivered: the hour runs, live. Then a senior moderator at the platform executes the order, which
            # removes the content and answers; the page updates itself (no reload).
            expect(page.locator("#order-state td.state")).to_have_text("delivered", timeout=30_000)
            countdown = page.locator("#order-state .countdown")
            expect(countdown).to_have_text(re.compile(r"^59:\d\d left$"))
            # It ticks in the browser (live.js keeps the shown second, so only orders.js changes it).
            expect(countdown).not_to_have_text(countdown.inner_text(), timeout=5_000)
            senior = auth.create_token(world.db, role=Role.SENIOR_MODERATOR, name="s", actor="t")
            done = httpx.post(f"{world.platform_url}/v1/orders/{reference}/execute",
                              headers={"Authorization": f"Bearer {senior}"})
            assert done.status_code == 200, done.text
            expect(page.locator("#order-state td.state")).to_have_text("executed", timeout=30_000)
            expect(page.locator("#order-state td.actioned")).to_contain_text("removed at ")
            expect(page.locator("#order-state td.feedback")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d"))
            expect(page.locator(".answer h2")).to_have_text("Annex II: feedback")
            expect(page.locator('#order-events tr[data-kind="order.issued"]')).to_contain_text(
                "via console by user fr-officer")
            assert world.content_status("vid-1") == "removed"

            page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
            row = page.locator(f'tr[data-order="{reference}"]')
            expect(row.locator("td.state")).to_contain_text("executed")
            expect(row.locator("td.actioned")).to_contain_text("removed")
            bar = page.locator(f'svg.chart g.bar[data-order="{reference}"]')
            expect(bar).to_have_count(1)
            assert float(bar.get_attribute("data-seconds") or "-1") >= 0
            assert errors == []


class _Acknowledging:
    """A contact point that acknowledges every order at once (the outbox's sender, for a page of many orders)."""

    def send(self, claim: Claim) -> SendResult:
        return SendResult.delivered(200)


def _many_orders(db: Database, settings: Settings) -> list[str]:
    """Orders in every state a list shows at once: delivered (the clock runs), unable with a long Annex III, executed
    with its feedback, linked; long authority references and provider names, as real ones are."""
    clock = SystemClock()
    provider = services.register_provider(
        db, name="Bastion Video Sharing Platform International Ltd", contact_point_url="http://127.0.0.1:9",
        member_state="IE", languages=["en"], public_keys=[SigningKey.generate().public_text], clock=clock)
    fr = services.register_authority(db, name="OCLCTIC", member_state="FR", authority_type=AuthorityType.JUDICIAL,
                                     public_keys=[SigningKey.generate().public_text], clock=clock,
                                     actor="t").authority
    auth.create_user(db, username="fr-officer", password=PASSWORD, role=Role.AUTHORITY, actor="t")
    services.link_user(db, "fr-officer", "OCLCTIC", clock=clock, actor="t")
    references = []
    for i in range(4):
        order = make_order(f"PN-2026-OCLCTIC-TERRORISME-{i:04d}", urls=[f"https://video.example/v/{i}"],
                           contact_point=provider.contact_point_url, establishment="IE")
        view, _ = services.issue(db, fr, None, order, clock=clock, console_user="fr-officer")
        references.append(view["hub_reference"])
        services.HubSender(db, _Acknowledging(), clock).send(Claim(
            i + 1, services.ORDER_KIND, "http://127.0.0.1:9/v1/orders", {"message": {"reference": view[
                "hub_reference"]}}, "k", 1, dt.datetime.now(dt.UTC)))
    answer = {"addressee": "Bastion Video Sharing Platform International Ltd", "issuing_authority": "OCLCTIC",
              "authority_file_number": "PN-1", "provider_reference": "cp-1", "received_at": dt.datetime.now(dt.UTC),
              "provider": "Bastion Video Sharing Platform International Ltd", "member_state": "IE",
              "authorised_person": "On duty", "contact_email": "cp@example.invalid",
              "signed_at": dt.datetime.now(dt.UTC)}
    key = SigningKey.from_text(SigningKey.generate().to_text())
    with db.write() as session:
        row = session.get(Provider, provider.id)
        assert row is not None
        row.public_keys = [key.public_text]
    verified = Verified(key.key_id, "n", dt.datetime.now(dt.UTC))
    services.record_answer(db, verified, Inability(order_reference=references[1], **answer,
                                                   reason=InabilityReason.INSUFFICIENT_INFORMATION,
                                                   explanation="No content at this address; " * 12), clock=clock)
    services.record_answer(db, verified, Feedback(order_reference=references[2], **answer, action="removed",
                                                  action_at=dt.datetime.now(dt.UTC)), clock=clock)
    return references


@pytest.mark.parametrize("width", [1366, 1920])
def test_the_hour_of_every_order_is_in_view_without_scrolling(settings: Settings, hub_db: Database,
                                                              width: int) -> None:
    """The list fits its page: the one-hour clock and the feedback are never hidden behind horizontal scrolling."""
    from playwright.sync_api import expect

    references = _many_orders(hub_db, settings)
    configured = replace(settings, hub_signing_key=SigningKey.generate().to_text())
    with serve(with_console(create_hub_app(configured, db=hub_db, deliver=False))) as hub, browser() as chromium:
        page = chromium.new_page(viewport={"width": width, "height": 800})
        page.goto(f"{hub}/login")
        page.get_by_label("Username").fill("fr-officer")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{hub}/console/hub/orders")
        wrap = page.locator(".table-wrap").first
        assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), "the list scrolls sideways"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        running = page.locator(f'tr[data-order="{references[0]}"] .countdown')
        expect(running).to_have_text(re.compile(r"^59:\d\d left$"))
        box = running.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
        feedback = page.locator(f'tr[data-order="{references[2]}"] .feedback')
        expect(feedback).to_contain_text("Annex II received")
        box = feedback.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, box
        expect(page.locator(f'tr[data-order="{references[0]}"] .acknowledged')).to_have_text(
            re.compile(r"^Received by the provider \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))

        page.goto(f"{hub}/console/hub/orders/{references[0]}")
        received = page.locator("#order-state td.received")
        expect(received).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))  # acknowledged: received
        expect(page.locator("#order-state")).not_to_contain_text("—")
