"""PDQ, Meta's perceptual photo hash: 256 bits, Hamming distance, match at <= 31 bits.

Values are 64 lowercase hex digits, bit-for-bit the form ThreatExchange / HMA write (the hash as one
big-endian 256-bit number whose bit ``16 * i + j`` is DCT coefficient ``(i, j)`` above the median).

Why it is fast. The reference hasher decodes every pixel, then box-filters the full-resolution luma twice
(PDQ's "Jarosz" tent filter) and samples it on a 64x64 grid; on a 12-megapixel JPEG that is ~450 ms on one
core, nearly all of it spent on pixels the 64x64 grid then throws away. Here (~40 ms, nearly all of it the
JPEG entropy decoding that no scaling skips):

1. JPEGs are decoded at 1/2, 1/4 or 1/8 scale (Pillow's ``draft``: libjpeg's DCT-domain scaling, which skips
   most of the inverse DCT and all the full-size colour work); other formats are decoded and box-reduced. The
   decoded image is the smallest that keeps ``MIN_DECODED_SIDE`` pixels on its short side (4 per PDQ cell).
2. PDQ's filter-and-sample step is linear and separable, so it is one ``64 x N`` matrix per axis. The matrices
   are built for the *full-resolution* size and then summed over each decoded pixel's block, so a reduced
   decode is filtered as if the full image had been (a block mean is what a DCT-scaled or box-reduced pixel
   holds). Without that correction a 1/8 decode drifted up to 10 bits from the reference; with it, 2.
3. The 64x64 buffer goes through PDQ's 16x64 DCT, median threshold and quality metric, re-implemented in
   NumPy.

At scale 1 the result is PDQ exactly (``hash_image_full_decode`` and ThreatExchange agree bit for bit; the
tests check it). Reduced decodes stay well inside the PDQ README's compatibility rule (within 10 bits of the
reference for images of quality >= 80): ``bench/hashing.py`` measured at most 4 bits over 300 varied synthetic
photos (640 px to 12 MP, JPEG quality 70-98, 4:4:4 and 4:2:0), 0.6 on average.

EXIF orientation is applied the way ``ImageOps.exif_transpose`` would, but on the small decoded array (a view)
and folded into the filter matrices, so it costs nothing. Alpha is ignored, as ThreatExchange does.

Partners' hashes come from other loaders: HMA's (threatexchange's ``pdq_from_file``) ignores the EXIF orientation
and reads palette and CMYK pixels otherwise. ``hash_image_with_alternates`` also computes, from the same decode,
the hashes those readings give where they differ (``docs/interop.md``); they are matched, never stored.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from bastion.hashing import budget
from bastion.hashing.budget import MediaOverBudget
from bastion.hashing.exact import validate_hex
from bastion.hashing.interfaces import (
    AlternateHasher,
    FileHashes,
    HashResult,
    MediaKind,
    SignalIndex,
    SignalType,
    UnsupportedMedia,
    VariantHasher,
    short_reason,
)

__all__ = [
    "MATCH_THRESHOLD",
    "MIN_MATCH_QUALITY",
    "ImageHashes",
    "PdqHash",
    "PdqSignal",
    "hash_image",
    "hash_image_full_decode",
    "hash_image_with_alternates",
    "hash_luma",
    "hash_rgb",
    "meets_quality_floor",
]

#: Meta's recommendation: hashes of quality below 50 (flat, featureless images) are not matched.
MIN_MATCH_QUALITY: Final = 50
#: Meta's recommended match distance.
MATCH_THRESHOLD: Final = 31
#: Decode at the smallest scale that keeps this many pixels on the short side (see the module docstring).
MIN_DECODED_SIDE: Final = 256
#: Images smaller than this on a side get PDQ's all-zero hash with quality 0 (the reference does the same).
MIN_HASHABLE_SIDE: Final = 5

_GRID: Final = 64
_LUMA: Final = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_ORIENTATION_TAG: Final = 0x0112
# Greyscale modes wider than 8 bits: converting them to RGB clips every value at 255 (see ``_to_8bit``).
_WIDE_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
# Modes whose first three channels pdqhash weighs as R, G, B when handed Pillow's array (see ``_hma_pixels``).
_HMA_CHANNEL_MODES: Final = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
# EXIF orientation -> (transpose, flip rows, flip columns), applied as flips first, then the transpose.
_ORIENTATIONS: Final[dict[int, tuple[bool, bool, bool]]] = {
    2: (False, False, True),
    3: (False, True, True),
    4: (False, True, False),
    5: (True, False, False),
    6: (True, True, False),
    7: (True, True, True),
    8: (True, False, True),
}

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
Bits = npt.NDArray[np.bool_]


class PdqSignal(SignalType, VariantHasher, AlternateHasher):
    """PDQ photo hashes. Thresholds are Hamming distances out of 256 bits; past 63, near anything matches."""

    name = "pdq"
    default_threshold = MATCH_THRESHOLD
    #: A quarter of the bits, twice Meta's recommendation: past it unrelated photos start to match each other.
    max_threshold = 63
    hex_length: ClassVar[int] = 64

    @classmethod
    def validate(cls, value: str) -> str:
        return validate_hex(value, cls.hex_length, "a pdq hash")

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return (int(a, 16) ^ int(b, 16)).bit_count()

    @classmethod
    def index_class(cls) -> type[SignalIndex]:
        from bastion.hashing.pdq_index import PdqIndex  # compiled kernel: imported on first use

        return PdqIndex

    @classmethod
    def examples(cls) -> Sequence[str]:
        return (
            "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
            "3c3f1a7ad05f2cc3e3c7e0d24cc61b2b46f5ec91a96a1bb59c3a4d25bb692dcc",
            "0000000000000000000000000000000000000000000000000000000000000000",
        )

    @classmethod
    def matchable(cls, result: HashResult) -> bool:
        return meets_quality_floor(result)

    @classmethod
    def accepts(cls, kind: MediaKind) -> bool:
        return kind is MediaKind.IMAGE

    @classmethod
    def hash_file(cls, path: Path, kind: MediaKind) -> list[HashResult]:
        return cls._results(hash_image(path))

    @classmethod
    def hash_variants(cls, path: Path, kind: MediaKind) -> list[HashResult]:
        return cls._variant_results(hash_image(path))

    @classmethod
    def hash_with_variants(cls, path: Path, kind: MediaKind) -> tuple[list[HashResult], list[HashResult]]:
        h = hash_image(path)  # one decode: every variant comes from the same DCT
        return cls._results(h), cls._variant_results(h)

    @classmethod
    def hash_with_alternates(cls, path: Path, kind: MediaKind, *, variants: bool = False,
                             picture_px: int = 0) -> FileHashes:
        # one decode for the hash, its alternates, its variants and the picture
        hashes = hash_image_with_alternates(path, picture_px=picture_px)
        alternates = [HashResult(cls.name, a.hex(), a.quality) for a in hashes.alternates]
        hma = hashes.hma
        reference = HashResult(cls.name, hma.hex(), hma.quality) if hma.hex() != hashes.hash.hex() else None
        return FileHashes(cls._results(hashes.hash), alternates,
                          cls._variant_results(hashes.hash) if variants else [], reference, hashes.picture)

    @classmethod
    def _results(cls, h: PdqHash) -> list[HashResult]:
        return [HashResult(cls.name, h.hex(), h.quality)]

    @classmethod
    def _variant_results(cls, h: PdqHash) -> list[HashResult]:
        return [HashResult(cls.name, value, h.quality) for value in h.variant_hexes()]


def meets_quality_floor(result: HashResult) -> bool:
    """Whether a PDQ-based hash is good enough to match on: quality unknown, or at least ``MIN_MATCH_QUALITY``."""
    return result.quality is None or result.quality >= MIN_MATCH_QUALITY


@dataclass(frozen=True, slots=True)
class PdqHash:
    """PDQ's 16x16 DCT output (rows: vertical frequency 1..16) and quality; bits and variants come from it."""

    dct: F32
    quality: int

    def hex(self) -> str:
        return bits_to_hex(_bits(self.dct))

    def variant_hexes(self) -> list[str]:
        """The 7 other dihedral hashes, in pdqhash's order: rot90, rot180, rot270, flip-x, -y, +1, -1.

        Mirroring or rotating an image only flips signs of, and/or transposes, its DCT coefficients, so all
        eight come from one decode.
        """
        return [bits_to_hex(_bits(d)) for d in _dihedral(self.dct)]


