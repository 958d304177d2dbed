"""Video PDQ: one PDQ hash per second of video, matched the way Meta's vPDQ matches.

Value: the video's distinct frame hashes, in order, as 64-hex PDQ values joined by commas (at most
``MAX_FRAMES``). A frame is sampled at every whole second (the first decoded frame at or after it, decoding
sequentially, no seeking); a frame within ``DUPLICATE_FRAME_DISTANCE`` bits of the last kept one is the same
shot and is dropped, as is an exact repeat of any kept frame, so a long static scene costs one hash. Frames
below PDQ's quality floor (black, fades) are left out.

Decoding is cheap where it can be: FFmpeg's frame threads, decoders that can decode at 1/2-1/8 size do so
(MPEG-4 part 2, MPEG-1/2, MJPEG, ...), every sampled frame is area-scaled to ``FRAME_SIDE`` pixels on its
short side before PDQ, and the display matrix is applied so a phone video is hashed upright.

Matching (vPDQ's rule): a query video matches a banked video when at least 80 % of the query's distinct
frames each match *some* frame of that one banked video at PDQ distance <= ``FRAME_MATCH_DISTANCE``. As a
distance: 100 minus the percentage (floored) of the query's frames matched, so the default threshold of 20 is
vPDQ's 80 %.

That distance is directional: ``distance(query, banked)`` asks how much of the *query* is in the banked
video (a clip cut from a banked film matches it; a film containing a banked clip does not).
``symmetric_distance`` says so.

Exchanges carry vPDQ's own format: every sampled frame with its quality and timestamp (``docs/interop.md``).
``parse_vpdq`` reads the three forms in use (threatexchange's JSON list, its older JSON object, the vPDQ
command line's lines) and ``validate`` accepts each, keeping what vPDQ's matcher keeps (frames of quality >= 50,
each distinct hash once); ``hash_video_features`` lists a file's frames the way vPDQ's hasher does, and
``to_vpdq_json`` / ``to_vpdq_lines`` write them. ``vpdq_match`` gives vPDQ's two percentages; ``distance`` is
its rule at the thresholds HMA uses (query >= 80 %, compared >= 0 %).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Generator, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

import numpy as np
import numpy.typing as npt

from bastion.hashing import budget
from bastion.hashing.budget import MediaOverBudget
from bastion.hashing.interfaces import (
    AlternateHasher,
    FileHashes,
    HashResult,
    IndexHit,
    InvalidSignalValue,
    MediaKind,
    SignalIndex,
    SignalType,
    UnsupportedMedia,
    short_reason,
)
from bastion.hashing.pdq import (
    MATCH_THRESHOLD,
    MIN_MATCH_QUALITY,
    U8,
    PdqHash,
    PdqSignal,
    hash_rgb,
    meets_quality_floor,
)

if TYPE_CHECKING:
    import av  # imported where videos are decoded: loading FFmpeg costs start-up time

__all__ = [
    "DUPLICATE_FRAME_DISTANCE",
    "FRAME_MATCH_DISTANCE",
    "MAX_FRAMES",
    "VideoPdqIndex",
    "VideoPdqSignal",
    "VpdqFeature",
    "VpdqMatch",
    "hash_video",
    "hash_video_features",
    "hash_video_with_alternates",
    "parse_vpdq",
    "to_vpdq_json",
    "to_vpdq_lines",
    "vpdq_match",
]

#: Consecutive samples this close (bits) are one shot: vPDQ-style de-duplication, well under a match.
DUPLICATE_FRAME_DISTANCE: Final = 10
#: A query frame matches a banked frame at this PDQ distance or less (PDQ's usual threshold).
FRAME_MATCH_DISTANCE: Final = MATCH_THRESHOLD
#: At most this many distinct frames per video (two hours of changing scenes); hashing stops there.
MAX_FRAMES: Final = 7200
#: Frames are scaled so their short side is at most this before hashing; PDQ samples a 64x64 grid anyway.
FRAME_SIDE: Final = 256
#: Index rows are ``video_key * FRAME_KEY_STRIDE + frame_number``: a power of two above ``MAX_FRAMES``.
FRAME_KEY_STRIDE: Final = 8192

# Decoders that can decode at 1/2, 1/4, 1/8 size (FFmpeg's ``lowres``); others (H.264, VP9, AV1) ignore it.
_LOWRES_DECODERS: Final = frozenset(
    {"mjpeg", "mpeg1video", "mpeg2video", "mpeg4", "h263", "h263p", "msmpeg4v1", "msmpeg4v2", "msmpeg4v3",
     "wmv1", "wmv2", "flv", "dvvideo"}
)


#: vPDQ's rule, as HMA runs it: a match needs this share of the query's frames in the compared video ...
VPDQ_QUERY_PERCENT: Final = 80.0
#: ... and this share of the compared video's frames in the query (0: any clip of a banked video matches).
VPDQ_COMPARED_PERCENT: Final = 0.0
_HEX64: Final = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class VpdqFeature:
    """One sampled frame as vPDQ lists it: its PDQ hash, quality (0-100), time in seconds and frame number (the
    frame's place among the sampled ones, as vPDQ's command line numbers them)."""

    hash: str
    quality: int
    timestamp: float
    frame_number: int = 0


@dataclass(frozen=True, slots=True)
class VpdqMatch:
    """vPDQ's two figures: the share (%) of the query's frames found in the compared video, and the reverse."""

    query_percent: float
    compared_percent: float

    def matches(self, query_percent: float = VPDQ_QUERY_PERCENT,
                compared_percent: float = VPDQ_COMPARED_PERCENT) -> bool:
        return self.query_percent >= query_percent and self.compared_percent >= compared_percent


class VideoPdqSignal(SignalType, AlternateHasher):
    """Per-second PDQ hashes; distance 0-100 = 100 - % of the query's frames found in the banked video."""

    name = "video_pdq"
    default_threshold = 20
    #: 100 would mean "nothing in common": at 99 or less some frame matched, which is what the index looks up.
    max_threshold = 99
    #: ``distance(a, b)`` treats ``a`` as the query; ``distance(b, a)`` may differ.
    symmetric_distance: ClassVar[bool] = False

    @classmethod
    def validate(cls, value: str) -> str:
        """Bastion's form (frame hashes joined by commas), or any of vPDQ's forms (``parse_vpdq``), which keep
        the frames vPDQ's matcher keeps."""
        if _looks_like_vpdq(value):
            return _value_from_features(parse_vpdq(value))
        parts = [p.strip() for p in value.split(",")]
        if parts == [""]:
            raise InvalidSignalValue("a video_pdq value lists at least one frame hash")
        if len(parts) > MAX_FRAMES:
            raise InvalidSignalValue(f"a video_pdq value lists at most {MAX_FRAMES} frames, got {len(parts)}")
        frames = []
        for n, part in enumerate(parts, start=1):
            try:
                frames.append(PdqSignal.validate(part))
            except InvalidSignalValue as exc:
                raise InvalidSignalValue(f"video_pdq frame {n}: {exc}") from None
        return ",".join(frames)

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        query, banked = _frames_array(a), _frames_array(b)
        matched = int(np.count_nonzero(_min_distances(query, banked) <= FRAME_MATCH_DISTANCE))
        return _percent_distance(matched, len(query))

    @classmethod
    def index_class(cls) -> type[SignalIndex]:
        return VideoPdqIndex

    @classmethod
    def examples(cls) -> Sequence[str]:
        a, b, c = PdqSignal.examples()
        return (f"{a},{b}", c, f"{_complement(a)},{_complement(b)}")

    @classmethod
    def matchable(cls, result: HashResult) -> bool:
        return meets_quality_floor(result)

    @classmethod
    def accepts(cls, kind: MediaKind) -> bool:
        return kind is MediaKind.VIDEO

    @classmethod
    def hash_file(cls, path: Path, kind: MediaKind) -> list[HashResult]:
        frames, quality = hash_video(path)
        return [HashResult(cls.name, ",".join(frames), quality)]

    @classmethod
    def hash_with_alternates(cls, path: Path, kind: MediaKind, *, variants: bool = False,
                             picture_px: int = 0) -> FileHashes:
        # no picture: a video's preview is a sheet of frames spread over its length, which hashing never decodes
        (frames, quality), stored = hash_video_with_alternates(path)
        alternates = [HashResult(cls.name, ",".join(stored[0]), stored[1])] if stored else []
        # vPDQ's hasher (HMA's) reads the frames as stored: the alternate, when there is one
        return FileHashes([HashResult(cls.name, ",".join(frames), quality)], alternates, [],
                          alternates[0] if alternates else None)


