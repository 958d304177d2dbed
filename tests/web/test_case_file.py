"""What a case shows beyond an upload held at intake: media of published uploads, why a reach case is here, and
cases closed because the content was taken down by another path (an order, another case)."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import event

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.moderation import actions, decisions
from bastion.moderation.models import MediaPreview, ModerationEvent
from bastion.moderation.policy import Action, Category
from bastion.moderation.tasks import prune_previews
from bastion.review.models import Case
from bastion.web.app import create_app
from tests.factories.console import login
from tests.factories.media import make_image
from tests.moderation.test_flow import _upload

Header = Callable[[Role], dict[str, str]]


@pytest.fixture
def app_client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db)) as c:
        yield c


def _published(client: TestClient, h: Header, tmp_path: Path, content_id: str, seed: int) -> None:
    img = make_image(tmp_path / f"{content_id}.jpg", seed=seed, size=(640, 480))
    result = _upload(client, h, img, content_id)
    assert (result["verdict"], result["status"]) == ("allow", "published"), result


def _notice(client: TestClient, h: Header, content_id: str, category: str = "hate_speech") -> int:
    r = client.post("/v1/notices", headers=h(Role.PLATFORM),
                    json={"content_id": content_id, "category": category, "explanation": "reported",
                          "notifier": "user-1"})
    assert r.status_code == 201, r.text
    return int(r.json()["case_id"])


def _views_case(client: TestClient, db: Database, h: Header, content_id: str, views: int, shares: int) -> int:
    r = client.post(f"/v1/content/{content_id}/metrics", json={"views": views, "shares": shares},
                    headers=h(Role.PLATFORM))
    assert r.status_code == 200 and r.json()["thresholds_crossed"], r.text
    with db.read() as session:
        case = session.query(Case).filter_by(content_id=content_id, reason="views").one()
        return case.id


def test_a_published_upload_keeps_a_sealed_preview_that_a_notice_case_shows_blurred(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    _published(app_client, auth_header, tmp_path, "pub-1", seed=61)
    with db.read() as session:
        stored = session.get(MediaPreview, "pub-1")
        assert stored is not None and b"JFIF" not in stored.sealed  # sealed at rest, bound to its content id
    case_id = _notice(app_client, auth_header, "pub-1")
    login(app_client, db, "mo", Role.MODERATOR, home="/console/queues")
    page = app_client.get(f"/console/cases/{case_id}").text
    assert "No preview kept" not in page
    assert f'src="/console/cases/{case_id}/media?view=blurred"' in page
    blurred = app_client.get(f"/console/cases/{case_id}/media?view=blurred")
    assert blurred.status_code == 200 and blurred.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(blurred.content)) as b:
        assert b.mode == "L"  # blurred and grey by the server, as for held uploads


def test_no_published_previews_when_retention_is_zero(settings: Settings, db: Database, auth_header: Header,
                                                      tmp_path: Path) -> None:
    none_kept = Settings(**{**settings.__dict__, "published_preview_days": 0})
    with TestClient(create_app(none_kept, db=db)) as client:
        _published(client, auth_header, tmp_path, "pub-0", seed=60)
    with db.read() as session:
        assert session.get(MediaPreview, "pub-0") is None


def test_previews_of_published_content_expire_unless_a_case_waits(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    _published(app_client, auth_header, tmp_path, "old-1", seed=62)
    _published(app_client, auth_header, tmp_path, "old-2", seed=63)
    _notice(app_client, auth_header, "old-2")  # undecided: its reviewer still needs the media
    now = dt.datetime.now(dt.UTC)
    assert prune_previews(db, now, 90) == 0  # too young
    assert prune_previews(db, now + dt.timedelta(days=91), 90) == 1
    with db.read() as session:
        assert session.get(MediaPreview, "old-1") is None
        assert session.get(MediaPreview, "old-2") is not None


def test_a_views_case_says_which_threshold_its_reach_crossed_and_what_the_upload_was_given(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    _published(app_client, auth_header, tmp_path, "viral-1", seed=64)
    case_id = _views_case(app_client, db, auth_header, "viral-1", views=12_345, shares=678)
    login(app_client, db, "mo", Role.MODERATOR, home="/console/queues")
    page = app_client.get(f"/console/cases/{case_id}").text
    why = re.search(r'<div class="why">(.*?)</div>\s*(?:<div class="table-wrap">|<h3|{|$)', page, re.S)
    assert why is not None
    text = re.sub(r"<[^>]+>", "", why.group(1))
    assert "crossed the policy's threshold of 10,000: 12,345 views and 678 shares" in text
    assert "At upload the policy gave allow: no rule held, so it was published." in text
    category = re.search(r'class="case-category">([^<]*)<', page)
    assert category and category.group(1) == "not classified yet (sent back for its reach)"


def test_an_order_closes_the_waiting_cases_of_the_content_it_removes(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    _published(app_client, auth_header, tmp_path, "ord-1", seed=65)
    views_case = _views_case(app_client, db, auth_header, "ord-1", views=20_000, shares=5)
    mod = app_client.app.state.moderation  # type: ignore[attr-defined]
    with db.write() as session:
        assert actions.enforce_order(mod, session, "ord-1", order="TCO-7", facts="terrorist content")
    with db.read() as session:
        case = session.get(Case, views_case)
        assert case is not None and (case.state, case.decided_by) == ("decided", "order:TCO-7")
        closed = [e.data for e in session.query(ModerationEvent).filter_by(kind="case.closed")]
        assert closed == [{"case_id": views_case, "removed_by": "order:TCO-7", "status": "removed"}]
    login(app_client, db, "mo", Role.MODERATOR, home="/console/queues")
    page = app_client.get(f"/console/cases/{views_case}").text
    assert "Closed unreviewed:" in page and "order:TCO-7" in page
    assert 'id="decision"' not in page


def test_a_removal_on_one_case_closes_the_content_s_other_waiting_case(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    _published(app_client, auth_header, tmp_path, "two-1", seed=66)
    views_case = _views_case(app_client, db, auth_header, "two-1", views=11_000, shares=1)
    notice_case = _notice(app_client, auth_header, "two-1")
    mod = app_client.app.state.moderation  # type: ignore[attr-defined]
    mo = Principal("user", 1, "mo", Role.MODERATOR)
    claimed = decisions.claim_next(mod, "general", mo, passing=[views_case])
    assert claimed is not None and claimed.id == notice_case
    result = decisions.decide(mod, notice_case, decisions.ReviewDecision(
        violation=True, actions=[Action.REMOVE], category=Category.HATE_SPEECH), reviewer=mo)
    assert result["status"] == "removed"
    with db.read() as session:
        case = session.get(Case, views_case)
        assert case is not None and (case.state, case.decided_by) == ("decided", f"case:{notice_case}")


def test_the_case_list_filters_and_hides_restricted_cases_from_senior_moderators(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    _published(app_client, auth_header, tmp_path, "find-1", seed=67)
    _published(app_client, auth_header, tmp_path, "other-2", seed=68)
    first = _notice(app_client, auth_header, "find-1")
    second = _notice(app_client, auth_header, "other-2")
    hidden = _notice(app_client, auth_header, "other-2", category="csam")  # takes other-2 into child_safety
    login(app_client, db, "mo", Role.MODERATOR, home="/console/queues")
    assert app_client.get("/console/cases").status_code == 403
    assert app_client.get("/console/accounts/acct-1").status_code == 403

    senior = TestClient(app_client.app)
    login(senior, db, "sam", Role.SENIOR_MODERATOR, home="/console/queues")
    listed = re.findall(r'<tr data-case="(\d+)"', senior.get("/console/cases").text)
    assert listed == [str(first)]  # other-2 is suspected abuse material now: none of its cases is listed
    assert str(hidden) not in listed and str(second) not in listed
    assert re.findall(r'<tr data-case="(\d+)"', senior.get("/console/cases?content=find").text) == [str(first)]
    assert re.findall(r'<tr data-case="(\d+)"', senior.get("/console/cases?content=nope").text) == []
    assert re.findall(r'<tr data-case="(\d+)"', senior.get("/console/cases?state=decided").text) == []
    assert senior.get("/console/cases?page=0").status_code == 404  # the console answers bad parameters so
    account = senior.get("/console/accounts/acct-1").text
    assert 'data-content="find-1"' in account and "other-2" not in account
    assert senior.get("/console/accounts/nobody").status_code == 404

    admin = TestClient(app_client.app)
    login(admin, db, "ada", Role.ADMIN)
    assert set(re.findall(r'<tr data-case="(\d+)"', admin.get("/console/cases").text)) == {
        str(first), str(second), str(hidden)}


@contextmanager
def _statements(db: Database) -> Iterator[list[tuple[str, str]]]:
    """Every query (with its parameters) the requests served inside the block run."""
    seen: list[tuple[str, str]] = []

    def count(_conn: object, _cursor: object, statement: str, parameters: object, _context: object,
              _many: bool) -> None:
        # the request's own queries: the app's background workers (outbox, matcher, clocks) have their own threads
        if statement.startswith("SELECT") and threading.current_thread().name.startswith("AnyIO worker"):
            seen.append((statement, repr(parameters)))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_the_case_page_reads_each_row_once_however_long_the_uploader_s_history(
        app_client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    """One read of each thing per page: no statement runs twice, and the uploader's earlier cases are read in a
    fixed number of statements (not one or two per case)."""
    login(app_client, db, "mo", Role.MODERATOR, home="/console/queues")
    counts = []
    for n in range(1, 6):
        _published(app_client, auth_header, tmp_path, f"hist-{n}", seed=70 + n)
        case_id = _notice(app_client, auth_header, f"hist-{n}")
        with _statements(db) as seen:
            assert app_client.get(f"/console/cases/{case_id}").status_code == 200
        repeated = [s for s, times in Counter(seen).items() if times > 1]
        assert repeated == [], repeated
        counts.append(len(seen))
    assert counts[1] == counts[-1], counts  # 1 earlier case or 4: the same statements
