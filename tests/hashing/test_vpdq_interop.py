"""vPDQ hashes from exchanges: read and written in vPDQ's own forms, matched by vPDQ's rule.

The partner side is threatexchange's own vPDQ code (its serialiser and brute-force matcher). Those modules import
vPDQ's C extension, which has no wheel for this platform and is used only by its hasher: an empty stand-in lets
the pure-Python format and rule load. The partner's frame hashes are made as vPDQ's hasher makes them: every
frame decoded at full size, one each ``fps`` frames, hashed by ``pdqhash``.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pdqhash
import pytest
from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.hashing.interfaces import InvalidSignalValue, MediaKind
from bastion.hashing.services import hash_path
from bastion.hashing.video_pdq import (
    VideoPdqSignal,
    VpdqFeature,
    hash_video_features,
    parse_vpdq,
    to_vpdq_json,
    to_vpdq_lines,
    vpdq_match,
)
from tests.factories.camera import with_display_rotation
from tests.factories.media import make_video, transcode, video_frames, write_video

Header = Callable[[Role], dict[str, str]]
HEX = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


@pytest.fixture(scope="module")
def tx() -> Iterator[types.SimpleNamespace]:
    """threatexchange's vPDQ format and matcher (see the module docstring)."""
    with pytest.MonkeyPatch.context() as patch:
        if "vpdq" not in sys.modules:
            stand_in = types.ModuleType("vpdq")
            stand_in.VpdqFeature = type("VpdqFeature", (), {})  # type: ignore[attr-defined]  # their annotations
            patch.setitem(sys.modules, "vpdq", stand_in)
        from threatexchange.extensions.vpdq import vpdq_brute_matcher, vpdq_util

        yield types.SimpleNamespace(util=vpdq_util, brute=vpdq_brute_matcher)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vpdq")
    original = make_video(d / "original.mp4", seed=31, seconds=8, size=(320, 240))
    return {
        "original": original,
        "reupload": transcode(original, d / "reupload.mkv", size=(240, 180), bit_rate=150_000),
        "other": make_video(d / "other.mp4", seed=32, seconds=8, size=(320, 240)),
    }


def partner_vpdq(tx: Any, path: Path) -> str:
    """The vPDQ hash a partner's hasher writes: full-size frames, one per second of frames, threatexchange's form."""
    features = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        every = max(1, int(fps))  # vPDQ truncates seconds-per-hash x frame rate
        for n, frame in enumerate(container.decode(stream)):
            if n % every:
                continue
            vector, quality = pdqhash.compute(frame.to_ndarray(format="rgb24"))  # no display rotation, as vPDQ
            value = np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()
            features.append(tx.util.VpdqCompactFeature(value, int(quality), n / fps))
    return str(tx.util.vpdq_to_json(features))


def test_features_are_written_in_threatexchange_s_form(tx: Any, videos: dict[str, Path]) -> None:
    features = hash_video_features(videos["original"])
    assert [f.frame_number for f in features] == list(range(0, 80, 10))  # one a second (10 fps), repeats kept
    assert [f.timestamp for f in features] == pytest.approx([float(n) for n in range(8)], abs=0.11)
    written = to_vpdq_json(features)
    theirs = tx.util.json_to_vpdq(written)  # their parser reads ours ...
    assert [(f.pdq_hex, f.quality) for f in theirs] == [(f.hash, f.quality) for f in features]
    assert tx.util.vpdq_to_json(theirs) == written  # ... and writes it back byte for byte
    assert [(f.hash, f.quality) for f in parse_vpdq(written)] == [(f.hash, f.quality) for f in features]


def test_the_command_line_s_lines_and_the_older_json_are_read() -> None:
    features = [VpdqFeature(HEX, 100, 0.0, 0), VpdqFeature(HEX[::-1], 73, 1.04, 1)]
    lines = to_vpdq_lines(features)
    assert lines.splitlines()[1] == f"1,73,{HEX[::-1]},1.040"
    assert parse_vpdq(lines) == features
    older = json.dumps({"0": {"quality": 100, "hash": HEX.upper(), "timestamp": 0.0},
                        "1": {"quality": 73, "hash": HEX[::-1], "timestamp": 1.04}})
    assert parse_vpdq(older) == features


def test_a_vpdq_value_is_banked_as_the_frames_vpdq_matches_on() -> None:
    low = "0" * 63 + "1"
    text = to_vpdq_json([VpdqFeature(HEX, 100, 0.0), VpdqFeature(low, 12, 1.0), VpdqFeature(HEX, 100, 2.0),
                         VpdqFeature(HEX[::-1], 90, 3.0)])
    assert VideoPdqSignal.validate(text) == f"{HEX},{HEX[::-1]}"  # quality >= 50, each hash once, in order
    assert VideoPdqSignal.validate(to_vpdq_lines([VpdqFeature(HEX, 80, 0.0)])) == HEX


@pytest.mark.parametrize(("text", "message"), [
    ("[", "not valid JSON"),
    ("[]", "at least one frame"),
    ('["abc,100,0.0"]', "frame 0: the hash is not 64 hex digits"),
    (f'["{HEX},101,0.0"]', "quality is not within 0-100"),
    (f'["{HEX},100,-1"]', "not a time >= 0"),
    (f'["{HEX},100"]', 'expected "hash,quality,timestamp"'),
    (f'["{HEX},20,0.0"]', "no frame of this vPDQ hash has quality >= 50"),
    (f"0,100,{HEX}", "expected frame_number,quality,hash,timestamp"),
    ('{"0": {"hash": "x"}}', "expected hash, quality and timestamp"),
])
def test_malformed_vpdq_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidSignalValue, match=message):
        VideoPdqSignal.validate(text)