def hash_video(path: Path) -> tuple[list[str], int]:
    """The distinct per-second frame hashes of a video and the lowest quality among them.

    Frames below PDQ's quality floor (black frames, fades) are left out, unless nothing else is left, in which
    case the best of them stands alone and the low quality makes the result unmatchable.
    """
    picked = _FramePicker()
    with closing(_sampled_frames(path)) as samples:  # stopping early closes the container now, not at GC
        for sample in samples:
            if picked.add(sample.hash):
                break
    return picked.result()


def hash_video_with_alternates(path: Path) -> tuple[tuple[list[str], int], tuple[list[str], int] | None]:
    """``hash_video`` of the upright video and, from the same decode, of its frames as stored, when a display
    rotation makes them differ: vPDQ's hasher does not apply the rotation, so a partner's hash of a phone video
    filmed upright is of the sideways frames."""
    upright, stored = _FramePicker(), _FramePicker()
    rotated = False
    with closing(_sampled_frames(path, stored_too=True)) as samples:
        for sample in samples:
            rotated = rotated or sample.stored is not None
            full = upright.add(sample.hash)
            full = stored.add(sample.hash if sample.stored is None else sample.stored) or full
            if full:
                break
    ours = upright.result()
    if not rotated:
        return ours, None
    theirs = stored.result()
    return ours, (None if theirs[0] == ours[0] else theirs)


