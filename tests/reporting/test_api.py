"""``/v1/reports`` over HTTP with the app's own outbox worker delivering to the fake NCMEC, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.moderation import decisions, notices
from bastion.moderation.policy import Action, Category
from bastion.reporting import services
from bastion.reporting.tasks import ReportSender
from bastion.web.app import create_app
from tests.factories.media import make_image
from tests.factories.ncmec import XSD, FakeNcmec
from tests.reporting.conftest import NOW, PLATFORM, SPECIALIST, World, make_settings

Header = Callable[[Role], dict[str, str]]


@pytest.fixture
def app_world(db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeNcmec) -> Iterator[tuple[TestClient,
                                                                                                        World]]:
    settings = make_settings(database_url, fake_ncmec.url, outbox_interval_seconds=0.05)
    clock = FrozenClock(NOW)
    with TestClient(create_app(settings, db=db, clock=clock)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        yield client, World(state.moderation, state.reporting, clock, tmp_path, ReportSender(state.reporting))


def _wait_for(client: TestClient, url: str, headers: dict[str, str], state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10  # eventual delivery by the app's outbox worker, not a speed check
    while True:
        body: dict[str, Any] = client.get(url, headers=headers).json()
        if body["state"] == state or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_only_child_safety_specialists_and_admins_see_reports(
        app_world: tuple[TestClient, World], auth_header: Header) -> None:
    client, _ = app_world
    assert client.get("/v1/reports").status_code == 401
    for role in (Role.MODERATOR, Role.SENIOR_MODERATOR, Role.ANALYST, Role.PLATFORM):
        r = client.get("/v1/reports", headers=auth_header(role))
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    for role in (Role.CHILD_SAFETY, Role.ADMIN):
        assert client.get("/v1/reports", headers=auth_header(role)).json() == {"reports": []}


def test_a_specialist_reviews_supplies_sends_and_opens_a_report(
        app_world: tuple[TestClient, World], auth_header: Header, fake_ncmec: FakeNcmec) -> None:
    client, world = app_world
    world.confirmed("c-1", "acct-b", seed=2, url="https://video.example/v/c-1")
    cs = auth_header(Role.CHILD_SAFETY)
    (report_id,) = client.post("/v1/reports/drafts", headers=cs).json()["drafted"]
    url = f"/v1/reports/{report_id}"
    bad = client.patch(url, json={"classifications": {"c-1": "C9"}}, headers=cs)
    assert bad.status_code == 422
    revised = client.patch(url, json={"classifications": {"c-1": "A2"}, "urgent_reason": "child at risk"}, headers=cs)
    assert revised.json()["files"][0]["classification"] == "A2" and revised.json()["urgent"] is True
    platform = auth_header(Role.PLATFORM)
    original = world.files["c-1"].read_bytes()
    wrong = client.put(f"{url}/files/c-1", files={"file": ("c-1.jpg", original[:-1])}, headers=platform)
    assert wrong.status_code == 422 and "hashes differ" in wrong.json()["detail"]
    assert client.get(url, headers=cs).json()["files"][0]["material_held"] is False  # nothing changed
    held = client.put(f"{url}/files/c-1", files={"file": ("c-1.jpg", original)}, headers=platform)
    assert held.json() == {"content_id": "c-1", "material_held": True}  # nothing else of the report
    assert client.get(url, headers=cs).json()["files"][0]["material_held"] is True
    assert client.put(f"{url}/files/c-1", files={"file": ("c-1.jpg", original)},
                      headers=auth_header(Role.MODERATOR)).status_code == 403
    assert client.get(f"{url}/files/c-1", headers=auth_header(Role.PLATFORM)).status_code == 403
    opened = client.get(f"{url}/files/c-1", headers=cs)
    assert opened.content == original and opened.headers["cache-control"] == "no-store"
    sent = client.post(f"{url}/send", headers=cs)
    assert sent.status_code == 202 and sent.json()["state"] in ("queued", "submitted", "finished")
    done = _wait_for(client, url, cs, "finished")
    assert done["state"] == "finished", done
    ((ncmec_id, received),) = fake_ncmec.reports.items()
    assert done["centres"]["ncmec"]["id"] == str(ncmec_id) and received.finished
    tree = etree.fromstring(received.xml)
    assert tree.findtext("incidentSummary/escalateToHighPriority") == "child at risk"
    assert client.patch(url, json={"urgent_reason": ""}, headers=cs).status_code == 409
    assert client.post(f"{url}/retract", headers=cs).status_code == 202
    assert _wait_for(client, url, cs, "retracted")["state"] == "retracted"
    assert client.get("/v1/reports/nope", headers=cs).status_code == 404


def test_cli_exports_each_report_as_sent(app_world: tuple[TestClient, World], db: Database, tmp_path: Path,
                                        auth_header: Header) -> None:
    _client, world = app_world
    world.known("k-1", "acct-a", seed=1)
    env = {**os.environ, "BASTION_DATABASE_URL": db.url, "BASTION_MEDIA_KEY": world.rep.settings.media_key,
           "CI": "true"}

    def bastion(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bastion", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    drafted = bastion("reports", "draft")
    assert drafted.returncode == 0, drafted.stderr
    report_id = drafted.stdout.strip()
    listed = bastion("reports", "list", "--state", "draft")
    assert report_id[:8] in listed.stdout and "acct-a" in listed.stdout
    assert bastion("reports", "list", "--state", "bogus").returncode == 1
    exported = bastion("reports", "export", str(tmp_path / "audit"))
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in (tmp_path / "audit").iterdir()) == [f"{report_id}.eu-centre.json",
                                                                      f"{report_id}.ncmec.xml"]
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.parse(str(tmp_path / "audit" / f"{report_id}.ncmec.xml")))


def test_control_characters_in_an_urgency_reason_get_a_problem_not_a_500(
        app_world: tuple[TestClient, World], auth_header: Header) -> None:
    client, world = app_world
    world.confirmed("c-1", "acct-b", seed=2)
    cs = auth_header(Role.CHILD_SAFETY)
    (report_id,) = client.post("/v1/reports/drafts", headers=cs).json()["drafted"]
    bad = client.patch(f"/v1/reports/{report_id}", json={"urgent_reason": "child at risk\u0000"}, headers=cs)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert "control characters" in bad.json()["detail"]
    assert client.get(f"/v1/reports/{report_id}", headers=cs).json()["urgent"] is False  # nothing changed


def test_the_platform_may_give_the_users_file_name_at_intake_and_the_report_carries_it(
        app_world: tuple[TestClient, World], auth_header: Header, tmp_path: Path) -> None:
    client, world = app_world
    image = make_image(tmp_path / "upload.jpg", seed=31)
    form = {"content_id": "n-1", "account_id": "acct-n", "account_age": "30", "account_country": "DE",
            "content_type": "image", "file_name": "IMG_0042.jpg"}
    with image.open("rb") as f:
        answer = client.post("/v1/content", data=form, files={"media": ("upload.jpg", f, "image/jpeg")},
                             headers=auth_header(Role.PLATFORM))
    assert answer.status_code == 200, answer.text
    too_long = {**form, "content_id": "n-2", "file_name": "x" * 301}
    with image.open("rb") as f:
        refused = client.post("/v1/content", data=too_long, files={"media": ("upload.jpg", f, "image/jpeg")},
                              headers=auth_header(Role.PLATFORM))
    assert refused.status_code == 422 and "file_name" in refused.json()["detail"]
    world.files["n-1"] = image
    case_id = notices.record_notice(world.mod, "n-1", category=Category.CSAM, explanation="report",
                                       trusted_flagger=False, notifier="user-1", actor=PLATFORM)
    case = decisions.claim_next(world.mod, "child_safety", SPECIALIST)
    assert case is not None and case.id == case_id
    decisions.decide(world.mod, case_id, decisions.ReviewDecision(True, [Action.REMOVE], Category.CSAM),
                      reviewer=SPECIALIST)
    cs = auth_header(Role.CHILD_SAFETY)
    (report_id,) = client.post("/v1/reports/drafts", headers=cs).json()["drafted"]
    (f,) = client.get(f"/v1/reports/{report_id}", headers=cs).json()["files"]
    assert f["original_file_name"] == "IMG_0042.jpg"


def test_cli_sends_a_reviewed_report_and_refuses_what_it_cannot_send(
        app_world: tuple[TestClient, World], db: Database, fake_ncmec: FakeNcmec, auth_header: Header) -> None:
    client, world = app_world
    world.known("k-1", "acct-a", seed=1)
    (report_id,) = services.draft_pending(world.rep)
    env = {**os.environ, "BASTION_DATABASE_URL": db.url, "BASTION_MEDIA_KEY": world.rep.settings.media_key,
           "BASTION_NCMEC_URL": fake_ncmec.url, "BASTION_NCMEC_XSD": str(XSD), "CI": "true"}

    def bastion(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bastion", *args], env={**env, **extra}, capture_output=True,
                              text=True, timeout=120)

    no_schema = bastion("reports", "send", report_id, BASTION_NCMEC_XSD="")
    assert no_schema.returncode == 1 and "BASTION_NCMEC_XSD" in no_schema.stderr
    assert "Traceback" not in no_schema.stderr
    missing = bastion("reports", "send", "no-such-report")
    assert missing.returncode == 1 and "no report" in missing.stderr
    sent = bastion("reports", "send", report_id)
    assert sent.returncode == 0, sent.stderr
    assert "queued for ncmec" in sent.stderr and "0 of 1 file(s) with their bytes" in sent.stderr
    view = client.get(f"/v1/reports/{report_id}", headers=auth_header(Role.CHILD_SAFETY)).json()
    assert view["state"] == "queued" and view["sent_by"].startswith("cli:")  # the outbox takes it from here
    again = bastion("reports", "send", report_id)
    assert again.returncode == 1 and "was sent already" in again.stderr


def _answer_schema(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    """The named schema of an operation's JSON answer, resolved from ``components``."""
    ref = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_the_openapi_document_names_each_answers_fields(app_world: tuple[TestClient, World]) -> None:
    client, _ = app_world
    document = client.get("/openapi.json").json()
    listed = _answer_schema(document, "/v1/reports", "get", "200")
    report = document["components"]["schemas"]["Report"]
    assert listed["properties"]["reports"]["items"]["$ref"].endswith("/Report")
    assert {"id", "state", "files", "repeats", "centres", "preserve_until", "urgent_reason"} <= set(
        report["properties"])
    for path, method, status in [("/v1/reports/{report_id}", "get", "200"), ("/v1/reports/{report_id}", "patch",
                                                                            "200"),
                                 ("/v1/reports/{report_id}/send", "post", "202"),
                                 ("/v1/reports/{report_id}/resend", "post", "202"),
                                 ("/v1/reports/{report_id}/retract", "post", "202")]:
        assert _answer_schema(document, path, method, status) == report
    assert set(_answer_schema(document, "/v1/reports/drafts", "post", "200")["properties"]) == {"drafted"}
    assert set(_answer_schema(document, "/v1/reports/{report_id}/files/{content_id}", "put", "200")[
        "properties"]) == {"content_id", "material_held"}
    centre = document["components"]["schemas"]["CentreDelivery"]
    assert set(centre["properties"]) == {"state", "id", "error", "centre_status"}


def test_refusals_are_answered_by_the_one_handler_with_the_errors_own_title(
        app_world: tuple[TestClient, World], auth_header: Header, fake_ncmec: FakeNcmec) -> None:
    client, world = app_world
    world.known("k-1", "acct-a", seed=1)
    cs = auth_header(Role.CHILD_SAFETY)
    (report_id,) = client.post("/v1/reports/drafts", headers=cs).json()["drafted"]
    assert client.post(f"/v1/reports/{report_id}/send", headers=cs).status_code == 202
    refused = client.patch(f"/v1/reports/{report_id}", json={"urgent_reason": "late"}, headers=cs)
    assert refused.status_code == 409 and refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["title"] == "Invalid transition" and "was sent already" in refused.json()["detail"]
    again = client.post(f"/v1/reports/{report_id}/resend", headers=cs)
    assert again.status_code == 409 and "only a failed delivery" in again.json()["detail"]
    missing = client.get("/v1/reports/nope", headers=cs).json()
    assert missing["title"] == "Report not found" and missing["status"] == 404
