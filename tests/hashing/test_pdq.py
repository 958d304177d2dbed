"""PDQ: agreement with the reference on full decodes, the fast path's 10-bit rule, robustness, refusals."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageOps
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file
from threatexchange.signal_type.pdq.signal import PdqSignal as TxPdqSignal

from bastion.hashing import pdq as pdq_module
from bastion.hashing import services
from bastion.hashing.interfaces import HashResult, InvalidSignalValue, MediaKind, UnsupportedMedia, VariantHasher
from bastion.hashing.pdq import (
    MIN_MATCH_QUALITY,
    PdqSignal,
    hash_image,
    hash_image_full_decode,
    hash_rgb,
)
from tests.factories.media import make_image, synth_array

IMAGE = MediaKind.IMAGE


def pdq(path: Path) -> HashResult:
    (result,) = PdqSignal.hash_file(path, IMAGE)
    return result


def dist(a: str, b: str) -> int:
    return PdqSignal.distance(a, b)


# ---- agreement with the reference --------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "mode", "size"), [
    ("JPEG", "RGB", (640, 480)),
    ("JPEG", "L", (500, 375)),
    ("PNG", "RGB", (300, 400)),
    ("JPEG", "RGB", (1200, 900)),
])
def test_full_decode_is_threatexchange_bit_for_bit(tmp_path: Path, fmt: str, mode: str,
                                                   size: tuple[int, int]) -> None:
    path = make_image(tmp_path / f"a.{fmt.lower()}", seed=3, size=size, fmt=fmt, mode=mode)
    value, quality = hash_image_full_decode(path)
    assert (value, quality) == pdq_from_file(path)
    assert value == TxPdqSignal.hash_from_file(path)


@pytest.mark.parametrize("seed", range(6))
def test_small_images_hash_exactly_as_the_reference(tmp_path: Path, seed: int) -> None:
    """Below 512 pixels on the short side nothing is reduced: the NumPy PDQ is the reference, bit for bit."""
    path = make_image(tmp_path / "a.jpg", seed=seed, size=(480 + 40 * seed, 360 + 25 * seed))
    result = pdq(path)
    assert (result.value, result.quality) == hash_image_full_decode(path)


def test_low_contrast_quality_agrees_with_the_reference(tmp_path: Path) -> None:
    pixels = synth_array(5, (400, 300)).astype(np.float32)
    for contrast in (0.5, 0.1, 0.03):
        flat = np.clip(128 + (pixels - 128) * contrast, 0, 255).astype(np.uint8)
        ours = hash_rgb(flat)
        vector, quality = pdqhash.compute(flat)
        assert ours.quality == quality
        assert ours.hex() == np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()


def test_dihedral_variants_are_pdqhash_s(tmp_path: Path) -> None:
    path = make_image(tmp_path / "a.png", seed=8, size=(320, 240), fmt="PNG")
    vectors, _ = pdqhash.compute_dihedral(np.asarray(Image.open(path).convert("RGB")))
    expected = [np.packbits(np.asarray(v, dtype=np.uint8)).tobytes().hex() for v in vectors]
    assert [pdq(path).value] + [r.value for r in PdqSignal.hash_variants(path, IMAGE)] == expected


# ---- the fast path -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "fmt", "quality"), [
    ((4000, 3000), "JPEG", 92),
    ((2048, 1536), "JPEG", 85),
    ((1920, 1080), "JPEG", 75),
    ((1280, 960), "JPEG", 95),
    ((1600, 1200), "PNG", 0),
    ((1200, 1600), "WEBP", 90),
])
def test_fast_path_is_within_10_bits_of_the_full_decode(tmp_path: Path, size: tuple[int, int], fmt: str,
                                                        quality: int) -> None:
    """The PDQ README's rule for a compatible hasher: within 10 bits of the reference when quality >= 80."""
    for seed in (21, 22):
        path = make_image(tmp_path / f"{seed}.{fmt.lower()}", seed=seed, size=size, fmt=fmt,
                          quality=quality or 90)
        reference, ref_quality = hash_image_full_decode(path)
        result = pdq(path)
        assert ref_quality >= 80
        assert dist(result.value, reference) <= 10
        assert abs((result.quality or 0) - ref_quality) <= 5


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("size", [(400, 300), (1024, 768)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, size: tuple[int, int]) -> None:
    img = Image.fromarray(synth_array(4, size))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    img.save(path, quality=92, exif=exif.tobytes())
    upright = tmp_path / "upright.png"
    ImageOps.exif_transpose(Image.open(path)).save(upright)
    reference, _ = hash_image_full_decode(upright)
    assert dist(pdq(path).value, reference) <= (0 if size[0] < 512 else 10)
    assert hash_image_full_decode(path)[0] == reference


@pytest.mark.parametrize(("fmt", "mode"), [
    ("JPEG", "CMYK"), ("JPEG", "L"), ("PNG", "RGBA"), ("PNG", "LA"), ("PNG", "P"), ("GIF", "P"),
    ("PNG", "I;16"), ("WEBP", "RGB"), ("BMP", "RGB"), ("TIFF", "RGB"),
])
def test_every_common_mode_and_format_hashes(tmp_path: Path, fmt: str, mode: str) -> None:
    original = make_image(tmp_path / "rgb.png", seed=12, size=(600, 450), fmt="PNG")
    img = Image.open(original).convert(mode)
    path = tmp_path / f"x.{fmt.lower()}"
    img.save(path, format=fmt)
    result = pdq(path)
    assert len(result.value) == 64 and result.quality is not None
    assert dist(result.value, pdq(original).value) <= 31


def _wide(grey: np.ndarray, mode: str) -> Image.Image:
    """The 8-bit greyscale pixels as a 16-bit, 32-bit or float image using that mode's whole range."""
    if mode == "I;16":
        return Image.fromarray(grey.astype(np.uint16) * 257)  # 0..65535
    if mode == "I":
        return Image.fromarray(grey.astype(np.int32) * 257)
    return Image.fromarray(grey.astype(np.float32) / 255)  # F: 0.0..1.0


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("I;16", "TIFF"), ("I", "TIFF"), ("F", "TIFF")])
def test_wide_greyscale_images_match_their_8_bit_version(tmp_path: Path, mode: str, fmt: str) -> None:
    """16-bit and float images are scaled to 8 bits, not clipped at 255 (which left a white, unmatchable hash)."""
    grey = np.asarray(Image.fromarray(synth_array(12, (600, 450))).convert("L"))
    eight = tmp_path / "eight.png"
    Image.fromarray(grey).save(eight)
    wide = tmp_path / f"wide.{fmt.lower()}"
    _wide(grey, mode).save(wide, format=fmt)
    assert Image.open(wide).mode == mode
    result, reference = pdq(wide), pdq(eight)
    assert result.quality is not None and result.quality >= MIN_MATCH_QUALITY
    assert dist(result.value, reference.value) <= 31


