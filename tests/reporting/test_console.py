"""The reports console page: who sees it, CSRF on sending, states and centres' ids (in headless Chromium too)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.reporting import services
from bastion.reporting.tasks import ReportSender
from bastion.web.app import create_app
from tests.factories.console import login as _login
from tests.factories.ncmec import FakeNcmec
from tests.reporting.conftest import NOW, World, make_settings


@pytest.fixture
def app_world(db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeNcmec) -> Iterator[tuple[TestClient,
                                                                                                        World]]:
    settings = make_settings(database_url, fake_ncmec.url, outbox_interval_seconds=0.05)
    clock = FrozenClock(NOW)
    with TestClient(create_app(settings, db=db, clock=clock)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        yield client, World(state.moderation, state.reporting, clock, tmp_path, ReportSender(state.reporting))




def test_specialists_send_drafts_from_the_console_with_csrf(
        app_world: tuple[TestClient, World], db: Database, fake_ncmec: FakeNcmec) -> None:
    client, world = app_world
    world.known("k-1", "acct-a", seed=1)
    csrf = _login(client, db, "cs", Role.CHILD_SAFETY)
    page = client.get("/console/reports")
    assert page.status_code == 200 and "No reports." in page.text and 'href="/console/reports"' in page.text
    assert client.post("/console/reports/draft", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/console/reports/draft", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    with db.read() as session:
        (report,) = services.list_reports(session)
    assert f'data-report="{report.id}"' in client.get("/console/reports").text
    assert client.post(f"/console/reports/{report.id}/revise",
                       data={"csrf_token": "x", "class:k-1": "B1"}).status_code == 403
    saved = client.post(f"/console/reports/{report.id}/revise",
                        data={"csrf_token": csrf, "class:k-1": "B1", "urgent_reason": "live abuse"})
    assert saved.status_code == 200 and '<option value="B1" selected>' in saved.text
    bad = client.post(f"/console/reports/{report.id}/revise", data={"csrf_token": csrf, "class:k-1": "Z9"})
    assert "a classification is A1, A2, B1 or B2" in bad.text
    with db.read() as session:
        view = services.report_view(session, services.get_report(session, report.id))
    assert view["urgent_reason"] == "live abuse" and view["files"][0]["classification"] == "B1"
    assert client.post(f"/console/reports/{report.id}/send", data={"csrf_token": "x"}).status_code == 403
    with db.read() as session:
        assert services.get_report(session, report.id).state == "draft"
    r = client.post(f"/console/reports/{report.id}/send", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    deadline = time.monotonic() + 10  # the app's outbox delivers; not a speed check
    while not fake_ncmec.reports and time.monotonic() < deadline:
        time.sleep(0.05)
    while "finished" not in client.get("/console/reports").text and time.monotonic() < deadline:
        time.sleep(0.05)
    ((ncmec_id, _),) = fake_ncmec.reports.items()
    text = client.get("/console/reports").text
    assert f"finished · {ncmec_id}" in text


def test_moderators_may_not_open_the_reports_page(app_world: tuple[TestClient, World], db: Database) -> None:
    client, _ = app_world
    _login(client, db, "mo", Role.MODERATOR)
    assert client.get("/console/reports").status_code == 403
    assert 'href="/console/reports"' not in client.get("/console/queues").text


def _statements(db: Database) -> Iterator[list[str]]:
    """Every statement the database runs while the context is open."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _page_statements(client: TestClient, db: Database) -> int:
    with contextlib.contextmanager(_statements)(db) as seen:
        page = client.get("/console/reports")
    assert page.status_code == 200
    return len([s for s in seen if "report" in s])


def test_the_reports_page_reads_its_list_in_the_same_statements_however_many_reports(
        app_world: tuple[TestClient, World], db: Database) -> None:
    client, world = app_world
    _login(client, db, "cs", Role.CHILD_SAFETY)
    world.known("k-1", "acct-a", seed=1)
    services.draft_pending(world.rep)
    one = _page_statements(client, db)
    for n in range(2, 6):
        world.known(f"k-{n}", f"acct-{n}", seed=n)
        world.confirmed(f"c-{n}", f"acct-{n}", seed=10 + n)  # a second file in the same report
    services.draft_pending(world.rep)
    with db.read() as session:
        assert len(services.list_reports(session)) == 5
    assert _page_statements(client, db) == one <= 4  # the reports, their files, repeats and deliveries