@dataclass(frozen=True, slots=True)
class ImageHashes:
    """An image's PDQ as Bastion computes it, and the distinct other hashes other tools compute of the same file.

    ``hash`` is what Bastion stores and shows (the picture as it is displayed: EXIF orientation applied, colours
    through the palette or the CMYK conversion). ``alternates`` are how the file's stored pixels hash where a
    reference loader reads them differently (``hash_image_with_alternates`` says which); they are looked up in
    every bank, never stored as the file's hash.
    """

    hash: PdqHash
    alternates: tuple[PdqHash, ...]
    #: The hash HMA (threatexchange's ``pdq_from_file``) computes of this file, by the fast path: ``hash`` or one of
    #: the alternates. What an HMA-compatible ``/h/hash`` answers.
    hma: PdqHash
    #: The decoded picture for a preview, when asked (``_picture``).
    picture: Image.Image | None = None


# ------------------------------------------------------------------------------------------------------------
# Files


def hash_image(path: Path) -> PdqHash:
    """PDQ of an image file by the fast path; ``UnsupportedMedia`` when it is not a readable image, and
    ``MediaOverBudget`` (before any pixel is decoded) when it would decode to more pixels than the budget allows."""
    return _hash_image(path, alternates=False).hash


def hash_image_with_alternates(path: Path, *, picture_px: int = 0) -> ImageHashes:
    """Bastion's PDQ of an image and, from the same decode, the different hashes other tools compute of the file.

    A partner's hash was made by their loader, not ours: threatexchange's ``pdq_from_file`` (what HMA runs)
    ignores the EXIF orientation, reads a palette image's colour indices as grey levels and a CMYK image's
    C, M, Y channels as R, G, B, and clips 16-bit greyscale at 255; most other tools ignore the orientation
    too. Each such reading that gives a different hash is an alternate, matched like the hash itself so the
    partner's hash of this very file is found. An upright RGB or greyscale image has none. With ``picture_px``, the
    decoded pixels also come back as a picture of at most that size (``_picture``).
    """
    return _hash_image(path, alternates=True, picture_px=picture_px)


