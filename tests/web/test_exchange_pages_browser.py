"""The exchanges page in a real browser: a curator fetches now and sees the counts; an error shows on its row; a
restricted exchange is not listed for a curator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal, create_user
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.exchanges import services
from bastion.exchanges.interfaces import ExchangeKind
from bastion.matching import services as banks
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.exchanges import TE_GROUP, TE_TOKEN, FakeNcmec, FakeThreatExchange
from tests.factories.exchanges import ncmec_hashes as ncmec_hashes
from tests.factories.exchanges import threatexchange as threatexchange
from tests.factories.live import browser, needs_chromium, serve

pytestmark = needs_chromium


@pytest.fixture
def live_server(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TEST_TE_TOKEN", TE_TOKEN)
    with serve(create_app(settings, db=db)) as base:
        yield base


def test_a_curator_fetches_an_exchange_from_the_console(live_server: str, db: Database, admin: Principal,
                                                        threatexchange: FakeThreatExchange,
                                                        ncmec_hashes: FakeNcmec) -> None:
    from playwright.sync_api import expect

    banks.create_bank(db, "TERROR", actor=admin)
    banks.create_bank(db, "CSAM_NCMEC", actor=admin, restricted=True)
    for n in range(1, 4):
        threatexchange.put(n, f"{n:x}" * 64, time=1_760_000_000 + n)
    services.add_exchange(db, services.NewExchange(
        "te", ExchangeKind.THREATEXCHANGE, "TERROR",
        settings={"privacy_group": TE_GROUP, "base_url": threatexchange.url}, credentials_env="TEST_TE_TOKEN"),
        actor=admin)
    services.add_exchange(db, services.NewExchange("ncmec", ExchangeKind.NCMEC, "CSAM_NCMEC",
                                                   settings={"base_url": ncmec_hashes.url}), actor=admin)
    create_user(db, username="cura", password=PASSWORD, role=Role.CURATOR, actor="test")
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1366, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live_server}/login")
        page.get_by_label("Username").fill("cura")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Exchanges").click()
        expect(page).to_have_url(f"{live_server}/console/exchanges")
        expect(page.locator("tr[data-exchange]")).to_have_count(1)  # not the NCMEC one: child safety only
        row = page.locator("tr[data-exchange='te']")
        expect(row.locator(".last-fetch")).to_have_text("never")

        row.get_by_role("button", name="Fetch now").click()
        expect(page.locator(".flash-ok")).to_have_text("te: 3 record(s), 3 entr(ies) added, 0 removed.")
        expect(row.locator("td.entries")).to_have_text("3")
        expect(row.locator("td.records")).to_have_text("3")
        expect(row.locator("td.error")).to_have_text("—")

        threatexchange.script.fail = [500]
        row.get_by_role("button", name="Fetch now").click()
        expect(page.locator("section.card p").first).to_have_text("fb_threatexchange answered HTTP 500")
        page.goto(f"{live_server}/console/exchanges")
        expect(row.locator("td.error")).to_have_text("fb_threatexchange answered HTTP 500")
        assert TE_TOKEN not in page.content()
        assert errors == [], errors
