"""A curator keeps a bank in a real browser: add an entry with a note, import a CSV, search, remove."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal, create_user
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.matching import services
from bastion.web.app import create_app
from tests.factories.console import PASSWORD
from tests.factories.live import browser, needs_chromium, serve

pytestmark = needs_chromium


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    with serve(create_app(settings, db=db)) as base:
        yield base


def test_a_curator_keeps_a_bank_from_the_console(live_server: str, db: Database, admin: Principal,
                                                 tmp_path: Path) -> None:
    from playwright.sync_api import expect

    services.create_bank(db, "TERROR", actor=admin)
    create_user(db, username="cura", password=PASSWORD, role=Role.CURATOR, actor="test")
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("signal_type,value,category,note\n"
                        + "".join(f"pdq,{n:064x},terrorist_content,shared list {n}\n" for n in range(1, 4)))
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1366, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live_server}/login")
        page.get_by_label("Username").fill("cura")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live_server}/console/banks/TERROR")
        page.get_by_role("link", name="Search all entries, add, import or remove").click()
        expect(page).to_have_url(f"{live_server}/console/banks/TERROR/entries")

        page.get_by_label("Value", exact=True).fill("f" * 64)
        page.get_by_label("Category", exact=True).fill("terrorist_content")
        page.get_by_label("Note", exact=True).fill("seen in the March attack video")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.locator(".flash-ok")).to_have_text("Entry 1 added to TERROR.")
        expect(page.locator("tr[data-entry='1'] td.note")).to_have_text("seen in the March attack video")

        page.get_by_label("CSV file").set_input_files(str(csv_file))
        page.get_by_role("button", name="Import").click()
        expect(page.locator(".flash-ok")).to_contain_text("Imported 3 line(s) into TERROR: 3 added")
        expect(page.locator("tbody tr")).to_have_count(4)

        page.get_by_label("Search", exact=True).fill("shared list 2")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody td.note")).to_have_text("shared list 2")

        page.goto(f"{live_server}/console/banks/TERROR/entries")
        page.get_by_role("button", name="Remove entry 1").click()
        expect(page.locator(".flash-ok")).to_have_text("Entry 1 removed from TERROR.")
        expect(page.locator("tbody tr")).to_have_count(3)
        assert errors == [], errors