class _FramePicker:
    """``hash_video``'s choice of frames, fed one sampled frame at a time: the distinct ones of matchable quality
    (a repeat, or one within ``DUPLICATE_FRAME_DISTANCE`` of the last kept, is the same shot), up to
    ``MAX_FRAMES``."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.qualities: list[int] = []
        self.seen: set[str] = set()
        self.fallback: tuple[str, int] | None = None
        self.last: int | None = None

    def add(self, frame: PdqHash) -> bool:
        """Consider one frame; True once ``MAX_FRAMES`` are kept (the caller may stop decoding)."""
        value, quality = frame.hex(), frame.quality
        if quality < MIN_MATCH_QUALITY:
            if self.fallback is None or quality > self.fallback[1]:
                self.fallback = (value, quality)
            return False
        bits = int(value, 16)
        if value in self.seen or (self.last is not None
                                  and (bits ^ self.last).bit_count() <= DUPLICATE_FRAME_DISTANCE):
            return False
        self.kept.append(value)
        self.qualities.append(quality)
        self.seen.add(value)
        self.last = bits
        return len(self.kept) >= MAX_FRAMES

    def result(self) -> tuple[list[str], int]:
        if self.kept:
            return self.kept, min(self.qualities)
        if self.fallback is not None:
            return [self.fallback[0]], self.fallback[1]
        raise UnsupportedMedia("the video has no decodable frame")


def hash_video_features(path: Path, *, upright: bool = False) -> list[VpdqFeature]:
    """Every sampled frame (one a second, low quality and repeats included) with its quality, time and frame
    number, as vPDQ's hasher lists them: of the frames as stored (vPDQ ignores a display rotation), or upright.
    ``to_vpdq_json`` writes them in the form exchanges carry."""
    features = []
    with closing(_sampled_frames(path, stored_too=not upright)) as samples:
        for sample in samples:
            frame = sample.hash if upright or sample.stored is None else sample.stored
            features.append(VpdqFeature(frame.hex(), frame.quality, round(sample.at, 3), sample.number))
    return features


@dataclass(frozen=True, slots=True)
class _Sample:
    """One sampled frame: its PDQ upright, as stored (only when asked for and a rotation applies), when (seconds
    from the first frame) and its number among the decoded frames."""

    hash: PdqHash
    stored: PdqHash | None
    at: float
    number: int


def _sampled_frames(path: Path, *, stored_too: bool = False) -> Generator[_Sample, None, None]:
    """PDQ of the first frame at or after each whole second, and its time from the first frame, decoding
    sequentially (no seeks), in one of the video decode slots and within the budget: checked from the header
    first, then frame by frame as decoded."""
    with budget.video_slot() as limits:
        yield from _budgeted_frames(path, limits, stored_too)


def _budgeted_frames(path: Path, limits: budget.MediaBudget, stored_too: bool) -> Generator[_Sample, None, None]:
    import av

    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UnsupportedMedia(f"not a readable video: {short_reason(exc)}") from None
    produced = False
    with container:
        if not container.streams.video:
            raise UnsupportedMedia("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        level = _decode_small(stream)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        _check_header(container, stream, rate, level, limits)
        start: float | None = None
        due = 0.0
        pixels = 0
        try:
            for number, frame in enumerate(container.decode(stream)):
                pixels += frame.width * frame.height
                at = frame.time if frame.time is not None else number / rate
                start = at if start is None else start
                offset = at - start
                limits.check_video_frames(number + 1)  # the header may have lied: the decode itself is counted
                limits.check_video_pixels(pixels)
                limits.check_video_seconds(offset)
                if offset + 1e-6 < due:
                    continue
                due = math.floor(offset + 1e-6) + 1.0
                produced = True
                rgb = _small_rgb(frame)
                upright = _upright(rgb, frame.rotation)
                stored = hash_rgb(rgb) if stored_too and upright is not rgb else None
                yield _Sample(hash_rgb(upright), stored, offset, number)
        except MediaOverBudget:
            raise
        except (av.FFmpegError, ValueError) as exc:
            if not produced:  # a truncated upload still hashes the seconds it has
                raise UnsupportedMedia(f"not a readable video: {short_reason(exc)}") from None
        finally:
            budget.give_back(pixels)


def _check_header(container: av.container.InputContainer, stream: av.VideoStream, rate: float, level: int,
                  limits: budget.MediaBudget) -> None:
    """Refuse, before decoding anything, a video whose header says it is over the budget."""
    ctx = stream.codec_context
    width, height = (ctx.width or 0) >> level, (ctx.height or 0) >> level
    limits.check_image(width, height, "a frame of the video")
    seconds = container.duration / 1_000_000 if container.duration else 0.0
    if not seconds and stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    limits.check_video_seconds(seconds)
    frames = stream.frames or int(seconds * rate)
    limits.check_video_frames(frames)
    limits.check_video_pixels(frames * width * height)


def _decode_small(stream: av.VideoStream) -> int:
    """Ask decoders that can (MPEG-4 part 2, MJPEG, ...) to decode at reduced size; returns the level (the frame's
    sides are divided by 2 ** level), 0 when the decoder cannot or the frame is small already."""
    ctx = stream.codec_context
    side = min(ctx.width or 0, ctx.height or 0)
    if ctx.name not in _LOWRES_DECODERS or side < 2 * FRAME_SIDE:
        return 0
    level = min(3, (side // FRAME_SIDE).bit_length() - 1)
    ctx.options = {**ctx.options, "lowres": str(level)}
    return level


def _small_rgb(frame: av.VideoFrame) -> U8:
    """RGB pixels of a frame, area-scaled so the short side is at most ``FRAME_SIDE``."""
    width, height = frame.width, frame.height
    shrink = min(1.0, FRAME_SIDE / max(1, min(width, height)))
    out_w, out_h = max(1, round(width * shrink)), max(1, round(height * shrink))
    pixels = frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="AREA")
    return np.asarray(pixels, dtype=np.uint8)


def _upright(pixels: U8, rotation: int) -> U8:
    """Apply the display matrix (phone videos are stored sideways); ``rotation`` is counter-clockwise."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


