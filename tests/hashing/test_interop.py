"""A partner's PDQ of a file, made by the reference tools, matches the same file uploaded to Bastion.

The reference: threatexchange's ``pdq_from_file`` (``pdqhash`` on the pixels as Pillow holds them), which is
what HMA runs on an upload. It ignores the EXIF orientation and reads palette and CMYK pixels otherwise than
Bastion; Bastion keeps its own hash (the picture as displayed) and looks the reference's up as an alternate.
The pictures are synthetic (``tests/factories/camera.py``); the containers are as phones and editors write them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

from bastion.core.auth.roles import Role
from bastion.hashing.interfaces import MediaKind
from bastion.hashing.pdq import (
    MATCH_THRESHOLD,
    MIN_MATCH_QUALITY,
    PdqSignal,
    hash_image,
    hash_image_full_decode,
    hash_image_with_alternates,
)
from bastion.hashing.services import hash_path
from tests.factories.camera import KINDS, file_of_kind, phone_jpeg

Header = Callable[[Role], dict[str, str]]
#: The PDQ README's rule for a compatible hasher (quality >= 80): within 10 bits of the reference.
COMPATIBLE_BITS = 10


def dist(a: str, b: str) -> int:
    return PdqSignal.distance(a, b)


def nearest(path: Path, partner: str) -> int:
    """How far the partner's hash is from the nearest of what Bastion looks up for this file (no variants)."""
    hashes = hash_image_with_alternates(path)
    return min(dist(h.hex(), partner) for h in (hashes.hash, *hashes.alternates))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_phone_photo_with_each_exif_orientation_matches_the_partner_hash(tmp_path: Path,
                                                                          orientation: int) -> None:
    path = phone_jpeg(tmp_path / "IMG_0001.jpg", orientation)
    partner, quality = pdq_from_file(path)
    assert quality >= 80
    assert nearest(path, partner) <= COMPATIBLE_BITS
    assert dist(hash_image_with_alternates(path).hma.hex(), partner) <= COMPATIBLE_BITS
    upright = tmp_path / "upright.png"
    ImageOps.exif_transpose(Image.open(path)).save(upright)
    ours = hash_image(path).hex()  # Bastion's own hash is still of the picture as it is shown
    assert dist(ours, hash_image_full_decode(upright)[0]) <= COMPATIBLE_BITS
    if orientation != 1:
        assert dist(ours, partner) > MATCH_THRESHOLD  # the two readings really differ: the alternate is needed


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_of_file_matches_the_partner_hash(tmp_path: Path, kind: str) -> None:
    path = file_of_kind(tmp_path, kind)
    partner, _ = pdq_from_file(path)
    assert nearest(path, partner) <= COMPATIBLE_BITS
    assert dist(hash_image_with_alternates(path).hma.hex(), partner) <= COMPATIBLE_BITS  # for HMA's /h/hash


@pytest.mark.parametrize("kind", ["cmyk_jpeg", "palette_png", "palette_alpha_png", "gif", "animated_gif"])
def test_where_the_reference_reads_colours_otherwise_bastion_s_own_hash_stays_the_colour_one(
        tmp_path: Path, kind: str) -> None:
    """The reference reads palette indices as grey levels and C, M, Y as R, G, B; Bastion's stored hash is of the
    colours shown (near the RGB original), the reference's reading is only an alternate."""
    path = file_of_kind(tmp_path, kind)
    original = tmp_path / "original.png"
    Image.open(path).convert("RGB").save(original)
    partner, _ = pdq_from_file(path)
    ours = hash_image(path).hex()
    assert dist(ours, pdq_from_file(original)[0]) <= COMPATIBLE_BITS
    assert dist(ours, partner) > MATCH_THRESHOLD
    (alternate,) = hash_image_with_alternates(path).alternates
    assert dist(alternate.hex(), partner) <= COMPATIBLE_BITS and alternate.quality >= MIN_MATCH_QUALITY


def test_a_file_every_tool_reads_alike_has_no_alternates(tmp_path: Path) -> None:
    """The common case (an RGB JPEG, upright) costs nothing more: no second hash to compute or look up."""
    path = phone_jpeg(tmp_path / "plain.jpg", 1)
    assert hash_image_with_alternates(path).alternates == ()
    assert hash_path(path).alternates == []


def test_alternates_are_looked_up_but_not_the_file_s_signals(tmp_path: Path) -> None:
    path = phone_jpeg(tmp_path / "IMG_0006.jpg", 6)
    result = hash_path(path)
    (ours,) = [s for s in result.signals if s.signal_type == "pdq"]
    (alternate,) = result.alternates
    assert ours == PdqSignal.hash_file(path, MediaKind.IMAGE)[0]
    assert alternate.signal_type == "pdq" and dist(alternate.value, pdq_from_file(path)[0]) <= COMPATIBLE_BITS


@pytest.mark.parametrize("make", [
    lambda d: phone_jpeg(d / "IMG_0006.jpg", 6),
    lambda d: phone_jpeg(d / "IMG_0003.jpg", 3),
    lambda d: file_of_kind(d, "animated_gif"),
    lambda d: file_of_kind(d, "cmyk_jpeg"),
])
def test_a_partner_hash_in_an_ordinary_bank_matches_the_upload_over_http(
        client: TestClient, auth_header: Header, tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = make(tmp_path)
    partner, _ = pdq_from_file(path)
    curator = auth_header(Role.CURATOR)
    assert client.post("/v1/banks", json={"name": "PARTNER_TCO"}, headers=curator).status_code == 201  # not dihedral
    r = client.post("/v1/banks/PARTNER_TCO/entries", headers=curator,
                    json={"signal_type": "pdq", "value": partner, "category": "terrorist_content"})
    assert r.status_code == 201, r.text
    with path.open("rb") as f:
        r = client.post("/v1/match", files={"file": (path.name, f, "application/octet-stream")},
                        headers=auth_header(Role.PLATFORM))
    assert r.status_code == 200, r.text
    body = r.json()
    (match,) = body["matches"]
    assert match["bank"] == "PARTNER_TCO" and not match["variant"] and match["distance"] <= COMPATIBLE_BITS
    (shown,) = [s for s in body["signals"] if s["signal_type"] == "pdq"]
    assert shown["value"] == hash_image(path).hex()  # the file's own hash, as before