def test_a_partner_s_vpdq_hash_matches_the_uploaded_video_by_vpdq_s_rule(tx: Any, videos: dict[str, Path]) -> None:
    partner = partner_vpdq(tx, videos["original"])
    banked = VideoPdqSignal.validate(partner)
    (upload,) = VideoPdqSignal.hash_file(videos["reupload"], MediaKind.VIDEO)
    assert VideoPdqSignal.distance(upload.value, banked) <= VideoPdqSignal.default_threshold
    (other,) = VideoPdqSignal.hash_file(videos["other"], MediaKind.VIDEO)
    assert VideoPdqSignal.distance(other.value, banked) > VideoPdqSignal.default_threshold
    # Both ways through threatexchange's own rule: their hash against ours, ours against theirs.
    ours = to_vpdq_json(hash_video_features(videos["reupload"]))
    signal = tx.util  # the rule's thresholds are theirs
    for query, compared in ((ours, partner), (partner, ours)):
        result = tx.brute.match_VPDQ_hash_brute(tx.util.json_to_vpdq(query), tx.util.json_to_vpdq(compared),
                                                signal.VPDQ_QUALITY_THRESHOLD, signal.VPDQ_DISTANCE_THRESHOLD)
        assert result.query_match_percent >= signal.VPDQ_QUERY_MATCH_THRESHOLD_PERCENT
        mine = vpdq_match(VideoPdqSignal.validate(query), VideoPdqSignal.validate(compared))
        assert (mine.query_percent, mine.compared_percent) == pytest.approx(
            (result.query_match_percent, result.compared_match_percent))
        assert mine.matches()
    other_json = to_vpdq_json(hash_video_features(videos["other"]))
    result = tx.brute.match_VPDQ_hash_brute(tx.util.json_to_vpdq(other_json), tx.util.json_to_vpdq(partner),
                                            signal.VPDQ_QUALITY_THRESHOLD, signal.VPDQ_DISTANCE_THRESHOLD)
    assert result.query_match_percent < signal.VPDQ_QUERY_MATCH_THRESHOLD_PERCENT
    assert not vpdq_match(VideoPdqSignal.validate(other_json), banked).matches()


def test_a_vpdq_hash_banked_over_http_matches_an_upload(client: TestClient, auth_header: Header, tx: Any,
                                                        videos: dict[str, Path]) -> None:
    curator = auth_header(Role.CURATOR)
    assert client.post("/v1/banks", json={"name": "PARTNER_VIDEOS"}, headers=curator).status_code == 201
    r = client.post("/v1/banks/PARTNER_VIDEOS/entries", headers=curator,
                    json={"signal_type": "video_pdq", "value": partner_vpdq(tx, videos["original"]),
                          "category": "terrorist_content"})
    assert r.status_code == 201, r.text
    with videos["reupload"].open("rb") as f:
        r = client.post("/v1/match", files={"file": ("clip.mkv", f, "video/x-matroska")},
                        headers=auth_header(Role.PLATFORM))
    assert r.status_code == 200, r.text
    assert [(m["bank"], m["signal_type"]) for m in r.json()["matches"]] == [("PARTNER_VIDEOS", "video_pdq")]


def test_a_phone_video_stored_sideways_matches_the_partner_s_vpdq(client: TestClient, auth_header: Header,
                                                                   tx: Any, tmp_path: Path) -> None:
    """vPDQ hashes frames as stored; Bastion's hash is upright, and the stored frames' hash is its alternate."""
    frames = list(video_frames(41, 8, (320, 240)))
    phone = with_display_rotation(write_video(tmp_path / "VID_0001.mp4", iter(frames)))
    upright = write_video(tmp_path / "upright.mp4", (np.ascontiguousarray(np.rot90(f, -1)) for f in frames))
    partner = VideoPdqSignal.validate(partner_vpdq(tx, phone))
    result = hash_path(phone)
    (ours,) = [s for s in result.signals if s.signal_type == "video_pdq"]
    (stored,) = [s for s in result.alternates if s.signal_type == "video_pdq"]
    (shown_upright,) = VideoPdqSignal.hash_file(upright, MediaKind.VIDEO)
    assert VideoPdqSignal.distance(ours.value, shown_upright.value) <= VideoPdqSignal.default_threshold
    assert VideoPdqSignal.distance(ours.value, partner) > VideoPdqSignal.default_threshold  # the alternate is needed
    assert VideoPdqSignal.distance(stored.value, partner) <= VideoPdqSignal.default_threshold
    assert [f.hash for f in hash_video_features(phone)] != [f.hash for f in hash_video_features(phone, upright=True)]

    curator = auth_header(Role.CURATOR)
    assert client.post("/v1/banks", json={"name": "PARTNER_VIDEOS"}, headers=curator).status_code == 201
    r = client.post("/v1/banks/PARTNER_VIDEOS/entries", headers=curator,
                    json={"signal_type": "video_pdq", "value": partner, "category": "terrorist_content"})
    assert r.status_code == 201, r.text
    with phone.open("rb") as f:
        r = client.post("/v1/match", files={"file": ("VID_0001.mp4", f, "video/mp4")},
                        headers=auth_header(Role.PLATFORM))
    assert r.status_code == 200, r.text
    (match,) = r.json()["matches"]
    assert match["bank"] == "PARTNER_VIDEOS" and not match["variant"]


def test_an_upright_video_has_no_alternate(videos: dict[str, Path]) -> None:
    assert hash_path(videos["original"]).alternates == []