# ------------------------------------------------------------------------------------------------------------
# vPDQ's format


def to_vpdq_json(features: Iterable[VpdqFeature]) -> str:
    """threatexchange's vPDQ signal string (what ThreatExchange and HMA store and exchange): a JSON list of
    ``"hash,quality,timestamp"``, the timestamp with 3 significant digits as threatexchange writes it."""
    return json.dumps([f"{f.hash},{f.quality},{f.timestamp:.3}" for f in features])


def to_vpdq_lines(features: Iterable[VpdqFeature]) -> str:
    """The vPDQ command line's hash file: one ``frame_number,quality,hash,timestamp`` line a frame."""
    return "".join(f"{f.frame_number},{f.quality},{f.hash},{f.timestamp:.3f}\n" for f in features)


def parse_vpdq(text: str) -> list[VpdqFeature]:
    """A vPDQ hash in any of its forms: threatexchange's JSON list of ``"hash,quality,timestamp"``, its older
    JSON object ``{frame: {"hash", "quality", "timestamp"}}``, or the command line's ``frame,quality,hash,time``
    lines. ``InvalidSignalValue`` names the first bad frame."""
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise InvalidSignalValue(f"a vPDQ hash is not valid JSON: {short_reason(exc)}") from None
        if isinstance(data, list):
            features = [_feature_from_compact(n, item) for n, item in enumerate(data)]
        else:
            features = [_feature_from_object(key, item) for key, item in data.items()]
    else:
        features = [_feature_from_line(n, line) for n, line in enumerate(stripped.splitlines()) if line.strip()]
    if not features:
        raise InvalidSignalValue("a vPDQ hash lists at least one frame")
    return features


