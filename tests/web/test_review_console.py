"""Review in the console over HTTP: queues, case pages, blurred media, decisions, escalation, curation, settings."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from bastion.core.audit.models import AuditEntry
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.matching.models import BankEntry
from bastion.moderation.models import ContentItem, MediaPreview, StatementOfReasons
from bastion.web.app import create_app
from tests.factories.console import login
from tests.factories.media import make_image
from tests.moderation.test_flow import _bank, _flip, _pdq, _upload

Header = Callable[[Role], dict[str, str]]


@pytest.fixture
def app_client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db)) as c:
        yield c


def _client(settings: Settings, db: Database) -> TestClient:
    """A second browser: its own cookies, the same server."""
    return TestClient(create_app(settings, db=db))




def _held_upload(client: TestClient, h: Header, tmp_path: Path, content_id: str = "up-1", seed: int = 31,
                 **form: str) -> tuple[dict[str, Any], Path]:
    """An image 16 bits from a banked terrorist image: the policy holds it for review (terror-known-near)."""
    known = make_image(tmp_path / f"known-{seed}.jpg", seed=seed, size=(640, 480))
    _bank(client, h, "TERRORIST_CONTENT", _flip(_pdq(known), 16), "terrorist_content")
    client.app.state.matcher.refresh()  # type: ignore[attr-defined]
    result = _upload(client, h, known, content_id, **form)
    assert result["verdict"] == "review", result
    return result, known


def _claim(client: TestClient, csrf: str, queue: str) -> httpx.Response:
    return client.post(f"/console/queues/{queue}/claim", data={"csrf_token": csrf}, follow_redirects=False)


def _flash(client: TestClient, response: httpx.Response) -> str:
    page = client.get(response.headers["location"]).text
    found = re.search(r'class="flash flash-\w+"[^>]*>([^<]*)<', page)
    return found.group(1) if found else ""


def test_a_moderator_takes_a_case_sees_it_blurred_and_removes_it(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    queues = app_client.get("/console/queues").text
    row = re.search(r'<tr data-queue="terrorism">(.*?)</tr>', queues, re.S)
    assert row and re.search(r'class="num open">1<', row.group(1))

    r = _claim(app_client, csrf, "terrorism")
    assert r.headers["location"] == f"/console/cases/{held['case_id']}"
    page = app_client.get(r.headers["location"]).text
    assert "terror-known-near" in page and "TERRORIST_CONTENT" in page
    assert re.search(r'class="num distance">16<', page)
    assert f'src="/console/cases/{held["case_id"]}/media?view=blurred"' in page
    assert 'data-key="x"' in page and "Submit and take the next case" in page

    blurred = app_client.get(f"/console/cases/{held['case_id']}/media?view=blurred")
    clear = app_client.get(f"/console/cases/{held['case_id']}/media?view=clear")
    assert blurred.headers["content-type"] == clear.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(blurred.content)) as b, Image.open(io.BytesIO(clear.content)) as c:
        assert b.mode == "L" and c.mode == "RGB"  # grey and blurred by the server, not only by CSS
        assert b.size == c.size
    with db.read() as session:
        stored = session.get(MediaPreview, "up-1")
        assert stored is not None and b"JFIF" not in stored.sealed and clear.content not in stored.sealed

    r = app_client.post(f"/console/cases/{held['case_id']}/decision", follow_redirects=False,
                        data={"csrf_token": csrf, "quick": "remove", "queue": "terrorism", "next": "1",
                              "category": "terrorist_content", "actions": ["strike"]})
    assert r.status_code == 303 and r.headers["location"] == "/console/queues"
    told = _flash(app_client, r)
    assert "the content is now removed" in told and "No case is waiting in terrorism" in told
    with db.read() as session:
        item = session.get(ContentItem, "up-1")
        assert item is not None and item.status == "removed"
    content = app_client.get("/v1/content/up-1", headers=auth_header(Role.MODERATOR)).json()
    actions = [e["data"]["actions"] for e in content["events"] if e["kind"] == "content.actions_applied"]
    assert [sorted(a) for a in actions] == [["remove", "strike"]]


def test_submit_and_next_goes_to_the_next_case(app_client: TestClient, auth_header: Header, db: Database,
                                               tmp_path: Path) -> None:
    first, known = _held_upload(app_client, auth_header, tmp_path)
    second = _upload(app_client, auth_header, known, "up-2")
    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    r = _claim(app_client, csrf, "terrorism")
    case_id = int(r.headers["location"].rsplit("/", 1)[1])
    r = app_client.post(f"/console/cases/{case_id}/decision", follow_redirects=False,
                        data={"csrf_token": csrf, "quick": "clear", "queue": "terrorism", "next": "1"})
    other = second["case_id"] if case_id == first["case_id"] else first["case_id"]
    assert r.headers["location"] == f"/console/cases/{other}"
    assert f"Case {case_id} decided: the content is now published." in _flash(app_client, r)


def test_bad_decisions_change_nothing(app_client: TestClient, auth_header: Header, db: Database,
                                      tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    _claim(app_client, csrf, "terrorism")
    url = f"/console/cases/{held['case_id']}/decision"
    for data, message in (({"csrf_token": csrf}, "Choose an outcome."),
                          ({"csrf_token": csrf, "outcome": "violation"}, "a violation needs at least one action"),
                          ({"csrf_token": csrf, "outcome": "violation", "actions": ["remove"],
                            "territories": "Germany"}, "Territories are two-letter country codes"),
                          ({"csrf_token": csrf, "outcome": "violation", "actions": ["explode"]},
                           "Unknown action or category.")):
        r = app_client.post(url, data=data, follow_redirects=False)
        assert r.headers["location"] == f"/console/cases/{held['case_id']}"
        assert message in _flash(app_client, r)
    assert app_client.post(url, data={"outcome": "no_violation"}).status_code == 403  # no CSRF token
    with db.read() as session:
        item = session.get(ContentItem, "up-1")
        assert item is not None and item.status == "held"


def test_escalated_cases_go_to_senior_moderators_only(
        app_client: TestClient, settings: Settings, auth_header: Header, db: Database, tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    _claim(app_client, csrf, "terrorism")
    url = f"/console/cases/{held['case_id']}/escalate"
    r = app_client.post(url, data={"csrf_token": csrf, "note": "  "}, follow_redirects=False)
    assert "say why" in _flash(app_client, r)
    r = app_client.post(url, data={"csrf_token": csrf, "note": "Possibly news reporting"}, follow_redirects=False)
    assert r.headers["location"] == "/console/queues"
    assert re.search(r'class="num escalated">1<', app_client.get("/console/queues").text)
    r = _claim(app_client, csrf, "terrorism")
    assert r.headers["location"] == "/console/queues"  # nothing a moderator may take

    with _client(settings, db) as senior:
        senior_csrf = _login(senior, db, "sam", Role.SENIOR_MODERATOR)
        r = _claim(senior, senior_csrf, "terrorism")
        assert r.headers["location"] == f"/console/cases/{held['case_id']}"
        page = senior.get(r.headers["location"]).text
        assert "Possibly news reporting" in page and "Escalate (E)" not in page


def test_restricted_queue_media_is_for_child_safety_and_every_clear_view_is_audited(
        app_client: TestClient, settings: Settings, auth_header: Header, db: Database, tmp_path: Path) -> None:
    known = make_image(tmp_path / "csam-standin.jpg", seed=77, size=(640, 480))
    _bank(app_client, auth_header, "CSAM_KNOWN", _flip(_pdq(known), 16), "csam", role=Role.CHILD_SAFETY)
    app_client.app.state.matcher.refresh()  # type: ignore[attr-defined]
    # a near match of known material is blocked (csam-known-hash) and kept for the child-safety queue via a notice
    result = _upload(app_client, auth_header, known, "cs-1")
    assert result["verdict"] == "block"
    r = app_client.post("/v1/notices", headers=auth_header(Role.PLATFORM),
                        json={"content_id": "cs-1", "category": "csam", "explanation": "reported",
                              "notifier": "user-9"})
    case_id = r.json()["case_id"]

    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    assert app_client.get(f"/console/cases/{case_id}").status_code == 403
    assert app_client.get(f"/console/cases/{case_id}/media?view=clear").status_code == 403
    assert 'data-queue="child_safety"' not in app_client.get("/console/queues").text
    assert app_client.post("/console/settings", data={"csrf_token": csrf, "reveal_media": "on"}).status_code == 200

    with _client(settings, db) as specialist:
        cs_csrf = _login(specialist, db, "cleo", Role.CHILD_SAFETY)
        specialist.post("/console/settings", data={"csrf_token": cs_csrf, "reveal_media": "on"})
        r = _claim(specialist, cs_csrf, "child_safety")
        assert r.headers["location"] == f"/console/cases/{case_id}"
        page = specialist.get(r.headers["location"]).text
        assert "media?view=blurred" in page  # the reveal-at-once setting never applies here
        assert specialist.get(f"/console/cases/{case_id}/media?view=clear").status_code == 200
    with db.read() as session:
        audits = session.scalars(select(AuditEntry).where(AuditEntry.action == "media.revealed")).all()
        assert [(a.actor, a.subject) for a in audits] == [("user:cleo", f"case:{case_id}")]


def test_reveal_at_once_is_a_per_moderator_setting(
        app_client: TestClient, settings: Settings, auth_header: Header, db: Database, tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    r = app_client.post("/console/settings", data={"csrf_token": csrf, "reveal_media": "on"},
                        follow_redirects=False)
    assert "shown at once" in _flash(app_client, r)
    page = app_client.get(f"/console/cases/{held['case_id']}").text
    assert "media?view=clear" in page.split('class="media"')[1][:200]
    with _client(settings, db) as other:
        _login(other, db, "max", Role.MODERATOR)
        page = other.get(f"/console/cases/{held['case_id']}").text
        assert "media?view=blurred" in page.split('class="media"')[1][:200]


def test_a_senior_confirms_and_adds_the_media_to_a_bank_in_one_step(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    held, known = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "sam", Role.SENIOR_MODERATOR)
    _claim(app_client, csrf, "terrorism")
    page = app_client.get(f"/console/cases/{held['case_id']}").text
    assert '<select name="bank" id="bank">' in page
    r = app_client.post(f"/console/cases/{held['case_id']}/decision", follow_redirects=False,
                        data={"csrf_token": csrf, "outcome": "violation", "actions": ["remove"],
                              "category": "terrorist_content", "bank": "TERRORIST_CONTENT"})
    assert "Added 3 signal(s) to TERRORIST_CONTENT" in _flash(app_client, r)  # its pdq, md5 and sha256
    with db.read() as session:
        sources = session.scalars(select(BankEntry.source).where(BankEntry.source == "content:up-1")).all()
        assert len(sources) == 3
    app_client.app.state.matcher.refresh()  # type: ignore[attr-defined]
    again = _upload(app_client, auth_header, known, "up-again")
    assert again["verdict"] == "block"  # the next copy is caught at upload, at distance 0
    r = app_client.post(f"/console/cases/{held['case_id']}/curate", follow_redirects=False,
                        data={"csrf_token": csrf, "bank": "TERRORIST_CONTENT"})
    told = _flash(app_client, r)
    assert "Added 0 signal(s)" in told and "already in TERRORIST_CONTENT" in told


def test_curation_needs_a_confirmed_violation_and_a_curating_role(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    r = app_client.post("/v1/content/up-1/curate", json={"bank": "TERRORIST_CONTENT"},
                        headers=auth_header(Role.CURATOR))
    assert r.status_code == 422 and "confirmed" in r.json()["detail"]
    assert app_client.post("/v1/content/up-1/curate", json={"bank": "TERRORIST_CONTENT"},
                           headers=auth_header(Role.MODERATOR)).status_code == 403
    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    _claim(app_client, csrf, "terrorism")
    assert 'name="bank"' not in app_client.get(f"/console/cases/{held['case_id']}").text


def test_analysts_read_queues_and_blurred_media_but_do_not_decide(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "ana", Role.ANALYST)
    assert "Take next case" not in app_client.get("/console/queues").text
    assert _claim(app_client, csrf, "terrorism").status_code == 403
    assert app_client.get(f"/console/cases/{held['case_id']}").status_code == 200
    assert app_client.get(f"/console/cases/{held['case_id']}/media?view=blurred").status_code == 200
    assert app_client.get(f"/console/cases/{held['case_id']}/media?view=clear").status_code == 403


def test_the_policy_page_shows_rules_queues_and_shadow_agreement(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    _login(app_client, db, "ana", Role.ANALYST)
    page = app_client.get("/console/policy").text
    row = re.search(r'<tr data-rule="terror-text-autoblock">(.*?)</tr>', page, re.S)
    assert row and "shadow" in row.group(1) and "terrorism" in row.group(1)
    assert "uploader under 18" in page and "bastion-default@2025-06-01" in page


def test_the_queues_page_charts_cases_by_time_left(app_client: TestClient, settings: Settings, db: Database,
                                                   auth_header: Header, tmp_path: Path) -> None:
    from bastion.core.clock import FrozenClock
    from bastion.review import services as review
    from bastion.review.models import CaseReason

    _held_upload(app_client, auth_header, tmp_path)  # terrorism: due in 60 min
    now = FrozenClock(app_client.app.state.moderation.clock.now())  # type: ignore[attr-defined]
    with db.write() as session:
        for i, minutes in enumerate((-5, 10, 10, 300)):
            review.open_or_raise(session, content_id=f"x{i}", queue="general", category="hate_speech",
                                 reason=CaseReason.NOTICE, severity=2, reach=0, sla_minutes=minutes,
                                 clock=now)
    _login(app_client, db, "mo", Role.MODERATOR)
    page = app_client.get("/console/queues").text
    general = re.search(r'<g [^>]*data-queue="general">(.*?)</g>', page, re.S)
    assert general is not None
    segments = re.findall(r'data-segment="([^"]+)"><title>(\d+) ', general.group(1))
    assert segments == [("overdue", "1"), ("under 15 min", "2"), ("later", "1")]
    terrorism = re.search(r'<g [^>]*data-queue="terrorism">(.*?)</g>', page, re.S)
    assert terrorism and re.findall(r'data-segment="([^"]+)"', terrorism.group(1)) == ["under 1 h"]


def test_addresses_that_cannot_be_right_get_a_page_not_a_crash(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "sam", Role.SENIOR_MODERATOR)
    for url in ("/console/cases/abc", "/console/cases/99999999999999999999", "/console/cases/0/media"):
        r = app_client.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), url
    r = app_client.post("/console/cases/424242/curate", data={"csrf_token": csrf, "bank": "TERRORIST_CONTENT"})
    assert r.status_code == 404 and "no case 424242" in r.text
    with db.write() as session:  # a preview altered at rest (or sealed under another key) does not open
        stored = session.get(MediaPreview, "up-1")
        assert stored is not None
        stored.sealed = stored.sealed[:-1] + bytes([stored.sealed[-1] ^ 1])
    r = app_client.get(f"/console/cases/{held['case_id']}/media?view=blurred")
    assert r.status_code == 500 and "media key has changed" in r.text and r.headers["content-type"].startswith(
        "text/html")


def test_a_decision_with_an_unknown_next_queue_is_kept_and_said(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    _claim(app_client, csrf, "terrorism")
    r = app_client.post(f"/console/cases/{held['case_id']}/decision", follow_redirects=False,
                        data={"csrf_token": csrf, "quick": "remove", "queue": "bogus", "next": "1"})
    assert r.headers["location"] == f"/console/cases/{held['case_id']}"
    assert "the content is now removed" in _flash(app_client, r)


def test_earlier_cases_about_restricted_content_are_left_out_for_moderators(
        app_client: TestClient, settings: Settings, auth_header: Header, db: Database, tmp_path: Path) -> None:
    other = make_image(tmp_path / "other.jpg", seed=95, size=(320, 240))
    _upload(app_client, auth_header, other, "cs-prior")  # the same uploader (acct-1), reported as csam
    r = app_client.post("/v1/notices", headers=auth_header(Role.PLATFORM),
                        json={"content_id": "cs-prior", "category": "csam", "explanation": "x", "notifier": "u"})
    restricted_case = r.json()["case_id"]
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    _login(app_client, db, "mo", Role.MODERATOR)
    page = app_client.get(f"/console/cases/{held['case_id']}").text
    assert "cs-prior" not in page and f'/console/cases/{restricted_case}"' not in page
    assert "No earlier cases." in page
    with _client(settings, db) as specialist:
        _login(specialist, db, "cleo", Role.CHILD_SAFETY)
        assert "cs-prior" in specialist.get(f"/console/cases/{held['case_id']}").text
    policy = app_client.get("/console/policy").text
    assert "csam-known-hash" not in policy and 'data-rule="terror-known-close"' in policy


def _login(client: TestClient, db: Database, username: str, role: Role) -> str:
    return login(client, db, username, role, home="/console/queues")


def test_an_appeal_is_partly_reversed_from_the_case_page(app_client: TestClient, auth_header: Header, db: Database,
                                                        settings: Settings, tmp_path: Path) -> None:
    held, _ = _held_upload(app_client, auth_header, tmp_path)
    csrf = _login(app_client, db, "mo", Role.MODERATOR)
    _claim(app_client, csrf, "terrorism")
    app_client.post(f"/console/cases/{held['case_id']}/decision", follow_redirects=False, data={
        "csrf_token": csrf, "outcome": "violation", "actions": ["remove", "age_restrict"],
        "category": "terrorist_content"})
    with db.read() as session:
        item = session.get(ContentItem, "up-1")
        assert item is not None and item.status == "removed"
    with db.read() as session:
        puid = session.scalars(select(StatementOfReasons.puid).where(StatementOfReasons.content_id == "up-1")).one()
    appeal = app_client.post("/v1/appeals", json={"statement_puid": puid, "text": "Context matters."},
                             headers=auth_header(Role.PLATFORM)).json()
    other = _client(settings, db)
    csrf = _login(other, db, "omar", Role.MODERATOR)
    _claim(other, csrf, "terrorism")
    page = other.get(f"/console/cases/{appeal['case_id']}").text
    assert 'name="standing" value="remove"' in page and 'name="standing" value="age_restrict"' in page
    url = f"/console/cases/{appeal['case_id']}/decision"
    r = other.post(url, follow_redirects=False, data={"csrf_token": csrf, "quick": "partly_reverse"})
    assert "keeps at least one action" in _flash(other, r)  # nothing ticked: refused, the case still open
    r = other.post(url, follow_redirects=False, data={"csrf_token": csrf, "quick": "partly_reverse",
                                                      "standing": ["age_restrict"], "note": "For adults only."})
    assert "the content is now restricted" in _flash(other, r)
    with db.read() as session:
        item = session.get(ContentItem, "up-1")
        assert item is not None and (item.status, item.restrictions) == ("restricted", ["age_restrict"])