# ---- robustness --------------------------------------------------------------------------------------------


@pytest.fixture
def banked(tmp_path: Path) -> Path:
    return make_image(tmp_path / "banked.jpg", seed=40, size=(1024, 768), quality=90)


def test_resized_and_recompressed_copies_match(banked: Path, tmp_path: Path) -> None:
    original = pdq(banked).value
    img = Image.open(banked)
    small = tmp_path / "small.jpg"
    img.resize((400, 300), Image.Resampling.LANCZOS).save(small, quality=80)
    big = tmp_path / "big.png"
    img.resize((2048, 1536), Image.Resampling.BICUBIC).save(big)
    lossy = tmp_path / "lossy.jpg"
    img.save(lossy, quality=50)
    for copy in (small, big, lossy):
        assert dist(pdq(copy).value, original) <= 31


@pytest.mark.parametrize("transpose", [
    Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
])
def test_flipped_copies_match_through_the_variants(banked: Path, tmp_path: Path,
                                                   transpose: Image.Transpose) -> None:
    flipped = tmp_path / "flipped.jpg"
    Image.open(banked).transpose(transpose).save(flipped, quality=85)
    query = pdq(flipped).value
    assert dist(query, pdq(banked).value) > 31  # a plain PDQ does not see it ...
    variants = PdqSignal.hash_variants(banked, IMAGE)
    assert len(variants) == 7
    assert min(dist(query, v.value) for v in variants) <= 31  # ... a dihedral bank does


def test_unrelated_images_do_not_match(tmp_path: Path) -> None:
    values = [pdq(make_image(tmp_path / f"{s}.jpg", seed=s, size=(800, 600))).value for s in range(100, 108)]
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            assert dist(a, b) > 31


def test_flat_images_are_hashed_but_not_matchable(tmp_path: Path) -> None:
    path = tmp_path / "flat.png"
    Image.new("RGB", (640, 480), (90, 120, 200)).save(path)
    result = pdq(path)
    assert result.quality is not None and result.quality < MIN_MATCH_QUALITY
    assert not PdqSignal.matchable(result)
    assert PdqSignal.matchable(HashResult("pdq", result.value, MIN_MATCH_QUALITY))