def _feature_from_compact(n: int, item: object) -> VpdqFeature:
    parts = item.split(",") if isinstance(item, str) else []
    if len(parts) != 3:
        raise InvalidSignalValue(f"vPDQ frame {n + 1}: expected \"hash,quality,timestamp\"")
    return _feature(n, parts[0], parts[1], parts[2], n)


def _feature_from_object(key: str, item: object) -> VpdqFeature:
    if not isinstance(item, dict) or not {"hash", "quality", "timestamp"} <= item.keys():
        raise InvalidSignalValue(f"vPDQ frame {key}: expected hash, quality and timestamp")
    return _feature(key, item["hash"], item["quality"], item["timestamp"], key)


def _feature_from_line(n: int, line: str) -> VpdqFeature:
    parts = line.split(",")
    if len(parts) != 4:
        raise InvalidSignalValue(f"vPDQ line {n + 1}: expected frame_number,quality,hash,timestamp")
    return _feature(n, parts[2], parts[1], parts[3], parts[0])


def _feature(where: object, hash_: object, quality: object, timestamp: object, number: object) -> VpdqFeature:
    """One frame from loosely typed parts, checked as threatexchange checks them (quality 0-100, time >= 0)."""
    try:
        value = str(hash_).strip()
        if not _HEX64.fullmatch(value):
            raise ValueError("the hash is not 64 hex digits")
        q, at, frame = int(str(quality).strip()), float(str(timestamp).strip()), int(str(number).strip())
        if not 0 <= q <= 100:
            raise ValueError("quality is not within 0-100")
        if not (math.isfinite(at) and at >= 0):
            raise ValueError("the timestamp is not a time >= 0")
    except ValueError as exc:
        raise InvalidSignalValue(f"vPDQ frame {where}: {short_reason(exc)}") from None
    return VpdqFeature(value.lower(), q, at, frame)


def _looks_like_vpdq(value: str) -> bool:
    """vPDQ's JSON, or its lines (a first field that is a frame number, not a 64-digit hash)."""
    stripped = value.strip()
    if stripped.startswith(("[", "{")):
        return True
    first = stripped.split(",", 1)[0].strip()
    return first.isdigit() and len(first) < 64


def _value_from_features(features: Sequence[VpdqFeature]) -> str:
    """Bastion's value of a vPDQ hash: the frames vPDQ's matcher keeps (quality >= 50, each hash once), in order;
    beyond ``MAX_FRAMES``, consecutive frames within ``DUPLICATE_FRAME_DISTANCE`` are one shot, as when hashing."""
    kept = list(dict.fromkeys(f.hash for f in features if f.quality >= MIN_MATCH_QUALITY))
    if not kept:
        raise InvalidSignalValue(f"no frame of this vPDQ hash has quality >= {MIN_MATCH_QUALITY}: nothing to match")
    if len(kept) > MAX_FRAMES:
        kept = _one_per_shot(kept)
    if len(kept) > MAX_FRAMES:
        raise InvalidSignalValue(f"a video_pdq value lists at most {MAX_FRAMES} distinct frames, got {len(kept)}")
    return ",".join(kept)


def _one_per_shot(frames: Sequence[str]) -> list[str]:
    kept: list[str] = []
    last: int | None = None
    for frame in frames:
        bits = int(frame, 16)
        if last is None or (bits ^ last).bit_count() > DUPLICATE_FRAME_DISTANCE:
            kept.append(frame)
            last = bits
    return kept


