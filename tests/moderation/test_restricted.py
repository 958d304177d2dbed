"""Suspected child sexual abuse material stays with child-safety specialists, whatever path a case takes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app
from tests.factories.media import make_image
from tests.moderation.test_flow import _bank, _flip, _pdq, _upload

Header = Callable[[Role], dict[str, str]]


@pytest.fixture
def app(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db)) as c:
        yield c


def _notice(client: TestClient, h: Header, content_id: str, category: str) -> int:
    r = client.post("/v1/notices", headers=h(Role.PLATFORM),
                    json={"content_id": content_id, "category": category, "explanation": "reported",
                          "notifier": "user-1"})
    assert r.status_code == 201, r.text
    return int(r.json()["case_id"])


def _queues(client: TestClient, h: Header) -> dict[str, Any]:
    return {q["name"]: q for q in client.get("/v1/queues", headers=h(Role.ADMIN)).json()["queues"]}


def test_a_csam_report_takes_the_open_general_case_into_the_restricted_queue(
        app: TestClient, auth_header: Header, tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.jpg", seed=90, size=(320, 240))
    assert _upload(app, auth_header, image, "c-1")["verdict"] == "allow"
    first = _notice(app, auth_header, "c-1", "hate_speech")
    moderator = auth_header(Role.MODERATOR)
    assert app.post("/v1/queues/general/claim", headers=moderator).json()["id"] == first  # claimed ...
    second = _notice(app, auth_header, "c-1", "csam")
    queues = _queues(app, auth_header)
    assert queues["general"]["open"] + queues["general"]["claimed"] == 0  # ... and taken away
    assert queues["child_safety"]["open"] == 1 and second == first  # one case, moved and raised
    r = app.post(f"/v1/cases/{first}/decision", json={"violation": False}, headers=moderator)
    assert r.status_code == 403, r.text  # the moderator's claim went with the case
    specialist = auth_header(Role.CHILD_SAFETY)
    case = app.post("/v1/queues/child_safety/claim", headers=specialist).json()
    assert (case["id"], case["category"], case["queue"]) == (first, "csam", "child_safety")


def test_decisions_on_blocked_material_record_without_moving_it(app: TestClient, auth_header: Header,
                                                               tmp_path: Path) -> None:
    image = make_image(tmp_path / "b.jpg", seed=91, size=(320, 240))
    _bank(app, auth_header, "CSAM_KNOWN", _pdq(image), "csam", role=Role.CHILD_SAFETY)
    app.app.state.matcher.refresh()  # type: ignore[attr-defined]
    assert _upload(app, auth_header, image, "c-2")["status"] == "blocked"
    case_id = _notice(app, auth_header, "c-2", "csam")
    specialist = auth_header(Role.CHILD_SAFETY)
    assert app.post("/v1/queues/child_safety/claim", headers=specialist).json()["id"] == case_id
    r = app.post(f"/v1/cases/{case_id}/decision", headers=specialist,
                 json={"violation": True, "actions": ["remove", "strike"], "category": "csam"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "blocked" and r.json()["statement_puid"]


def test_restricted_content_is_hidden_from_other_roles_in_the_api(app: TestClient, auth_header: Header,
                                                                  tmp_path: Path) -> None:
    image = make_image(tmp_path / "c.jpg", seed=92, size=(320, 240))
    _bank(app, auth_header, "CSAM_KNOWN", _flip(_pdq(image), 4), "csam", role=Role.CHILD_SAFETY)
    app.app.state.matcher.refresh()  # type: ignore[attr-defined]
    _upload(app, auth_header, image, "c-3")
    for role in (Role.MODERATOR, Role.ANALYST, Role.SENIOR_MODERATOR):
        assert app.get("/v1/content/c-3", headers=auth_header(role)).status_code == 403
    platform = app.get("/v1/content/c-3", headers=auth_header(Role.PLATFORM)).json()
    assert platform["status"] == "blocked" and platform["events"] == []
    full = app.get("/v1/content/c-3", headers=auth_header(Role.CHILD_SAFETY)).json()
    assert any(e["data"].get("rule") == "csam-known-hash" for e in full["events"])
    rules = {r["name"] for r in app.get("/v1/policy", headers=auth_header(Role.MODERATOR)).json()["rules"]}
    assert "csam-known-hash" not in rules and "terror-known-close" in rules
    rules = {r["name"] for r in app.get("/v1/policy", headers=auth_header(Role.CHILD_SAFETY)).json()["rules"]}
    assert "csam-known-hash" in rules


def test_restricted_media_goes_only_into_restricted_banks_and_only_by_child_safety(
        app: TestClient, auth_header: Header, tmp_path: Path) -> None:
    image = make_image(tmp_path / "d.jpg", seed=93, size=(320, 240))
    assert _upload(app, auth_header, image, "c-4")["verdict"] == "allow"
    case_id = _notice(app, auth_header, "c-4", "csam")
    specialist = auth_header(Role.CHILD_SAFETY)
    app.post("/v1/queues/child_safety/claim", headers=specialist)
    assert app.post(f"/v1/cases/{case_id}/decision", headers=specialist,
                    json={"violation": True, "actions": ["remove"], "category": "csam"}).status_code == 200
    assert app.post("/v1/banks", json={"name": "OPEN_BANK"}, headers=auth_header(Role.CURATOR)).status_code == 201
    assert app.post("/v1/banks", json={"name": "CSAM_NEW", "restricted": True},
                    headers=specialist).status_code == 201
    senior = app.post("/v1/content/c-4/curate", json={"bank": "OPEN_BANK"}, headers=auth_header(Role.SENIOR_MODERATOR))
    assert senior.status_code == 403
    open_bank = app.post("/v1/content/c-4/curate", json={"bank": "OPEN_BANK"}, headers=specialist)
    assert open_bank.status_code == 422 and "restricted banks" in open_bank.json()["detail"]
    done = app.post("/v1/content/c-4/curate", json={"bank": "CSAM_NEW"}, headers=specialist)
    assert done.status_code == 200 and len(done.json()["added"]) == 3
    exported = app.get("/v1/banks/OPEN_BANK/export", headers=auth_header(Role.CURATOR)).text
    assert "content:c-4" not in exported


def test_an_upheld_appeal_keeps_the_violation_confirmed_and_held_content_needs_a_content_action(
        app: TestClient, auth_header: Header, tmp_path: Path) -> None:
    image = make_image(tmp_path / "e.jpg", seed=94, size=(640, 480))
    _bank(app, auth_header, "TERRORIST_CONTENT", _flip(_pdq(image), 16), "terrorist_content")
    app.app.state.matcher.refresh()  # type: ignore[attr-defined]
    held = _upload(app, auth_header, image, "t-1")
    first = auth_header(Role.MODERATOR)
    app.post("/v1/queues/terrorism/claim", headers=first)
    only_strike = app.post(f"/v1/cases/{held['case_id']}/decision", headers=first,
                           json={"violation": True, "actions": ["strike"]})
    assert only_strike.status_code == 422 and "held content needs a content action" in only_strike.json()["detail"]
    removed = app.post(f"/v1/cases/{held['case_id']}/decision", headers=first,
                       json={"violation": True, "actions": ["remove"]}).json()
    appeal = app.post("/v1/appeals", headers=auth_header(Role.PLATFORM),
                      json={"statement_puid": removed["statement_puid"], "text": "no"}).json()
    second = auth_header(Role.MODERATOR)
    assert app.post("/v1/queues/terrorism/claim", headers=second).json()["id"] == appeal["case_id"]
    assert app.post(f"/v1/cases/{appeal['case_id']}/decision", headers=second,
                    json={"violation": True}).json()["appeal"] == "upheld"
    r = app.post("/v1/content/t-1/curate", json={"bank": "TERRORIST_CONTENT"}, headers=auth_header(Role.CURATOR))
    assert r.status_code == 200 and r.json()["added"]


def test_a_queue_removed_by_a_policy_edit_leaves_its_cases_to_child_safety() -> None:
    from bastion.core.clock import SystemClock
    from bastion.moderation.kernel import Moderation
    from bastion.moderation.policy import DEFAULT_POLICY_PATH, load_policy

    mod = Moderation(None, None, load_policy(DEFAULT_POLICY_PATH), SystemClock())  # type: ignore[arg-type]
    assert mod.restricted_queue("terrorism") is False
    assert mod.restricted_queue("renamed-away") is True
    assert mod.sla_minutes("renamed-away") == min(q.sla_minutes for q in mod.policy.queues)


def test_curating_into_a_restricted_bank_one_may_not_see_is_answered_as_an_unknown_bank(
        app: TestClient, auth_header: Header, tmp_path: Path) -> None:
    image = make_image(tmp_path / "f.jpg", seed=95, size=(320, 240))
    assert _upload(app, auth_header, image, "h-1")["verdict"] == "allow"
    case_id = _notice(app, auth_header, "h-1", "hate_speech")
    moderator = auth_header(Role.MODERATOR)
    assert app.post("/v1/queues/general/claim", headers=moderator).json()["id"] == case_id
    assert app.post(f"/v1/cases/{case_id}/decision", headers=moderator,
                    json={"violation": True, "actions": ["remove"]}).status_code == 200
    assert app.post("/v1/banks", json={"name": "NCMEC_HASHES", "restricted": True},
                    headers=auth_header(Role.CHILD_SAFETY)).status_code == 201
    senior = auth_header(Role.SENIOR_MODERATOR)
    answers = [app.post("/v1/content/h-1/curate", json={"bank": name}, headers=senior)
               for name in ("NCMEC_HASHES", "NCMEC_ABSENT")]
    assert [(r.status_code, r.json()["detail"].replace("HASHES", "X").replace("ABSENT", "X")) for r in answers] \
        == [(404, "no bank named 'NCMEC_X'")] * 2
