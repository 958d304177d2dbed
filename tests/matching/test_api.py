from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bastion.core.auth.roles import Role
from bastion.core.db import Database
from bastion.hashing.services import hash_path
from tests.factories.media import make_image

Header = Callable[[Role], dict[str, str]]
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def _problem(response: Any, status: int) -> dict[str, object]:
    """A problem+json answer (the test client's response class depends on Starlette's version: duck-typed)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    return dict(body)


def _bank_with_image(client: TestClient, auth_header: Header, tmp_path: Path) -> tuple[Path, int]:
    curator = auth_header(Role.CURATOR)
    assert client.post("/v1/banks", json={"name": "TERRORIST_CONTENT", "dihedral": True},
                       headers=curator).status_code == 201
    known = make_image(tmp_path / "known.jpg", seed=11, size=(800, 600))
    pdq = next(s.value for s in hash_path(known).signals if s.signal_type == "pdq")
    r = client.post("/v1/banks/TERRORIST_CONTENT/entries", headers=curator,
                    json={"signal_type": "pdq", "value": pdq, "category": "terrorist_content", "source": "test"})
    assert r.status_code == 201, r.text
    return known, int(r.json()["id"])


def test_match_a_resized_upload(client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    known, entry_id = _bank_with_image(client, auth_header, tmp_path)
    copy = tmp_path / "copy.jpg"
    with Image.open(known) as img:
        img.resize((400, 300)).save(copy, quality=60)
    with copy.open("rb") as f:
        r = client.post("/v1/match", files={"file": ("copy.jpg", f, "image/jpeg")},
                        headers=auth_header(Role.PLATFORM))
    assert r.status_code == 200, r.text
    body = r.json()
    assert {s["signal_type"] for s in body["signals"]} >= {"pdq", "md5", "sha256"}
    (match,) = body["matches"]
    assert match["bank"] == "TERRORIST_CONTENT" and match["entry_id"] == entry_id
    assert match["category"] == "terrorist_content" and 0 <= match["distance"] <= 31


def test_match_a_mirrored_upload_in_a_dihedral_bank(client: TestClient, auth_header: Header,
                                                    tmp_path: Path) -> None:
    known, entry_id = _bank_with_image(client, auth_header, tmp_path)
    mirrored = tmp_path / "mirror.jpg"
    with Image.open(known) as img:
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored, quality=90)
    with mirrored.open("rb") as f:
        r = client.post("/v1/match", files={"file": ("m.jpg", f, "image/jpeg")}, headers=auth_header(Role.PLATFORM))
    assert [(m["entry_id"], m["variant"]) for m in r.json()["matches"]] == [(entry_id, True)]


def test_match_by_signal_value(client: TestClient, auth_header: Header) -> None:
    curator = auth_header(Role.CURATOR)
    client.post("/v1/banks", json={"name": "B1"}, headers=curator)
    client.post("/v1/banks/B1/entries", json={"signal_type": "pdq", "value": PDQ}, headers=curator)
    r = client.post("/v1/match", json={"signal_type": "pdq", "value": PDQ.upper()}, headers=auth_header(Role.PLATFORM))
    assert r.status_code == 200
    assert [m["distance"] for m in r.json()["matches"]] == [0]
    r = client.post("/v1/match", json={"signal_type": "pdq", "value": PDQ, "banks": ["OTHER"]},
                    headers=auth_header(Role.PLATFORM))
    assert r.json()["matches"] == []


@pytest.mark.parametrize(("body", "title"), [
    ({"signal_type": "pdq", "value": "abc"}, "Invalid signal value"),
    ({"signal_type": "pdq", "value": "g" * 64}, "Invalid signal value"),
    ({"signal_type": "sha1", "value": "abc"}, "Unknown signal type"),
    ({"value": "abc"}, "Invalid request"),
])
def test_match_bad_signal(client: TestClient, auth_header: Header, body: dict[str, str], title: str) -> None:
    r = client.post("/v1/match", json=body, headers=auth_header(Role.PLATFORM))
    assert _problem(r, 422)["title"] == title


def test_match_refuses_non_media_empty_and_oversize(client: TestClient, auth_header: Header) -> None:
    h = auth_header(Role.PLATFORM)
    r = client.post("/v1/match", files={"file": ("x.bin", b"\x00\x01\x02garbage" * 10, "image/jpeg")}, headers=h)
    assert _problem(r, 415)
    assert _problem(client.post("/v1/match", files={"file": ("e.jpg", b"", "image/jpeg")}, headers=h), 422)
    big = b"\xff\xd8\xff" + b"\x00" * (3 * 1024 * 1024)
    assert _problem(client.post("/v1/match", files={"file": ("b.jpg", big, "image/jpeg")}, headers=h), 413)
    corrupt = b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 20
    assert _problem(client.post("/v1/match", files={"file": ("c.jpg", corrupt, "image/jpeg")}, headers=h), 415)
    assert _problem(client.post("/v1/match", content=b"x", headers={**h, "content-type": "text/plain"}), 415)


def test_routes_need_a_token_with_the_right_role(client: TestClient, auth_header: Header) -> None:
    assert _problem(client.get("/v1/banks"), 401)
    assert _problem(client.get("/v1/banks", headers={"Authorization": "Bearer bst_1_nope"}), 401)
    assert _problem(client.get("/v1/banks", headers={"Authorization": "Basic abc"}), 401)
    assert _problem(client.get("/v1/banks", headers=auth_header(Role.PLATFORM)), 403)
    assert _problem(client.post("/v1/banks", json={"name": "X1"}, headers=auth_header(Role.MODERATOR)), 403)
    assert _problem(client.post("/v1/banks", json={"name": "X1"}, headers=auth_header(Role.AUTHORITY)), 403)
    assert client.get("/v1/banks", headers=auth_header(Role.ANALYST)).json() == {"banks": []}


def test_bank_lifecycle_over_http(client: TestClient, auth_header: Header, db: Database) -> None:
    curator = auth_header(Role.CURATOR)
    assert _problem(client.post("/v1/banks", json={"name": "bad name"}, headers=curator), 422)
    assert client.post("/v1/banks", json={"name": "B1"}, headers=curator).status_code == 201
    assert _problem(client.post("/v1/banks", json={"name": "B1"}, headers=curator), 409)
    r = client.post("/v1/banks/B1/entries", json={"signal_type": "md5", "value": "D41D8CD98F00B204E9800998ECF8427E"},
                    headers=curator)
    entry_id = r.json()["id"]
    assert r.json()["value"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert _problem(client.post("/v1/banks/B1/entries", json={"signal_type": "md5", "value": "xyz"},
                                headers=curator), 422)
    assert _problem(client.post("/v1/banks/NOPE/entries", json={"signal_type": "md5", "value": "a" * 32},
                                headers=curator), 404)
    listed = client.get("/v1/banks", headers=curator).json()["banks"]
    assert [(b["name"], b["entries"]) for b in listed] == [("B1", 1)]
    export = client.get("/v1/banks/B1/export", headers=curator)
    assert export.text.splitlines() == ["signal_type,value,category,source,note",
                                        "md5,d41d8cd98f00b204e9800998ecf8427e,,,"]
    assert client.delete(f"/v1/banks/B1/entries/{entry_id}", headers=curator).status_code == 204
    assert _problem(client.delete(f"/v1/banks/B1/entries/{entry_id}", headers=curator), 404)
    assert _problem(client.get("/v1/banks/NOPE/export", headers=curator), 404)


def test_restricted_bank_export_needs_child_safety_role(client: TestClient, auth_header: Header) -> None:
    cs = auth_header(Role.CHILD_SAFETY)
    assert client.post("/v1/banks", json={"name": "CSAM_KNOWN", "restricted": True}, headers=cs).status_code == 201
    # answered exactly as a bank that does not exist: a 403 would say which restricted banks there are
    hidden = _problem(client.get("/v1/banks/CSAM_KNOWN/export", headers=auth_header(Role.CURATOR)), 404)
    missing = _problem(client.get("/v1/banks/CSAM_NONE/export", headers=auth_header(Role.CURATOR)), 404)
    assert (hidden["title"], hidden["detail"]) == (missing["title"], str(missing["detail"]).replace("NONE", "KNOWN"))
    assert client.get("/v1/banks/CSAM_KNOWN/export", headers=cs).status_code == 200


def test_hash_endpoint(client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    img = make_image(tmp_path / "a.png", seed=3, size=(300, 200), fmt="PNG")
    with img.open("rb") as f:
        r = client.post("/v1/hash", files={"file": ("a.png", f, "image/png")}, headers=auth_header(Role.MODERATOR))
    assert r.status_code == 200, r.text
    by_type = {s["signal_type"]: s for s in r.json()["signals"]}
    assert r.json()["kind"] == "image"
    assert len(by_type["pdq"]["value"]) == 64 and by_type["pdq"]["quality"] >= 50
    assert _problem(client.post("/v1/hash", headers=auth_header(Role.MODERATOR)), 422)
    assert _problem(client.post("/v1/hash", files={"file": ("a.png", b"x", "image/png")}), 401)
    assert _problem(client.post("/v1/hash", files={"file": ("a.png", b"x", "image/png")},
                                headers=auth_header(Role.AUTHORITY)), 403)


def test_oversize_body_is_refused_before_it_is_parsed(client: TestClient, auth_header: Header) -> None:
    h = auth_header(Role.PLATFORM)
    big = b"\xff\xd8\xff" + b"\x00" * (3 * 1024 * 1024)  # the test settings cap uploads at 2 MiB
    body = client.post("/v1/match", files={"file": ("b.jpg", big, "image/jpeg")}, headers=h)
    assert _problem(body, 413)["detail"] == f"request bodies are limited to {2 * 1024 * 1024 + 64 * 1024} bytes"

    def chunks() -> object:
        for _ in range(40):
            yield b"x" * 100_000

    multipart = {**h, "content-type": "multipart/form-data; boundary=x"}
    streamed = client.post("/v1/match", content=chunks(), headers=multipart)
    assert _problem(streamed, 413)