def vpdq_match(query: str, compared: str) -> VpdqMatch:
    """vPDQ's two percentages between two validated values: the share of the query's frames within
    ``FRAME_MATCH_DISTANCE`` of some frame of the compared video, and the share of the compared video's frames
    within it of some query frame."""
    q, c = _frames_array(query), _frames_array(compared)
    found_in_compared = int(np.count_nonzero(_min_distances(q, c) <= FRAME_MATCH_DISTANCE))
    found_in_query = int(np.count_nonzero(_min_distances(c, q) <= FRAME_MATCH_DISTANCE))
    return VpdqMatch(100.0 * found_in_compared / len(q), 100.0 * found_in_query / len(c))


# ------------------------------------------------------------------------------------------------------------
# Distances


def _frames_array(value: str) -> U8:
    """``(frames, 32)`` uint8 hash bytes of a validated value."""
    from bastion.hashing.pdq_index import hex_to_array  # compiled kernel: imported on first use

    return hex_to_array(value.split(","))


def _min_distances(query: U8, banked: U8) -> npt.NDArray[np.int64]:
    """For each query frame, its PDQ distance to the nearest banked frame (in chunks of ~32 MB)."""
    q = query.view(np.uint64)
    b = banked.view(np.uint64)
    chunk = max(1, (1 << 20) // len(b))
    out = np.empty(len(q), dtype=np.int64)
    for i in range(0, len(q), chunk):
        xor = q[i : i + chunk, None, :] ^ b[None, :, :]
        out[i : i + chunk] = np.bitwise_count(xor).sum(axis=2, dtype=np.int64).min(axis=1)
    return out


def _complement(value: str) -> str:
    return f"{int(value, 16) ^ (2**256 - 1):064x}"


def _percent_distance(matched: int, total: int) -> int:
    return 100 - (100 * matched) // total


# ------------------------------------------------------------------------------------------------------------
# Index


class VideoPdqIndex(SignalIndex):
    """Every banked frame in one exact PDQ index; a query looks up each of its frames once.

    Frame rows are keyed ``video_key * FRAME_KEY_STRIDE + frame_number``, so the video of a hit is a shift
    away and no per-frame Python object exists. Per video only its frame count is kept (to remove it without
    a scan).
    Video keys must be below 2**50 (``FRAME_KEY_STRIDE * key`` stays a positive int64).
    """

    def __init__(self) -> None:
        from bastion.hashing.pdq_index import PdqIndex

        self._frames = PdqIndex()
        self._frame_counts: dict[int, int] = {}

    def add(self, key: int, value: str) -> None:
        self.add_many([(key, value)])

    def add_many(self, items: Iterable[tuple[int, str]]) -> None:
        """All frames in one bulk insert (the PDQ index builds a segment directly from a large batch)."""
        latest = dict(items)
        rows: list[tuple[int, str]] = []
        for key, value in latest.items():
            self.remove(key)
            frames = value.split(",")
            rows.extend((key * FRAME_KEY_STRIDE + n, frame) for n, frame in enumerate(frames))
            self._frame_counts[key] = len(frames)
        self._frames.add_many(rows)

    def remove(self, key: int) -> None:
        count = self._frame_counts.pop(key, 0)
        base = key * FRAME_KEY_STRIDE
        for n in range(count):
            self._frames.remove(base + n)

    def query(self, value: str, threshold: int) -> list[IndexHit]:
        frames = _frames_array(value)
        videos: list[int] = []
        numbers: list[int] = []
        for n, hits in enumerate(self._frames.query_batch(frames, FRAME_MATCH_DISTANCE)):
            videos.extend(hit.key // FRAME_KEY_STRIDE for hit in hits)
            numbers.extend([n] * len(hits))
        if not videos:
            return []
        pairs = np.unique(np.array([videos, numbers], dtype=np.int64), axis=1)
        keys, matched = np.unique(pairs[0], return_counts=True)
        total = len(frames)
        hits = [IndexHit(int(k), _percent_distance(int(m), total))
                for k, m in zip(keys, matched, strict=True)]
        return sorted((h for h in hits if h.distance <= threshold), key=lambda h: (h.distance, h.key))

    def __len__(self) -> int:
        return len(self._frame_counts)

    def nbytes(self) -> int:
        return self._frames.nbytes() + 100 * len(self._frame_counts)
