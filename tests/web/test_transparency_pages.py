"""The transparency dashboard over real HTTP: analysts see every figure, researchers land on it and see small
cells suppressed, other roles are refused; each chart's CSV is exactly what the chart draws; every view and download
is audited."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.audit.models import AuditEntry
from bastion.core.auth.roles import Role
from bastion.core.db import Database
from bastion.moderation.events import EventKind
from bastion.moderation.models import ModerationEvent
from bastion.testing.transparency import Scenario
from bastion.transparency import dashboard, metrics, rollups
from bastion.transparency.metrics import Dimension
from tests.factories.console import login
from tests.transparency.test_metrics import briefing

JANUARY = {"from": "2026-01-01", "to": "2026-01-31"}
BAR = re.compile(r'<g class="bar" data-label="([^"]*)" data-value="([^"]*)">')


def scenario(db: Database) -> None:
    written = Scenario()
    briefing(written, clean=100)
    with db.write() as session:
        written.flush(session)
    rollups.catch_up(db)


def drawn(page: str, chart: str) -> list[tuple[str, str]]:
    """The (label, value) of every bar the chart's SVG draws."""
    section = page.split(f'data-chart="{chart}"', 1)[1].split("</section>", 1)[0]
    return [(html.unescape(label), value) for label, value in BAR.findall(section)]


def csv_rows(client: TestClient, chart: str, params: dict[str, str]) -> list[list[str]]:
    answer = client.get(f"/console/transparency/data/{chart}.csv", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    return list(csv.reader(io.StringIO(answer.text)))


def test_an_analyst_sees_every_chart_and_each_csv_is_what_it_draws(client: TestClient, db: Database) -> None:
    scenario(db)
    login(client, db, "ana", Role.ANALYST, home="/console/queues")
    params = {**JANUARY, "by": "source"}
    page = client.get("/console/transparency", params=params)
    assert page.status_code == 200, page.text
    assert 'href="/console/transparency" aria-current="page"' in page.text
    with db.read() as session:
        board = dashboard.build(session, dashboard.Filters(dt.date(2026, 1, 1), dt.date(2026, 1, 31),
                                                           Dimension.SOURCE), None)
    for chart in dashboard.CHARTS:
        rows = csv_rows(client, chart, params)
        built = next(c for c in board.charts if c.name == chart)
        assert rows[0] == list(built.columns)
        assert [(r[0], r[built.bar]) for r in rows[1:]] == drawn(page.text, chart), chart  # label, drawn value
    assert drawn(page.text, "time_to_action")[:5] == [("at upload", "900"), ("1 min", "0"), ("10 min", "0"),
                                                      ("1 h", "0"), ("24 h", "81")]
    assert dict(drawn(page.text, "actions")) == {"classifier": "71", "hash_match": "900", "trusted_flagger": "9",
                                                 "user_notice": "20"}
    assert drawn(page.text, "orders") == [("executed within 1 h", "1"), ("executed later", "0"),
                                          ("not executed (Annex III)", "1")]
    assert drawn(page.text, "appeals") == [("filed", "5"), ("upheld", "3"), ("partly reversed", "0"),
                                           ("reversed", "2")]
    proactive = csv_rows(client, "proactive", params)
    assert proactive[0] == ["day", "proactive share", "actions", "proactive"]
    assert sum(int(r[2]) for r in proactive[1:]) == 1000 and sum(int(r[3]) for r in proactive[1:]) == 971
    assert dict((r[0], r[1]) for r in csv_rows(client, "countries", params)[1:])["DE"] == "1000"

    filtered = client.get("/console/transparency", params={**JANUARY, "category": "terrorist_content"})
    assert drawn(filtered.text, "actions") == [] and drawn(filtered.text, "orders")[0] == ("executed within 1 h", "1")
    assert ('href="/console/transparency/data/orders.csv?from=2026-01-01&amp;to=2026-01-31&amp;by=category&amp;'
            'category=terrorist_content"') in filtered.text
    odd = client.get("/console/transparency", params={**JANUARY, "category": "x&by=path"})
    assert odd.status_code == 200 and "category=x%26by%3Dpath" in odd.text and "Actions by category" in odd.text


def test_an_unreadable_event_is_counted_in_no_figure_and_the_page_and_status_say_so(
        client: TestClient, db: Database, auth_header: Callable[[Role], dict[str, str]]) -> None:
    scenario(db)
    login(client, db, "ana", Role.ANALYST)
    before = client.get("/console/transparency", params=JANUARY).text
    assert 'id="quarantined"' not in before
    with db.write() as session:  # an empty payload: the worker skips it and counts on
        session.add(ModerationEvent(subject="content:held-0", kind=EventKind.ACTIONS_APPLIED.value, actor="system",
                                    at=dt.datetime(2026, 1, 9, tzinfo=dt.UTC), data={}, external_id=None))
    rollups.catch_up(db)
    page = client.get("/console/transparency", params=JANUARY).text
    assert "1 event could not be read" in page
    assert drawn(page, "countries") == drawn(before, "countries") and drawn(page, "appeals") == drawn(before, "appeals")
    assert "transparency_rollups" not in client.get("/status").json()  # details are for admins
    status = client.get("/status", headers=auth_header(Role.ADMIN)).json()
    assert status["transparency_rollups"]["quarantined"] == {"moderation_events": 1}
    assert status["transparency_rollups"]["counted_up_to"]["moderation_events"] > 0


def test_a_researcher_lands_on_the_dashboard_and_sees_small_cells_suppressed(client: TestClient,
                                                                            db: Database) -> None:
    scenario(db)
    login(client, db, "res", Role.RESEARCHER, home="/console/transparency")
    params = {**JANUARY, "by": "source"}
    page = client.get("/console/transparency", params=params)
    assert page.status_code == 200
    # 9 is under k, and 20 is hidden with it: the column adds up to a total, so a lone hidden count could be
    # worked out by subtraction
    assert dict(drawn(page.text, "actions")) == {"classifier": "71", "hash_match": "900", "trusted_flagger": "",
                                                 "user_notice": ""}
    assert "&lt;10" in page.text
    assert drawn(page.text, "appeals") == [("filed", ""), ("upheld", ""), ("partly reversed", "0"), ("reversed", "")]
    assert csv_rows(client, "appeals", params)[1:] == [["filed", ""], ["upheld", ""], ["partly reversed", "0"],
                                                       ["reversed", ""]]
    # aggregates only: no link to a case, an account or content; the menu holds the dashboard alone
    links = re.findall(r'href="([^"]+)"', page.text)
    assert [a for a in links if a.startswith("/console/") and "/console/transparency" not in a] == []
    assert client.get("/console/queues").status_code == 403

    with db.read() as session:
        asked = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "transparency.queried")
                                     .order_by(AuditEntry.id)))
    assert [(e.actor, e.subject, e.details["role"], e.details["suppressed_below"], e.details["by"]) for e in asked] == [
        ("user:res", "dashboard", "researcher", 10, "category"),  # the landing page
        ("user:res", "dashboard", "researcher", 10, "source"),
        ("user:res", "dashboard:appeals.csv", "researcher", 10, "source")]