def _hash_image(path: Path, *, alternates: bool, picture_px: int = 0) -> ImageHashes:
    with budget.image_slot() as limits, _reading_image(path), Image.open(path) as img:
        full_size = img.size
        scale = _decode(img, limits)
        pixels = _bastion_pixels(img)
        luma, factor = _reduced_luma(pixels)
        orientation = _orientation(img)  # after the budget check: a PNG's EXIF is read by decoding all of it
        primary = hash_luma(luma, full_size, scale=scale * factor, orientation=orientation)
        others: list[PdqHash] = []
        as_hma = primary
        if alternates:
            if orientation != 1:
                as_hma = hash_luma(luma, full_size, scale=scale * factor)
                others.append(as_hma)
            if (hma := _hma_pixels(img)) is not None:
                hma_luma, hma_factor = _reduced_luma(hma)
                as_hma = hash_luma(hma_luma, full_size, scale=scale * hma_factor)
                others.append(as_hma)
        picture = _picture(pixels, orientation, picture_px) if picture_px > 0 else None
        decoded = img.width * img.height  # after a draft, the reduced size
    budget.give_back(decoded)
    return ImageHashes(primary, _distinct(primary, others), as_hma, picture)


#: EXIF orientation -> the transposition that makes the picture upright (as ``ImageOps.exif_transpose``).
_UPRIGHT: Final = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                   7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def _picture(pixels: Image.Image, orientation: int, longest: int) -> Image.Image:
    """The decoded pixels as a picture to show: at most ``longest`` on a side, upright, RGB.

    Made from the decode hashing did, not a second one: a JPEG was decoded at the scale that keeps 256 pixels on
    its short side, so a picture of a large, nearly square JPEG can be smaller than ``longest`` (at least 256 on
    its short side). Reduced before it is turned upright and converted, so those work on the small copy.
    """
    width, height = pixels.size
    ratio = longest / max(width, height)
    if ratio < 1:
        size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        small = pixels.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)  # what ``thumbnail`` does
    else:
        small = pixels.copy()
    if orientation in _UPRIGHT:
        small = small.transpose(_UPRIGHT[orientation])
    return small if small.mode == "RGB" else small.convert("RGB")


