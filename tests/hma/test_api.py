"""HMA's REST API on Bastion, driven over real HTTP by a client written from HMA's routes (tests/factories/hma.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import select

from bastion.core.audit.models import AuditEntry
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hashing.services import hash_path
from bastion.web.app import create_app
from tests.factories.hma import HmaClient
from tests.factories.live import serve
from tests.factories.media import make_image, make_video

Clients = Callable[[Role], HmaClient]


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db=db)


@pytest.fixture
def hma(app: FastAPI, make_token: Callable[[Role], str]) -> Iterator[Clients]:
    """An HMA client per role, against Bastion on a loopback port."""
    opened: list[HmaClient] = []
    with serve(app) as base:
        def client(role: Role) -> HmaClient:
            opened.append(HmaClient(base, make_token(role)))
            return opened[-1]

        yield client
        for c in opened:
            c.close()


def _message(response: Any, status: int) -> str:
    """HMA's error answer: its status and ``{"message": ...}`` (Bastion's problem+json members beside it)."""
    assert response.status_code == status, response.text
    return str(response.json()["message"])


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return make_image(tmp_path / "known.jpg", seed=21, size=(640, 480))


def test_hash_a_photo_and_a_video_by_part_name(hma: Clients, photo: Path, tmp_path: Path) -> None:
    platform = hma(Role.PLATFORM)
    r = platform.hash_file("photo", photo)
    assert r.status_code == 200, r.text
    assert r.json() == {"pdq": next(s.value for s in hash_path(photo).signals if s.signal_type == "pdq")}
    video = make_video(tmp_path / "clip.mp4", seed=3, seconds=2.0)
    answer = platform.hash_file("video", video).json()
    assert set(answer) == {"video_md5", "video_pdq"} and len(answer["video_md5"]) == 32
    assert set(platform.hash_file("photo", photo, types="pdq,md5").json()) == {"pdq", "md5"}
    assert "no such content_type: 'file'" in _message(platform.hash_file("file", photo), 400)
    assert "the video part holds no video" in _message(platform.hash_file("video", photo), 400)
    assert "doesn't exist" in _message(platform.hash_file("photo", photo, types="tmk"), 400)
    with photo.open("rb") as a, photo.open("rb") as b:
        two = platform.http.post("/h/hash", files=[("photo", ("a.jpg", a)), ("photo", ("b.jpg", b))])
    assert _message(two, 400) == "Only one file allowed per request"


def test_bank_a_photo_then_match_it_by_file_signal_and_raw_lookup(hma: Clients, photo: Path,
                                                                  tmp_path: Path) -> None:
    curator, platform = hma(Role.CURATOR), hma(Role.PLATFORM)
    created = curator.create_bank("TERRORISM")
    assert (created.status_code, created.json()) == (201, {"name": "TERRORISM", "matching_enabled_ratio": 1.0})
    assert curator.banks().json() == [{"name": "TERRORISM", "matching_enabled_ratio": 1.0}]
    banked = curator.add_content_file("TERRORISM", "photo", photo)
    assert banked.status_code == 200, banked.text
    content_id, pdq = banked.json()["id"], banked.json()["signals"]["pdq"]

    copy = tmp_path / "copy.jpg"
    with Image.open(photo) as img:
        img.resize((400, 300)).save(copy, quality=60)
    found = platform.lookup_file("photo", copy)
    assert found.status_code == 200, found.text
    (hit,) = found.json()["pdq"]["TERRORISM"]
    assert hit["bank_content_id"] == content_id and 0 <= int(hit["distance"]) <= 31
    assert platform.lookup_signal("pdq", pdq).json() == {
        "TERRORISM": [{"bank_content_id": content_id, "distance": "0"}]}
    assert platform.raw_lookup("pdq", pdq).json() == {"matches": [content_id]}
    assert platform.raw_lookup("pdq", pdq, include_distance="true").json() == {
        "matches": [{"bank_content_id": content_id, "distance": "0"}]}
    assert platform.lookup_signal("pdq", pdq, banks="OTHER").json() == {}
    assert platform.lookup_file("photo", make_image(tmp_path / "other.jpg", seed=99)).json() == {"pdq": {}}

    shown = curator.content("TERRORISM", content_id, include_signals=True).json()
    assert shown == {"id": content_id, "disable_until_ts": 1, "collab_metadata": {}, "original_media_uri": None,
                     "bank": {"name": "TERRORISM", "matching_enabled_ratio": 1.0}, "signals": {"pdq": pdq}}
    assert curator.update_content("TERRORISM", content_id, 0).json()["disable_until_ts"] == 0
    assert platform.lookup_signal("pdq", pdq).json() == {}
    assert curator.update_content("TERRORISM", content_id, 1).status_code == 200
    assert platform.raw_lookup("pdq", pdq).json() == {"matches": [content_id]}
    later = int(time.time()) + 86400
    assert curator.update_content("TERRORISM", content_id, later).json()["disable_until_ts"] == later
    assert curator.content("TERRORISM", content_id).json()["disable_until_ts"] == later
    assert platform.raw_lookup("pdq", pdq).json() == {"matches": []}
    assert curator.update_content("TERRORISM", content_id, 1).json()["disable_until_ts"] == 1
    assert platform.raw_lookup("pdq", pdq).json() == {"matches": [content_id]}
    assert curator.update_bank("TERRORISM", enabled_ratio=0.0).json()["matching_enabled_ratio"] == 0.0
    assert platform.raw_lookup("pdq", pdq).json() == {"matches": []}
    assert curator.update_bank("TERRORISM", enabled=True).status_code == 200
    assert curator.delete_content("TERRORISM", content_id).json() == {"deleted": 1}
    assert curator.delete_content("TERRORISM", content_id).json() == {"deleted": 0}
    assert platform.raw_lookup("pdq", pdq).json() == {"matches": []}
    assert _message(curator.content("TERRORISM", content_id), 404) == f"content '{content_id}' not found"


def test_one_content_id_for_every_signal_of_a_video(hma: Clients, tmp_path: Path) -> None:
    curator, platform = hma(Role.CURATOR), hma(Role.PLATFORM)
    assert curator.create_bank("VIOLENT_VIDEOS").status_code == 201
    video = make_video(tmp_path / "clip.mp4", seed=5, seconds=3.0)
    banked = curator.add_content_file("VIOLENT_VIDEOS", "video", video).json()
    assert set(banked["signals"]) == {"video_md5", "video_pdq"}
    found = platform.lookup_file("video", video).json()
    assert found["video_md5"]["VIOLENT_VIDEOS"][0]["bank_content_id"] == banked["id"]
    assert found["video_pdq"]["VIOLENT_VIDEOS"][0]["bank_content_id"] == banked["id"]
    signals = curator.content("VIOLENT_VIDEOS", banked["id"], include_signals=True).json()["signals"]
    assert signals == banked["signals"]
    again = curator.add_content_file("VIOLENT_VIDEOS", "video", video).json()
    assert again["id"] == banked["id"]  # banking the same file again answers the id it has
    assert curator.delete_content("VIOLENT_VIDEOS", banked["id"]).json() == {"deleted": 2}


def test_bank_signals_directly_and_refuse_bad_ones(hma: Clients) -> None:
    curator = hma(Role.CURATOR)
    assert curator.create_bank("HASHES").status_code == 201
    pdq = "f" * 64
    r = curator.add_signals("HASHES", {"pdq": pdq, "video_md5": "d41d8cd98f00b204e9800998ecf8427e"})
    assert r.status_code == 200, r.text
    assert curator.content("HASHES", r.json()["id"], include_signals=True).json()["signals"] == {
        "pdq": pdq, "video_md5": "d41d8cd98f00b204e9800998ecf8427e"}
    assert "No such SignalType 'tmk'" in _message(curator.add_signals("HASHES", {"tmk": "00"}), 400)
    assert "invalid signal" in _message(curator.add_signals("HASHES", {"pdq": "xyz"}), 400)
    assert _message(curator.add_signals("NOPE", {"pdq": pdq}), 404) == "bank 'NOPE' not found"
    assert _message(curator.create_bank("HASHES"), 403) == "Bank already exists"
    assert "0.0 or 1.0" in _message(curator.create_bank("SAMPLED", enabled_ratio=0.5), 400)
    assert "renamed" in _message(curator.update_bank("HASHES", name="OTHER"), 400)
    assert "5 years" in _message(curator.update_content("HASHES", r.json()["id"], 2**40), 400)
    assert curator.exchanges().json() == []


def test_index_status_and_compare(hma: Clients) -> None:
    curator, platform = hma(Role.CURATOR), hma(Role.PLATFORM)
    assert curator.create_bank("HASHES").status_code == 201
    assert curator.add_signals("HASHES", {"pdq": "f" * 64}).status_code == 200
    status = platform.index_status().json()
    assert status["pdq"]["present"] is True and status["pdq"]["size"] == 1
    assert time.time() - 60 < status["pdq"]["built_to"] <= time.time()
    assert status["video_md5"]["size"] == 0
    assert set(platform.index_status(signal_type="pdq").json()) == {"pdq"}
    assert "No such SignalType" in _message(platform.index_status(signal_type="nope"), 400)
    near = "f" * 63 + "0"
    assert platform.compare({"pdq": ["f" * 64, near]}).json() == {"pdq": [True, {"distance": 4}]}
    assert platform.compare({"pdq": ["f" * 64, "0" * 64]}).json() == {"pdq": [False, {"distance": 256}]}
    assert "exactly 2" in _message(platform.compare({"pdq": ["f" * 64]}), 400)


def test_roles_hashing_and_matching_for_platforms_curation_for_curators(hma: Clients, photo: Path) -> None:
    platform, curator, analyst = hma(Role.PLATFORM), hma(Role.CURATOR), hma(Role.ANALYST)
    assert platform.banks().status_code == 403
    assert platform.create_bank("MINE").status_code == 403
    assert analyst.lookup_signal("pdq", "f" * 64).status_code == 403
    assert curator.hash_file("photo", photo).status_code == 200
    anonymous = platform.http.get("/m/lookup", params={"signal_type": "pdq", "signal": "f" * 64},
                                  headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_restricted_banks_answer_as_no_match_outside_child_safety(hma: Clients, db: Database) -> None:
    """The same rule as /v1/match: a restricted bank does not exist for HMA's callers outside child safety."""
    platform, curator, child_safety = hma(Role.PLATFORM), hma(Role.CURATOR), hma(Role.CHILD_SAFETY)
    banked = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    asks = [lambda c: c.raw_lookup("pdq", banked, include_distance="true"),
            lambda c: c.lookup_signal("pdq", banked), lambda c: c.lookup_signal("pdq", banked, banks="NCMEC"),
            lambda c: c.index_status(signal_type="pdq")]
    before = [json.dumps(ask(platform).json()) for ask in asks]
    assert json.loads(before[3])["pdq"]["built_to"] == 0  # no bank has changed yet; the restricted one must not count
    missing = curator.bank("NCMEC")
    cs_http = child_safety.http
    assert cs_http.post("/v1/banks", json={"name": "NCMEC", "restricted": True}).status_code == 201
    r = cs_http.post("/v1/banks/NCMEC/entries", json={"signal_type": "pdq", "value": banked, "category": "csam"})
    assert r.status_code == 201, r.text
    assert [json.dumps(ask(platform).json()) for ask in asks] == before
    for seen in (curator.bank("NCMEC"), curator.add_signals("NCMEC", {"pdq": "0" * 64}),
                 curator.content("NCMEC", int(r.json()["id"]))):
        assert (seen.status_code, seen.json()["message"]) == (missing.status_code, missing.json()["message"])
    assert curator.banks().json() == []
    assert child_safety.raw_lookup("pdq", banked).json() == {"matches": [r.json()["id"]]}
    assert child_safety.index_status(signal_type="pdq").json()["pdq"]["size"] == 1
    with db.read() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "match.lookup")).all()
    via_hma = [a.details for a in audited if a.details["via"] == "hma"]
    assert len(via_hma) == 3 + 3 + 1  # the platform's three lookups twice, and child safety's
    assert sum(1 for d in via_hma if d["restricted_withheld"]) == 3  # the platform's three after the banking