def test_a_researchers_dashboard_shows_one_closed_month(client: TestClient, db: Database) -> None:
    """Whatever period is asked, a researcher's dashboard shows the month of its last day, or the latest closed
    month before it while that one is still running or being counted, and says so."""
    scenario(db)
    login(client, db, "res", Role.RESEARCHER, home="/console/transparency")
    today = dt.datetime.now(dt.UTC).date()
    last_month_end = today.replace(day=1) - dt.timedelta(days=1)
    shown = {"from": "2026-01-15", "to": "2026-02-10"}, {}, {"from": today.replace(day=1).isoformat(),
                                                             "to": today.isoformat()}
    expected = ("2026-02-01", "2026-02-28"), *[(last_month_end.replace(day=1).isoformat(),
                                               last_month_end.isoformat())] * 2
    for params, (first, last) in zip(shown, expected, strict=True):
        page = client.get("/console/transparency", params=params)
        assert page.status_code == 200
        assert f"Figures from the roll-ups for {first} to {last}" in page.text, params
        assert 'id="one-month"' in page.text
    late = Scenario()  # last month gets an event the worker has not counted: the month before it is shown
    late.upload("late-1", dt.datetime.combine(last_month_end, dt.time(12), tzinfo=dt.UTC))
    with db.write() as session:
        late.flush(session)
    before = last_month_end.replace(day=1) - dt.timedelta(days=1)
    assert (f"Figures from the roll-ups for {before.replace(day=1).isoformat()} to {before.isoformat()}"
            in client.get("/console/transparency").text)


def test_a_researcher_is_told_to_wait_while_the_counting_is_months_behind(client: TestClient, db: Database) -> None:
    """An event dated over three months back that the worker has not counted: no month since is closed, so the page
    says to come back rather than show one that could still change."""
    login(client, db, "res", Role.RESEARCHER, home="/console/transparency")
    behind = Scenario()
    behind.upload("old-1", dt.datetime.now(dt.UTC) - dt.timedelta(days=100))
    with db.write() as session:
        behind.flush(session)
    page = client.get("/console/transparency")
    assert page.status_code == 503 and "try again in a few minutes" in page.text
    rollups.catch_up(db)
    assert client.get("/console/transparency").status_code == 200


def test_other_roles_and_bad_filters_are_refused(client: TestClient, db: Database) -> None:
    login(client, db, "mod", Role.MODERATOR)
    assert client.get("/console/transparency").status_code == 403
    assert client.get("/console/transparency/data/orders.csv").status_code == 403
    assert "Transparency</a>" not in client.get("/console/queues").text
    client.cookies.clear()
    login(client, db, "ana", Role.ANALYST)
    today = client.get("/console/transparency")
    assert today.status_code == 200 and "Nothing counted in this period." in today.text
    for params in ({"from": "2026-02-01", "to": "2026-01-01"}, {"from": "2026-13-01"}, {"by": "colour"},
                   {"from": "2000-01-01", "to": "2026-01-01"}, {"to": "0001-01-01"}):
        assert client.get("/console/transparency", params=params).status_code == 422, params
    assert client.get("/console/transparency/data/secrets.csv").status_code == 404
    with db.read() as session:
        assert session.scalar(select(AuditEntry).where(AuditEntry.subject.like("dashboard%"))
                              .order_by(AuditEntry.id.desc())).details["from"] == (
            dt.date.today() - dt.timedelta(days=29)).isoformat()


def test_the_daily_series_agrees_with_a_plain_count_of_the_events(db: Database) -> None:
    scenario(db)
    start, end = dt.date(2026, 1, 1), dt.date(2026, 1, 31)
    with db.read() as session:
        direct = metrics.direct_cells(session, start, end)
        series = rollups.daily_actions(session, start, end)
    expected: dict[tuple[dt.date, str], tuple[int, int]] = {}
    for cell, tally in direct.items():
        if cell.metric == "action":
            a, p = expected.get((cell.day, cell.category), (0, 0))
            expected[cell.day, cell.category] = (a + tally.count, p + (tally.count if cell.proactive else 0))
    assert series == expected and len(series) >= 2