def _distinct(primary: PdqHash, others: Sequence[PdqHash]) -> tuple[PdqHash, ...]:
    """The alternates whose bits differ from the primary's and from each other's, in order."""
    seen = {primary.hex()}
    kept: list[PdqHash] = []
    for other in others:
        if (value := other.hex()) not in seen:
            seen.add(value)
            kept.append(other)
    return tuple(kept)


def hash_image_full_decode(path: Path) -> tuple[str, int]:
    """The baseline: ``pdqhash`` over every decoded pixel (what HMA / ThreatExchange do), as (hex, quality).

    EXIF orientation is applied first (a no-op for images without it, so on those this is exactly
    ThreatExchange's ``pdq_from_file``).
    """
    import pdqhash
    from PIL import ImageOps

    with _reading_image(path), Image.open(path) as img:
        oriented = ImageOps.exif_transpose(img) if _orientation(img) != 1 else img
        rgb = np.asarray(oriented if oriented.mode == "RGB" else oriented.convert("RGB"))
    vector, quality = pdqhash.compute(rgb)
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex(), int(quality)


@contextmanager
def _reading_image(path: Path) -> Iterator[None]:
    """Decoding errors as ``UnsupportedMedia``, worded for the user: no decoder text naming the (temporary) path."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise MediaOverBudget(f"image refused as a possible decompression bomb: {short_reason(exc)}",
                              "Pillow's MAX_IMAGE_PIXELS") from None
    except UnsupportedMedia:
        raise
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise UnsupportedMedia(f"cannot read {path.name}: {short_reason(exc)}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error) as exc:
        raise UnsupportedMedia(f"not a readable image: {short_reason(exc)}") from None


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not make the picture unhashable
        return 1
    return value if isinstance(value, int) and value in _ORIENTATIONS else 1


def _decode(img: Image.Image, limits: budget.MediaBudget | None = None) -> int:
    """Ask the decoder for the smallest useful scale; returns it (full size / decoded size).

    JPEGs scale in the decoder (1/2, 1/4, 1/8); whatever is still more than twice ``MIN_DECODED_SIDE`` (every
    non-JPEG, and JPEGs beyond 1/8) is box-reduced later by ``_reduced_luma``. The size to decode is checked
    against ``limits`` first: a 12,000-pixel-square PNG is refused from its header, a JPEG of that size decodes
    at 1/8.
    """
    width, height = img.size
    scale = 1
    wanted = min(width, height) // MIN_DECODED_SIDE
    if wanted >= 2:
        power = 1 << min(3, wanted.bit_length() - 1)
        drafted = img.draft("RGB", (width // power, height // power))
        if drafted is not None:
            scale = round(width / drafted[1][2])
    (limits or budget.current()).check_image(*img.size)  # after a draft, the size it will decode at
    return scale


def _bastion_pixels(img: Image.Image) -> Image.Image:
    """The decoded image in colours: palettes through their palette, CMYK to RGB, wide greyscale scaled to 8 bits."""
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in _WIDE_MODES:
        return _to_8bit(img)
    return img.convert("RGB")


def _hma_pixels(img: Image.Image) -> Image.Image | None:
    """The decoded image as threatexchange's ``pdq_from_file`` (so HMA) reads it, where that differs from ours.

    It hands Pillow's own array to ``pdqhash``, which weighs its first three channels as R, G, B: a palette
    image's indices count as grey levels, CMYK's C, M, Y as R, G, B; 16-bit greyscale is first converted to RGB,
    which clips at 255. ``None`` where the result is ours (L, RGB, RGBA, LA, bilevel, whose 0/1 levels give our
    bits) or where that loader fails (PA, 32-bit, float), so no partner has such a hash.
    """
    if img.mode == "P":
        return Image.fromarray(np.asarray(img))  # the indices, as an L image
    if img.mode in _HMA_CHANNEL_MODES:
        return img
    if img.mode == "I;16":
        return img.convert("RGB")
    return None


def _reduced_luma(pixels: Image.Image) -> tuple[F32, int]:
    """PDQ's float luma of decoded pixels, box-reduced by the whole factor that keeps ``MIN_DECODED_SIDE``; returns
    it and the factor. Multi-channel pixels are weighed on their first three channels, as ``pdqhash`` does."""
    factor = min(pixels.size) // MIN_DECODED_SIDE
    if factor >= 2:
        pixels = pixels.reduce(factor)
    else:
        factor = 1
    if pixels.mode == "L":
        return np.asarray(pixels, dtype=np.float32), factor
    return np.asarray(pixels, dtype=np.float32)[..., :3] @ _LUMA, factor


def _to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float greyscale image as 8-bit ``L``, keeping its contrast.

    Values already within 0..255 are kept; 16-bit ranges (0..65535) lose their low byte (``>> 8``); floats in
    0..1 are multiplied by 255; anything else is stretched over its own range. (Pillow's ``convert`` clips at
    255, which turns a 16-bit photo white: quality 0, never matched.)
    """
    values = np.asarray(img)
    if values.dtype.kind == "f":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    scaled: npt.NDArray[np.float64]
    if values.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        scaled = values * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        scaled = values.astype(np.float64)
    elif lo >= 0.0 and hi <= 65535.0:
        scaled = np.floor(values / 256.0)
    elif hi > lo:
        scaled = (values - lo) * (255.0 / (hi - lo))
    else:
        scaled = np.zeros(values.shape, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


# ------------------------------------------------------------------------------------------------------------
# PDQ from pixels


def hash_rgb(rgb: U8) -> PdqHash:
    """PDQ of an ``(H, W, 3)`` uint8 RGB array (a video frame, say), exactly as the reference computes it."""
    luma = np.asarray(rgb, dtype=np.float32) @ _LUMA
    return hash_luma(luma, (rgb.shape[1], rgb.shape[0]))


def hash_luma(luma: F32, full_size: tuple[int, int], *, scale: int = 1, orientation: int = 1) -> PdqHash:
    """PDQ of a luma array that is the ``(width, height) = full_size`` image decoded at ``1/scale``.

    ``orientation`` is an EXIF orientation (1-8) to apply first.
    """
    width, height = full_size
    if min(width, height) < MIN_HASHABLE_SIDE:
        return PdqHash(np.zeros((16, 16), dtype=np.float32), 0)
    transpose, flip_rows, flip_cols = _ORIENTATIONS.get(orientation, (False, False, False))
    rows = _axis_operator(height, scale, flip_rows)
    cols = _axis_operator(width, scale, flip_cols)
    if rows.shape[1] != luma.shape[0] or cols.shape[1] != luma.shape[1]:
        raise ValueError(f"luma of shape {luma.shape} is not {full_size} at 1/{scale}")
    grid: F32 = (rows @ luma @ cols.T).astype(np.float32, copy=False)
    if transpose:
        grid = grid.T
    dct: F32 = (_DCT @ grid @ _DCT.T).astype(np.float32, copy=False)
    return PdqHash(dct, _quality(grid))


@functools.lru_cache(maxsize=256)
def _axis_operator(n: int, scale: int, flipped: bool) -> F32:
    """PDQ's per-axis blur-and-sample as a ``64 x ceil(n / scale)`` matrix, for an axis of ``n`` pixels.

    Two passes of PDQ's box filter (window ``ceil(n / 128)``, shrinking at the edges), then the sample at
    ``floor((i + 0.5) * n / 64)``; each column sums the weights of the full-size pixels its decoded pixel
    covers.
    ``flipped`` builds it for the mirrored axis, applied to the unmirrored pixels.
    """
    window = (n + 2 * _GRID - 1) // (2 * _GRID)
    lo, hi = _box_window(n, window)
    samples = ((np.arange(_GRID) + 0.5) * n / _GRID).astype(np.int64)
    weights = np.zeros((_GRID, n), dtype=np.float64)
    weights[np.arange(_GRID), samples] = 1.0
    weights = _box_transpose(_box_transpose(weights, lo, hi), lo, hi)
    if flipped:
        weights = weights[:, ::-1]
    blocks = -(-n // scale)
    padded = np.zeros((_GRID, blocks * scale), dtype=np.float64)
    padded[:, :n] = weights
    return np.ascontiguousarray(padded.reshape(_GRID, blocks, scale).sum(axis=2), dtype=np.float32)


def _box_window(n: int, window: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First and last input averaged into each output of PDQ's 1-D box filter (centred, clipped at edges)."""
    half = (window + 2) // 2
    out = np.arange(n, dtype=np.int64)
    return np.maximum(0, out - (window - half)), np.minimum(n - 1, out + half - 1)


def _box_transpose(rows: F64, lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64]) -> F64:
    """``rows @ B`` for the box-filter matrix ``B``: each output spreads its weight evenly over its window."""
    k, n = rows.shape
    spread = rows / (hi - lo + 1)
    base = (np.arange(k, dtype=np.int64) * (n + 1))[:, None]
    size = k * (n + 1)
    diff: F64 = np.bincount((base + lo).ravel(), weights=spread.ravel(), minlength=size).astype(np.float64)
    diff -= np.bincount((base + hi + 1).ravel(), weights=spread.ravel(), minlength=size)
    return np.cumsum(diff.reshape(k, n + 1), axis=1)[:, :n]


def _dct_matrix() -> F32:
    """Rows 1..16 of the 64-point DCT-II, scaled as PDQ scales them."""
    freq = np.arange(1, 17, dtype=np.float64)[:, None]
    pos = np.arange(_GRID, dtype=np.float64)[None, :]
    return (math.sqrt(2.0 / _GRID) * np.cos(math.pi / (2 * _GRID) * freq * (2 * pos + 1))).astype(np.float32)


_DCT: Final = _dct_matrix()


def _quality(grid: F32) -> int:
    """PDQ's quality: the sum of significant gradients of the 64x64 image, truncated as the reference does."""
    down = np.trunc((grid[:-1, :] - grid[1:, :]) * np.float32(100) / np.float32(255))
    across = np.trunc((grid[:, :-1] - grid[:, 1:]) * np.float32(100) / np.float32(255))
    total = int(np.abs(down).sum(dtype=np.float64)) + int(np.abs(across).sum(dtype=np.float64))
    return min(100, total // 90)


def _bits(dct: F32) -> Bits:
    """Bit ``16 * i + j``: coefficient ``(i, j)`` is above the median (the 128th smallest, as Torben's)."""
    flat = dct.ravel()
    median = np.partition(flat, 127)[127]
    return np.asarray(flat > median)


def bits_to_hex(bits: Bits) -> str:
    """256 bits (bit k = coefficient k) as ThreatExchange's hex: the number sum(bit_k * 2**k), big-endian."""
    return np.packbits(bits[::-1]).tobytes().hex()


_ODD: Final = (np.arange(16) % 2 == 1)
_ROW_SIGN: Final = np.where(_ODD, 1.0, -1.0).astype(np.float32)[:, None]  # + on odd rows
_COL_SIGN: Final = np.where(_ODD, 1.0, -1.0).astype(np.float32)[None, :]  # + on odd columns
_CHECKER: Final = np.where(np.add.outer(np.arange(16), np.arange(16)) % 2 == 1, -1.0, 1.0).astype(np.float32)


def _dihedral(dct: F32) -> list[F32]:
    """DCTs of the rotated/mirrored image: rot90, rot180, rot270, flip-x, flip-y, flip+1, flip-1."""
    return [
        (dct * _COL_SIGN).T,
        dct * _CHECKER,
        (dct * _ROW_SIGN).T,
        dct * _ROW_SIGN,
        dct * _COL_SIGN,
        dct.T,
        (dct * _CHECKER).T,
    ]
