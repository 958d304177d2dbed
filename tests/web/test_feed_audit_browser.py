"""The feed audit report in a real browser at 1366x800: an analyst opens a stored run in the console and reads the
summary, one chart per persona (drawn as inline SVG under the console's Content-Security-Policy) and the comparison
with an earlier run; a moderator is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_user
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.feed.audit import catalogue, runner, store
from bastion.feed.audit.personas import AMNESTY
from bastion.feed.audit.recommender import ReferenceRecommender
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve

pytestmark = needs_chromium


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    with serve(create_app(settings, db=db)) as base:
        yield base


def _store(db: Database, seed: int, compared_to: int | None = None) -> int:
    settings = runner.AuditSettings("amnesty", AMNESTY, 4, seed, 300, bucket_minutes=1, compared_to=compared_to)
    results = runner.run(settings, ReferenceRecommender(catalogue.build(seed, 300), seed), None)
    now = dt.datetime.now(dt.UTC)
    return store.save(db, settings=settings.to_json(), results=results, started_at=now, finished_at=now,
                      created_by="test").id


def _login(page: object, base: str, username: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]


def test_an_analyst_reads_the_audit_report(live_server: str, db: Database) -> None:
    from playwright.sync_api import expect

    earlier = _store(db, 4)
    run_id = _store(db, 5, compared_to=earlier)
    create_user(db, username="ana", password=PASSWORD, role=Role.ANALYST, actor="test")
    create_user(db, username="mod", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1366, "height": 800})
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)  # CSP refusals land here
        _login(page, live_server, "ana")
        page.get_by_role("link", name="Feed audits").click()
        expect(page.locator("table.audit-runs tbody tr")).to_have_count(2)
        expect(page.locator(f"tr[data-run='{run_id}']")).to_contain_text(f"#{earlier}")
        page.get_by_role("link", name=f"#{run_id}", exact=True).click()
        expect(page).to_have_url(f"{live_server}/console/feed/audits/{run_id}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(f"Feed audit #{run_id}: amnesty")
        rows = page.locator("table.audit-summary tbody tr")
        expect(rows).to_have_count(3)
        teen = page.locator("tr[data-persona='teen-13-lingers'][data-condition='without_gate']")
        first = store.get(db, run_id).results["personas"][0]["conditions"]["without_gate"]["first_harmful_minute"]
        expect(teen.locator(".first-harmful")).to_have_text("never" if first is None else f"{first:.1f} min")
        charts = page.get_by_role("img", name="Share of harmful and borderline items over time", exact=False)
        expect(charts).to_have_count(3)
        assert page.locator("#persona-teen-13-lingers polyline[data-series='harmful-without_gate']").count() == 1
        box = page.locator("#persona-teen-13-lingers svg").bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 150  # drawn, not an empty box
        expect(page.get_by_role("heading", name=f"Compared with run {earlier}")).to_be_visible()
        expect(page.locator("table.audit-compare tbody tr").first).to_contain_text("teen-13-lingers")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        assert problems == [], problems

        other = chromium.new_page(viewport={"width": 1366, "height": 800})
        _login(other, live_server, "mod")
        response = other.goto(f"{live_server}/console/feed/audits/{run_id}")
        assert response is not None and response.status == 403
        expect(other.locator("svg.audit-chart")).to_have_count(0)
        expect(other.get_by_role("link", name="Feed audits")).to_have_count(0)
        missing = page.goto(f"{live_server}/console/feed/audits/999999")
        assert missing is not None and missing.status == 404
