"""The minors page in a real browser at 1366x800: the rules in plain words, "what can A do to B?", grooming cases
for child-safety specialists only, family links read-only for moderators."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_token, create_user
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.minors import ages, family, interactions
from bastion.minors.interfaces import Action, AgeBasis, Audience
from bastion.minors.models import MinorEvent
from bastion.minors.rules import DEFAULT_RULES_PATH, RulesFile
from bastion.minors.services import Minors
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve

pytestmark = needs_chromium


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    with serve(create_app(settings, db=db)) as base:
        yield base


def _seed(db: Database) -> None:
    m = Minors(db, SystemClock(), RulesFile(DEFAULT_RULES_PATH))
    for account, years in (("adult1", 35.0), ("teen1", 14.0), ("mum", 44.0), ("teen2", 16.0)):
        ages.record_age(m, account, ages.Age(AgeBasis.DECLARED, years), actor="test")
    _link, code = family.offer(m, "mum", actor="test")
    link = family.confirm(m, code, "teen2", actor="test")
    family.set_limits(m, link.id, "mum", family.Limits(dm=Audience.NOBODY), actor="test",
                      defaults=m.rules.defaults_for(ages.Band.B16_17))
    interactions.check_all(m, [interactions.Check(interactions.AccountRef("adult1"), Action.DM,
                                                  interactions.AccountRef(f"kid{i}", 13)) for i in range(5)],
                           actor="test")
    interactions.watch_grooming(m)  # the grooming case, raised now rather than by the server's worker


def _login(page: object, base: str, username: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]


def test_a_moderator_reads_the_rules_and_asks_what_a_can_do_to_b(live_server: str, db: Database) -> None:
    from playwright.sync_api import expect

    _seed(db)
    create_user(db, username="mod", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with db.read() as session:
        events_before = session.query(MinorEvent).count()
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1366, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _login(page, live_server, "mod")
        page.get_by_role("link", name="Minors").click()
        expect(page).to_have_url(f"{live_server}/console/minors")
        floor = page.locator("tr[data-rule='floor-adult-dm-unconnected-under-16']")
        expect(floor).to_contain_text("Adults cannot message accounts under 16")
        expect(floor).to_contain_text("they do not follow each other")
        expect(floor.locator(".badge")).to_have_text("floor")
        expect(page.locator("tr[data-rule='adult-mentions-minor'] .badge")).to_have_text("shadow")

        page.get_by_label("Account A", exact=True).fill("adult1")
        page.get_by_label("Account B", exact=True).fill("teen1")
        page.get_by_role("button", name="Ask").click()
        expect(page.locator(".band-a")).to_have_text("18_plus")
        expect(page.locator(".band-b")).to_have_text("13_15")
        dm = page.locator("tr[data-action='dm']")
        expect(dm.locator(".outcome")).to_have_text("deny")
        expect(dm).to_contain_text("floor-adult-dm-unconnected-under-16")
        expect(page.locator("tr[data-action='follow'] .outcome")).to_have_text("allow")
        expect(page.locator("tr[data-action='live'] .outcome")).to_have_text("allow")  # A alone: an adult

        # the parent's limit shows in the answer about the linked teen, between friends too
        page.get_by_label("Account B", exact=True).fill("teen2")
        page.get_by_label("A follows B").check()
        page.get_by_label("B follows A").check()
        page.get_by_role("button", name="Ask").click()
        expect(page.locator("tr[data-action='dm']")).to_contain_text("family-dm-nobody")

        page.goto(f"{live_server}/console/minors?a=adult1&b=teen2&a_age=-3")  # past the browser's own check
        expect(page.locator(".flash-error")).to_have_text("An age is between 0 and 130 years.")

        links = page.locator("tr[data-link]")
        expect(links).to_have_count(1)
        expect(links).to_contain_text("dm: nobody")
        expect(page.get_by_role("heading", name="Cases")).to_have_count(0)  # grooming cases: specialists only
        expect(page.get_by_role("button", name="Unlink")).to_have_count(0)  # read-only
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        assert errors == [], errors
    with db.read() as session:
        assert session.query(MinorEvent).count() == events_before  # asking records nothing


def test_a_child_safety_specialist_sees_the_grooming_case(live_server: str, db: Database) -> None:
    from playwright.sync_api import expect

    _seed(db)
    create_user(db, username="cs", password=PASSWORD, role=Role.CHILD_SAFETY, actor="test")
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1366, "height": 800})
        _login(page, live_server, "cs")
        page.goto(f"{live_server}/console/minors")
        case = page.locator("tr[data-case]").filter(has_text="adult1")
        expect(case).to_contain_text("grooming")
        expect(case).to_contain_text("5 denied attempts to reach minors in 24 h")
        expect(case.locator("td.num")).to_have_text("5")


def test_a_confirmed_grooming_case_links_to_the_ncmec_report_it_drafted(live_server: str, db: Database) -> None:
    import httpx
    from playwright.sync_api import expect

    _seed(db)
    create_user(db, username="cs", password=PASSWORD, role=Role.CHILD_SAFETY, actor="test")
    token = create_token(db, role=Role.CHILD_SAFETY, name="cs", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    (case,) = httpx.get(f"{live_server}/v1/minors/cases?kind=grooming", headers=headers).json()
    decided = httpx.post(f"{live_server}/v1/minors/cases/{case['id']}/decision", headers=headers,
                         json={"confirmed": True, "note": "five attempts at 13-year-olds"})
    assert decided.status_code == 200, decided.text
    report_id = decided.json()["detail"]["report_id"]
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1366, "height": 800})
        _login(page, live_server, "cs")
        page.goto(f"{live_server}/console/minors")
        row = page.locator(f"tr[data-case='{case['id']}']")
        expect(row.locator("td.case-state")).to_contain_text("confirmed")
        link = row.get_by_role("link", name=f"NCMEC report {report_id[:8]}")
        expect(link).to_have_attribute("href", f"/console/reports#report-{report_id}")
        link.click()
        page.wait_for_url(f"{live_server}/console/reports#report-{report_id}")
        expect(page.locator(f"tr#report-{report_id}")).to_contain_text("adult1")
    # a moderator reads the minors page but no case, so no link to a report either
    mod_page = _moderator_minors_page(live_server, db)
    assert "case-report" not in mod_page and report_id not in mod_page


def _moderator_minors_page(base: str, db: Database) -> str:
    create_user(db, username="mod2", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with browser() as chromium:
        page = chromium.new_page()
        _login(page, base, "mod2")
        page.goto(f"{base}/console/minors")
        html: str = page.content()
        return html
