"""What a researcher's dashboard hides besides the small cells: the time-to-action histogram and the proactive
series add up to totals the page shows, so one hidden bin or day would come back by subtraction; the grouped charts
are the API's answers for the period, under the one pattern every grouping shares (``metrics.suppress_period``)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.core.db import Database
from bastion.testing.transparency import Scenario
from bastion.transparency import dashboard, metrics, rollups
from bastion.transparency.dashboard import Filters
from bastion.transparency.metrics import Dimension
from tests.factories.console import login

JANUARY = (dt.date(2026, 1, 1), dt.date(2026, 1, 31))
K = 10


def _written(db: Database) -> None:
    """50 blocked at upload on 5 January; 3 held and removed 30 minutes after upload on the 6th, 40 two hours after
    upload on the 7th: the histogram's bins and the series' days are 50, 3 and 40, adding up to the 93 shown."""
    scenario = Scenario()
    for i in range(50):
        scenario.block_at_upload(f"b-{i}", dt.datetime(2026, 1, 5, tzinfo=dt.UTC), category="csam")
    for i, (day, after) in enumerate([(6, 30)] * 3 + [(7, 120)] * 40):
        at = dt.datetime(2026, 1, day, 8, tzinfo=dt.UTC)
        scenario.upload(f"h-{i}", at, verdict="review", category="csam")
        scenario.review(f"h-{i}", at, at + dt.timedelta(minutes=after), reason="upload", category="csam")
    with db.write() as session:
        scenario.flush(session)
    rollups.catch_up(db)


def _chart(board: dashboard.Dashboard, name: str) -> list[tuple[str | dashboard.Value, ...]]:
    return next(c for c in board.charts if c.name == name).rows


def test_the_histogram_and_the_series_hide_a_complement_with_a_small_count(db: Database) -> None:
    _written(db)
    with db.read() as session:
        analyst = dashboard.build(session, Filters(*JANUARY), None)
        researcher = dashboard.build(session, Filters(*JANUARY), K)
    assert dict((r[0], r[1]) for r in _chart(analyst, "time_to_action")) == {
        "at upload": 50, "1 min": 0, "10 min": 0, "1 h": 3, "24 h": 40, "7 days": 0, "30 days": 0, "later": 0}
    # 3 is under k; the total 93 is shown, so 40 is hidden with it (50 + 3 + 40 = 93)
    assert dict((r[0], r[1]) for r in _chart(researcher, "time_to_action")) == {
        "at upload": 50, "1 min": 0, "10 min": 0, "1 h": None, "24 h": None, "7 days": 0, "30 days": 0, "later": 0}
    assert [r for r in _chart(analyst, "proactive") if r[2]] == [
        ("2026-01-05", 1.0, 50, 50), ("2026-01-06", 1.0, 3, 3), ("2026-01-07", 1.0, 40, 40)]
    assert [r for r in _chart(researcher, "proactive") if r[2] != 0] == [
        ("2026-01-05", 1.0, 50, 50), ("2026-01-06", None, None, None), ("2026-01-07", None, None, None)]
    with db.read() as session:
        [total] = metrics.suppress_period(rollups.cells(session, *JANUARY), K)[None]
    assert (total.actioned, total.proactive, total.upload_to_action.count) == (93, 93, 93)


def test_the_grouped_charts_are_the_researchers_answers_of_the_period(db: Database) -> None:
    _written(db)
    with db.read() as session:
        board = dashboard.build(session, Filters(*JANUARY, by=Dimension.SOURCE), K)
        answers = metrics.suppress_period(rollups.cells(session, *JANUARY), K)
    expected = [(f.group, f.actioned, f.proactive) for f in answers[Dimension.SOURCE] if f.group]
    assert [r[:3] for r in _chart(board, "actions")] == expected == [("classifier", 43, 43), ("hash_match", 50, 50)]
    assert board.categories == []  # a researcher is offered no category filter


def test_a_researcher_cannot_filter_by_category(client: TestClient, db: Database) -> None:
    _written(db)
    login(client, db, "res", Role.RESEARCHER, home="/console/transparency")
    params = {"from": "2026-01-01", "to": "2026-01-31", "category": "csam"}
    assert client.get("/console/transparency", params=params).status_code == 422
    assert client.get("/console/transparency/data/proactive.csv", params=params).status_code == 422
    assert client.get("/console/transparency", params={**params, "category": ""}).status_code == 200