def test_tiny_images_get_the_zero_hash(tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    Image.new("RGB", (4, 40), (1, 2, 3)).save(path)
    assert pdq(path) == HashResult("pdq", "0" * 64, 0)


# ---- refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [
    b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8,  # JPEG magic, garbage after
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
    b"just some text, not a picture\n",
    b"",
])
def test_unreadable_files_are_unsupported_media(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bastion-upload-x1y2" / "bad.jpg"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(UnsupportedMedia, match="not a readable image") as raised:
        PdqSignal.hash_file(path, IMAGE)
    message = str(raised.value)  # shown to whoever uploaded the file: no server path in it
    assert str(path.parent) not in message and str(tmp_path) not in message and "/" not in message


def test_truncated_jpeg_is_unsupported_media(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(synth_array(1, (800, 600))).save(buf, "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(UnsupportedMedia):
        PdqSignal.hash_file(path, IMAGE)


def test_missing_file_is_unsupported_media(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match="cannot read") as raised:
        PdqSignal.hash_file(tmp_path / "nope.jpg", IMAGE)
    assert str(tmp_path) not in str(raised.value)


def test_decompression_bombs_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_image(tmp_path / "a.jpg", seed=1, size=(640, 480))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # 640 x 480 is over twice that
    with pytest.raises(UnsupportedMedia, match="decompression bomb"):
        hash_image(path)


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "64 hex digits, got 3"),
    ("f" * 65, "64 hex digits, got 65"),
    ("g" * 64, "only hex digits"),
    ("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b2 ", "64 hex digits, got 63"),
    ("0x" + "f" * 62, "only hex digits"),
])
def test_malformed_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(InvalidSignalValue, match=message):
        PdqSignal.validate(value)


def test_values_are_lowercased() -> None:
    value = PdqSignal.examples()[0]
    assert PdqSignal.validate(value.upper()) == value


# ---- variants in one decode -----------------------------------------------------------------------------


def test_hash_with_variants_decodes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_image(tmp_path / "a.jpg", seed=8, size=(640, 480))
    expected = (PdqSignal.hash_file(path, IMAGE), PdqSignal.hash_variants(path, IMAGE))
    decodes: list[Path] = []
    real, real_with_alternates = pdq_module.hash_image, pdq_module.hash_image_with_alternates

    def counting(p: Path) -> pdq_module.PdqHash:
        decodes.append(p)
        return real(p)

    def counting_with_alternates(p: Path, **kwargs: int) -> pdq_module.ImageHashes:
        decodes.append(p)
        return real_with_alternates(p, **kwargs)

    monkeypatch.setattr(pdq_module, "hash_image", counting)
    monkeypatch.setattr(pdq_module, "hash_image_with_alternates", counting_with_alternates)
    assert PdqSignal.hash_with_variants(path, IMAGE) == expected
    assert decodes == [path]
    result = services.hash_path(path, variants=True)  # the hash, its alternates and its variants: one decode
    assert decodes == [path, path]
    assert [s for s in result.signals if s.signal_type == "pdq"] == expected[0]
    assert result.variants == expected[1]


def test_a_file_rewritten_in_place_is_hashed_afresh(tmp_path: Path) -> None:
    """No decode is cached across calls: same path, inode, size and mtime, new pixels, new hash."""
    path = tmp_path / "same.bmp"
    Image.fromarray(synth_array(1, (320, 240))).save(path)
    before = os.stat(path)
    first = pdq(path).value
    with path.open("r+b") as f:  # the same inode
        buf = io.BytesIO()
        Image.fromarray(synth_array(2, (320, 240))).save(buf, format="BMP")
        f.write(buf.getvalue())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size
    second = pdq(path).value
    assert second != first and second == hash_image_full_decode(path)[0]


def test_variant_hashers_get_a_default_hash_with_variants(tmp_path: Path) -> None:
    class Mirrors(VariantHasher):
        @classmethod
        def accepts(cls, kind: MediaKind) -> bool:
            return True

        @classmethod
        def hash_file(cls, path: Path, kind: MediaKind) -> list[HashResult]:
            return [HashResult("mirrors", "plain")]

        @classmethod
        def hash_variants(cls, path: Path, kind: MediaKind) -> list[HashResult]:
            return [HashResult("mirrors", "flipped")]

    assert Mirrors.hash_with_variants(tmp_path / "any", IMAGE) == (
        [HashResult("mirrors", "plain")], [HashResult("mirrors", "flipped")])


def test_accepts_images_only() -> None:
    assert PdqSignal.accepts(MediaKind.IMAGE)
    assert not any(PdqSignal.accepts(k) for k in (MediaKind.VIDEO, MediaKind.TEXT, MediaKind.OTHER))