def test_lookups_spend_the_callers_budget(settings: Settings, db: Database,
                                          make_token: Callable[[Role], str]) -> None:
    with serve(create_app(replace(settings, match_rate_per_minute=2), db=db)) as base:
        platform = HmaClient(base, make_token(Role.PLATFORM))
        assert [platform.raw_lookup("pdq", "f" * 64).status_code for _ in range(3)] == [200, 200, 429]
        platform.close()


def test_banks_made_through_hma_are_restricted_when_configured(settings: Settings, db: Database,
                                                               make_token: Callable[[Role], str]) -> None:
    with serve(create_app(replace(settings, hma_restricted_banks=True), db=db)) as base:
        curator = HmaClient(base, make_token(Role.CURATOR))
        child_safety = HmaClient(base, make_token(Role.CHILD_SAFETY))
        assert curator.create_bank("CSAM_HASHES").status_code == 403
        assert child_safety.create_bank("CSAM_HASHES").status_code == 201
        listed = child_safety.http.get("/v1/banks").json()["banks"]
        assert [(b["name"], b["restricted"]) for b in listed] == [("CSAM_HASHES", True)]
        assert curator.bank("CSAM_HASHES").status_code == 404
        curator.close()
        child_safety.close()


def test_hash_answers_the_hash_hma_itself_computes(hma: Clients, tmp_path: Path) -> None:
    """A phone photo held upright by its EXIF tag: HMA hashes the stored pixels, Bastion the picture as shown.
    ``/h/hash`` answers HMA's reading (within the interop tolerance of threatexchange's ``pdq_from_file``);
    an upright photo's answer is Bastion's own hash, as before."""
    from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

    from bastion.hashing.pdq import MATCH_THRESHOLD, PdqSignal
    from tests.factories.camera import phone_jpeg
    from tests.hashing.test_interop import COMPATIBLE_BITS

    platform = hma(Role.PLATFORM)
    rotated = phone_jpeg(tmp_path / "IMG_0006.jpg", 6)
    partner, _ = pdq_from_file(rotated)
    signals = hash_path(rotated)
    ours = next(s.value for s in signals.signals if s.signal_type == "pdq")
    answer = platform.hash_file("photo", rotated).json()["pdq"]
    assert answer == signals.reference["pdq"] != ours
    assert PdqSignal.distance(answer, partner) <= COMPATIBLE_BITS
    assert PdqSignal.distance(ours, partner) > MATCH_THRESHOLD
    assert platform.hash_file("photo", rotated, types="pdq").json() == {"pdq": answer}
    upright = phone_jpeg(tmp_path / "IMG_0001.jpg", 1)
    own = next(s.value for s in hash_path(upright).signals if s.signal_type == "pdq")
    assert platform.hash_file("photo", upright).json()["pdq"] == own
