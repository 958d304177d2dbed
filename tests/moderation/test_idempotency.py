"""A content_id replays only the request it was first given: new media under an old id is judged, never waved on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.sealing import Sealer, decode_key
from bastion.hashing.pdq import PdqSignal
from bastion.moderation.events import EventKind
from bastion.moderation.models import ContentItem, MediaPreview, ModerationEvent
from tests.factories.media import make_image
from tests.moderation.test_flow import Header, _bank, _pdq, _upload

FORM = {"content_id": "dup-1", "account_id": "acct-1", "account_age": "27", "account_country": "FR",
        "content_type": "image"}


def _post(client: TestClient, h: Header, path: Path, **form: str) -> Any:
    with path.open("rb") as f:
        return client.post("/v1/content", data={**FORM, **form}, files={"media": (path.name, f, "image/jpeg")},
                           headers=h(Role.PLATFORM))


def _events(db: Database, kind: EventKind) -> list[ModerationEvent]:
    with db.read() as session:
        return list(session.scalars(select(ModerationEvent).where(ModerationEvent.subject == "content:dup-1",
                                                                  ModerationEvent.kind == kind.value)))


def test_banked_media_under_a_clean_content_id_is_a_conflict_and_is_still_acted_on(
        client: TestClient, auth_header: Header, db: Database, settings: Settings, tmp_path: Path) -> None:
    clean = make_image(tmp_path / "clean.jpg", seed=42, size=(640, 480))
    banked = make_image(tmp_path / "banked.jpg", seed=41, size=(640, 480))
    _bank(client, auth_header, "TERRORIST_CONTENT", _pdq(banked), "terrorist_content")
    first = _post(client, auth_header, clean)
    assert first.status_code == 200 and first.json()["verdict"] == "allow"
    again = _post(client, auth_header, banked)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert "dup-1" in again.json()["detail"] and again.json()["verdict"] == "block"
    (resubmitted,) = _events(db, EventKind.RESUBMITTED)
    assert resubmitted.data["verdict"] == "block"
    assert any(m["bank"] == "TERRORIST_CONTENT" for m in resubmitted.data["matches"])  # type: ignore[union-attr]
    with db.read() as session:
        item = session.get(ContentItem, "dup-1")
        assert item is not None and item.status == "removed"  # published under the old id: taken down
        assert any(s["value"] == _pdq(banked) for s in item.signals)  # what its reviewers and curators see
        preview = session.get(MediaPreview, "dup-1")
        assert preview is not None
        shown = tmp_path / "preview.jpg"
        shown.write_bytes(Sealer(decode_key(settings.media_key)).open(preview.sealed, "dup-1"))
    # reviewers see the media that may now be online under that id, not the clean file first sent
    assert PdqSignal.distance(_pdq(shown), _pdq(banked)) < PdqSignal.distance(_pdq(shown), _pdq(clean))
    # the same request as the first is still a replay, with the content's current status
    replay = _post(client, auth_header, clean)
    assert replay.status_code == 200 and replay.json()["replay"] is True


@pytest.mark.parametrize("change", [{"account_id": "acct-2"}, {"text": "a caption"}, {"url": "https://x.example/a"},
                                    {"account_age": "15"}, {"account_country": "DE"}])
def test_any_other_field_under_the_same_content_id_is_a_conflict(
        client: TestClient, auth_header: Header, db: Database, tmp_path: Path,
        change: dict[str, str]) -> None:
    img = make_image(tmp_path / "same.jpg", seed=43, size=(320, 240))
    assert _post(client, auth_header, img).status_code == 200
    again = _post(client, auth_header, img, **change)
    assert again.status_code == 409 and again.json()["title"] == "Conflict"
    assert again.json()["verdict"] == "allow"
    (resubmitted,) = _events(db, EventKind.RESUBMITTED)
    assert resubmitted.data["account_id"] == change.get("account_id", "acct-1")
    with db.read() as session:
        item = session.get(ContentItem, "dup-1")
        assert item is not None and item.account_id == "acct-1" and item.status == "published"  # nothing moved


def test_a_text_post_with_another_text_under_the_same_id_is_a_conflict(
        client: TestClient, auth_header: Header) -> None:
    data = {**FORM, "content_type": "text", "text": "hello"}
    h = auth_header(Role.PLATFORM)
    assert client.post("/v1/content", data=data, headers=h).status_code == 200
    assert client.post("/v1/content", data=data, headers=h).json()["replay"] is True
    assert client.post("/v1/content", data={**data, "text": "bye"}, headers=h).status_code == 409


def test_a_retry_gets_its_stored_answer_while_matching_fails(
        client: TestClient, auth_header: Header, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored answer is found after the work (the insert is the check), so a repeat whose first answer was lost
    would fail with the matcher; it is answered from what was stored, and anything else still fails."""
    data = {**FORM, "content_type": "text", "text": "hello"}
    h = auth_header(Role.PLATFORM)
    first = client.post("/v1/content", data=data, headers=h)
    assert first.status_code == 200

    def down(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the matcher is down")

    monkeypatch.setattr(client.app.state.moderation.matcher, "match", down)  # type: ignore[attr-defined]
    again = client.post("/v1/content", data=data, headers=h)
    assert again.status_code == 200 and again.json() == {**first.json(), "replay": True}
    with pytest.raises(RuntimeError):  # the test client re-raises the app's errors
        client.post("/v1/content", data={**data, "content_id": "new-1"}, headers=h)


def test_restricted_media_under_an_old_id_makes_the_content_restricted(
        client: TestClient, auth_header: Header, db: Database, tmp_path: Path) -> None:
    clean = make_image(tmp_path / "clean.jpg", seed=44, size=(640, 480))
    known = make_image(tmp_path / "known.jpg", seed=45, size=(640, 480))
    _bank(client, auth_header, "CSAM_KNOWN", _pdq(known), "csam", role=Role.CHILD_SAFETY)
    assert _upload(client, auth_header, clean, "dup-1")["verdict"] == "allow"
    assert client.get("/v1/content/dup-1", headers=auth_header(Role.MODERATOR)).status_code == 200
    assert _post(client, auth_header, known).status_code == 409
    # what a general moderator could read before is now for child-safety specialists only
    assert client.get("/v1/content/dup-1", headers=auth_header(Role.MODERATOR)).status_code == 403
    seen = client.get("/v1/content/dup-1", headers=auth_header(Role.CHILD_SAFETY))
    assert seen.status_code == 200 and seen.json()["status"] in ("removed", "restricted", "held")
