"""Video PDQ: re-encodes and clips match (vPDQ's 80 % rule), other videos and half-foreign clips do not."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bastion.hashing import video_pdq
from bastion.hashing.interfaces import HashResult, IndexHit, InvalidSignalValue, MediaKind, UnsupportedMedia
from bastion.hashing.pdq import PdqHash, PdqSignal
from bastion.hashing.video_pdq import MAX_FRAMES, VideoPdqIndex, VideoPdqSignal, _upright, hash_video
from tests.factories.media import make_video, transcode, video_frames, write_video

VIDEO = MediaKind.VIDEO
THRESHOLD = VideoPdqSignal.default_threshold


def vpdq(path: Path) -> HashResult:
    (result,) = VideoPdqSignal.hash_file(path, VIDEO)
    return result


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    a = make_video(d / "a.mp4", seed=1, seconds=8, size=(160, 120))
    frames_a = list(video_frames(1, 8, (160, 120)))
    frames_b = list(video_frames(2, 8, (160, 120)))
    return {
        "a": a,
        "a_reencoded": transcode(a, d / "a_small.mkv", size=(320, 240), bit_rate=60_000),
        "a_mpeg4": write_video(d / "a_mpeg4.mp4", iter(frames_a), codec="mpeg4", bit_rate=200_000),
        "a_clip": write_video(d / "a_clip.mp4", iter(frames_a[:40])),
        "b": make_video(d / "b.mp4", seed=2, seconds=8, size=(160, 120)),
        "half_foreign": write_video(d / "half.mp4", itertools.chain(frames_a[:40], frames_b[40:])),
    }


@pytest.fixture(scope="module")
def values(videos: dict[str, Path]) -> dict[str, str]:
    return {name: vpdq(path).value for name, path in videos.items()}


def test_a_video_hashes_to_its_distinct_seconds(videos: dict[str, Path]) -> None:
    result = vpdq(videos["a"])
    frames = result.value.split(",")
    assert 4 <= len(frames) <= 8  # 8 seconds, a new scene every 2 s
    assert VideoPdqSignal.validate(result.value) == result.value
    assert result.quality is not None and result.quality >= 50 and VideoPdqSignal.matchable(result)
    for prev, frame in itertools.pairwise(frames):
        assert PdqSignal.distance(prev, frame) > 10


def test_reencoded_copies_match(values: dict[str, str]) -> None:
    for name in ("a_reencoded", "a_mpeg4"):
        assert VideoPdqSignal.distance(values[name], values["a"]) <= THRESHOLD, name


def test_a_clip_matches_the_video_it_was_cut_from_but_not_the_reverse(values: dict[str, str]) -> None:
    assert VideoPdqSignal.distance(values["a_clip"], values["a"]) <= THRESHOLD
    assert VideoPdqSignal.distance(values["a"], values["a_clip"]) > THRESHOLD


def test_other_videos_do_not_match(values: dict[str, str]) -> None:
    assert VideoPdqSignal.distance(values["b"], values["a"]) == 100


def test_half_foreign_clips_do_not_match(values: dict[str, str]) -> None:
    assert 40 <= VideoPdqSignal.distance(values["half_foreign"], values["a"]) <= 60


def test_index_matches_like_distance(values: dict[str, str]) -> None:
    index = VideoPdqIndex()
    index.add(1, values["a"])
    index.add(2, values["b"])
    assert [h.key for h in index.query(values["a_reencoded"], THRESHOLD)] == [1]
    assert index.query(values["half_foreign"], THRESHOLD) == []
    half = index.query(values["half_foreign"], VideoPdqSignal.max_threshold)
    assert {h.key for h in half} == {1, 2}
    for hit in half:
        banked = values["a" if hit.key == 1 else "b"]
        assert hit.distance == VideoPdqSignal.distance(values["half_foreign"], banked)
    index.remove(1)
    assert index.query(values["a"], THRESHOLD) == []
    assert len(index) == 1


def test_index_add_and_remove_leave_other_videos_alone() -> None:
    rng = np.random.default_rng(0)

    def random_video(frames: int) -> str:
        return ",".join(rng.bytes(32).hex() for _ in range(frames))

    index = VideoPdqIndex()
    values = {key: random_video(int(rng.integers(1, 50))) for key in range(1, 300)}
    index.add_many(values.items())  # ~7,000 frames: one bulk insert
    for key in range(1, 300, 2):
        index.remove(key)
    index.add(4, values[5])  # re-adding replaces
    for key, value in values.items():
        expected = [] if key % 2 else [IndexHit(key, 0)]
        if key == 5:
            expected = [IndexHit(4, 0)]
        if key == 4:
            expected = []
        assert index.query(value, THRESHOLD) == expected
    assert len(index) == 149


@pytest.mark.parametrize("fps", [10, 24, 30])
def test_one_frame_is_kept_per_second(tmp_path: Path, fps: int) -> None:
    frames = video_frames(3, 6, (160, 120), fps=fps, scene_seconds=1)  # a new scene each second
    result = vpdq(write_video(tmp_path / "v.mp4", frames, fps=fps))
    assert len(result.value.split(",")) == 6


def test_static_and_black_videos(tmp_path: Path) -> None:
    still = next(video_frames(9, 1, (160, 120)))
    static = write_video(tmp_path / "static.mp4", [still] * 50)
    assert len(vpdq(static).value.split(",")) == 1
    black = write_video(tmp_path / "black.mp4", [np.zeros((120, 160, 3), np.uint8)] * 30)
    result = vpdq(black)
    assert len(result.value.split(",")) == 1
    assert result.quality is not None and result.quality < 50
    assert not VideoPdqSignal.matchable(result)


def test_large_frames_hash_like_small_ones(tmp_path: Path) -> None:
    """H.264 frames are area-scaled after decoding; MPEG-4 part 2 ones are decoded small (lowres)."""
    small = make_video(tmp_path / "s.mp4", seed=5, seconds=3, size=(160, 120))
    large = transcode(small, tmp_path / "l.mp4", size=(1280, 960))
    frames = list(video_frames(5, 3, (160, 120)))
    lowres = write_video(tmp_path / "l.avi", iter(frames), codec="mpeg4", size=(1280, 960),
                         bit_rate=2_000_000)
    for copy in (large, lowres):
        assert VideoPdqSignal.distance(vpdq(copy).value, vpdq(small).value) == 0


def test_display_rotation_turns_frames_upright() -> None:
    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[0, 2] = 255  # top right
    assert _upright(pixels, 0) is pixels
    assert _upright(pixels, 90)[0, 0, 0] == 255  # a quarter turn counter-clockwise: top right -> top left
    assert _upright(pixels, -90)[2, 1, 0] == 255  # clockwise: top right -> bottom right
    assert _upright(pixels, 180)[1, 0, 0] == 255


@pytest.mark.parametrize("content", [b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 4000, b"plain text\n", b""])
def test_unreadable_files_are_unsupported_media(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bastion-upload-x1y2" / "bad.mp4"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(UnsupportedMedia, match="not a readable video") as raised:
        VideoPdqSignal.hash_file(path, VIDEO)
    message = str(raised.value)  # shown to whoever uploaded the file: no server path in it
    assert str(path.parent) not in message and str(tmp_path) not in message and "/" not in message


def test_truncated_video_without_index_is_unsupported(videos: dict[str, Path], tmp_path: Path) -> None:
    data = videos["a"].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(UnsupportedMedia):
        VideoPdqSignal.hash_file(path, VIDEO)


def test_files_without_video_are_unsupported(tmp_path: Path) -> None:
    import av

    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
    with pytest.raises(UnsupportedMedia, match="no video stream"):
        VideoPdqSignal.hash_file(path, VIDEO)


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "frame 1: a pdq hash is 64 hex digits"),
    ("0" * 64 + ",", "frame 2"),
    ("0" * 64 + ",xyz", "frame 2"),
    (",".join(["0" * 64] * (MAX_FRAMES + 1)), f"at most {MAX_FRAMES}"),
])
def test_malformed_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(InvalidSignalValue, match=message):
        VideoPdqSignal.validate(value)


def test_stopping_at_max_frames_closes_the_decoder(videos: dict[str, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Iterator[PdqHash]] = []
    real = video_pdq._sampled_frames

    def tracked(path: Path) -> Iterator[PdqHash]:
        frames = real(path)
        started.append(frames)
        return frames

    monkeypatch.setattr(video_pdq, "_sampled_frames", tracked)
    monkeypatch.setattr(video_pdq, "MAX_FRAMES", 2)
    frames, _ = hash_video(videos["a"])
    assert len(frames) == 2
    (generator,) = started
    assert generator.gi_frame is None  # type: ignore[attr-defined]  # closed: the container with it, not at GC


def test_importing_the_signal_types_does_not_load_ffmpeg() -> None:
    code = "import sys, bastion.hashing.registry; sys.exit('av' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_values_are_canonicalised() -> None:
    a, b, _ = PdqSignal.examples()
    assert VideoPdqSignal.validate(f" {a.upper()} , {b}\n") == f"{a},{b}"


def test_accepts_videos_only() -> None:
    assert VideoPdqSignal.accepts(MediaKind.VIDEO)
    assert not any(VideoPdqSignal.accepts(k) for k in (MediaKind.IMAGE, MediaKind.TEXT, MediaKind.OTHER))
