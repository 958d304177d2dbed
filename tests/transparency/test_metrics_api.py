"""``GET /v1/transparency/metrics`` over real HTTP: analysts see every cell, researchers small cells suppressed,
other roles nothing; bad periods refused; every query audited."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.audit.models import AuditEntry
from bastion.core.auth.roles import Role
from bastion.core.db import Database
from bastion.testing.transparency import Scenario
from bastion.transparency import rollups
from tests.transparency.test_metrics import briefing

Header = Callable[[Role], dict[str, str]]
JANUARY = {"from": "2026-01-01", "to": "2026-01-31"}


def _scenario(db: Database) -> None:
    scenario = Scenario()
    briefing(scenario, clean=100)
    with db.write() as session:
        scenario.flush(session)
    rollups.catch_up(db)


def test_analysts_see_every_figure_researchers_aggregates(client: TestClient, db: Database,
                                                          auth_header: Header) -> None:
    _scenario(db)
    answer = client.get("/v1/transparency/metrics", params=JANUARY, headers=auth_header(Role.ANALYST))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["from"], body["to"], body["by"], body["suppressed_below"]) == ("2026-01-01", "2026-01-31", None, None)
    [all_of_it] = body["groups"]
    assert (all_of_it["uploads"], all_of_it["actioned"], all_of_it["proactive"]) == (1100, 1000, 971)
    assert (all_of_it["notices_trusted"], all_of_it["appeals_reversed"]) == (9, 2)
    assert all_of_it["upload_to_action"]["p99_s"] == 30 * 3600
    assert body["counted_up_to"]["moderation_events"] > 0

    answer = client.get("/v1/transparency/metrics", params=JANUARY, headers=auth_header(Role.RESEARCHER))
    assert answer.status_code == 200
    assert answer.json()["suppressed_below"] == 10
    [seen] = answer.json()["groups"]
    assert (seen["uploads"], seen["actioned"], seen["proactive_share"]) == (1100, 1000, 0.971)
    assert (seen["notices_trusted"], seen["appeals_reversed"], seen["automated_error_rate"]) == (None, None, None)
    assert seen["appeal_to_decision"] == {"count": None, "median_s": None, "p90_s": None, "p99_s": None,
                                          "within_1h": None, "within_24h": None}
    assert seen["suspensions"] == {"suspend_permanently": None, "suspend_temporarily": None}

    by_source = client.get("/v1/transparency/metrics", params={**JANUARY, "by": "source"},
                           headers=auth_header(Role.RESEARCHER)).json()["groups"]
    assert {g["group"]: g["actioned"] for g in by_source}["trusted_flagger"] is None  # 9 < 10
    assert {g["group"]: g["actioned"] for g in by_source}["hash_match"] == 900

    with db.read() as session:
        asked = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "transparency.queried")
                                     .order_by(AuditEntry.id)))
    assert [(e.details["role"], e.details["by"], e.details["suppressed_below"]) for e in asked] == [
        ("analyst", None, None), ("researcher", None, 10), ("researcher", "source", 10)]


def test_a_researcher_reads_one_closed_calendar_month_at_a_time(client: TestClient, db: Database,
                                                                auth_header: Header) -> None:
    """Two answers whose periods overlap (a few days apart, or a month and the two months holding it), or one month
    asked before and after more of its events are counted, would give away small counts by subtraction. So a
    researcher gets one calendar month, once it is over and counted; an analyst any period."""
    researcher, analyst = auth_header(Role.RESEARCHER), auth_header(Role.ANALYST)
    today = dt.datetime.now(dt.UTC).date()
    this_month = {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}
    for params in ({"from": "2026-01-01", "to": "2026-01-30"}, {"from": "2026-01-02", "to": "2026-01-31"},
                   {"from": "2026-01-15", "to": "2026-02-14"}, {"from": "2026-01-01", "to": "2026-02-28"},
                   {"from": "2026-01-01", "to": "2026-12-31"}, this_month):
        refused = client.get("/v1/transparency/metrics", params=params, headers=researcher)
        assert refused.status_code == 422 and "one calendar month" in refused.json()["detail"], params
        assert client.get("/v1/transparency/metrics", params=params, headers=analyst).status_code == 200
    *_, last_day = calendar.monthrange(today.year, today.month)
    whole_this_month = {**this_month, "to": today.replace(day=last_day).isoformat()}
    refused = client.get("/v1/transparency/metrics", params=whole_this_month, headers=researcher)
    assert refused.status_code == 422 and "once it is over" in refused.json()["detail"]

    scenario = Scenario()  # a February event the worker has not counted yet: February is not closed
    scenario.upload("late-1", dt.datetime(2026, 2, 27, 12, tzinfo=dt.UTC))
    with db.write() as session:
        scenario.flush(session)
    february = {"from": "2026-02-01", "to": "2026-02-28"}
    refused = client.get("/v1/transparency/metrics", params=february, headers=researcher)
    assert refused.status_code == 422 and "every event of it is counted" in refused.json()["detail"]
    for params in (JANUARY, {"from": "2024-02-01", "to": "2024-02-29"}):  # closed: nothing of them waits
        assert client.get("/v1/transparency/metrics", params=params, headers=researcher).status_code == 200
    rollups.catch_up(db)
    answer = client.get("/v1/transparency/metrics", params=february, headers=researcher)
    assert answer.status_code == 200 and answer.json()["groups"][0]["uploads"] is None  # 1 upload: under k


def test_other_roles_and_bad_periods_are_refused(client: TestClient, auth_header: Header) -> None:
    for role in (Role.PLATFORM, Role.MODERATOR, Role.AUTHORITY):
        assert client.get("/v1/transparency/metrics", params=JANUARY, headers=auth_header(role)).status_code == 403
    assert client.get("/v1/transparency/metrics", params=JANUARY).status_code == 401
    for params in ({"from": "2026-02-01", "to": "2026-01-01"}, {"from": "2026-13-01", "to": "2027-01-01"},
                   {"from": "2000-01-01", "to": "2026-01-01"}, {**JANUARY, "by": "colour"}, {"to": "2026-01-01"}):
        answer = client.get("/v1/transparency/metrics", params=params, headers=auth_header(Role.ANALYST))
        assert answer.status_code == 422, params
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_an_upload_and_a_notice_through_the_platform_api_are_counted(client: TestClient, db: Database,
                                                                     auth_header: Header) -> None:
    """The real path: the platform's upload (with its new ``language`` field) and notice, counted by the worker."""
    p = auth_header(Role.PLATFORM)
    form = {"content_id": "post-1", "account_id": "acct-1", "account_age": "27", "account_country": "FR",
            "content_type": "text", "text": "bonjour tout le monde", "language": "FR"}
    assert client.post("/v1/content", data=form, headers=p).status_code == 200, "upload refused"
    assert client.post("/v1/content", data={**form, "content_id": "post-2", "language": "f1"},
                       headers=p).status_code == 422
    notice = client.post("/v1/notices", json={"content_id": "post-1", "category": "hate_speech", "explanation": "x",
                                              "notifier": "user-9", "trusted_flagger": True}, headers=p)
    assert notice.status_code == 201
    rollups.catch_up(db)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    groups = client.get("/v1/transparency/metrics", params={"from": today, "to": today, "by": "language"},
                        headers=auth_header(Role.ANALYST)).json()["groups"]
    assert [(g["group"], g["uploads"], g["notices"], g["notices_trusted"]) for g in groups] == [("fr", 1, 1, 1)]
