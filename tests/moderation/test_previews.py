"""An upload's preview is made from the pixels hashing decoded: one decode per upload, within the budget, upright,
no larger than ``PREVIEW_PX``, for every image format hashing reads."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.sealing import Sealer, decode_key
from bastion.hashing import budget
from bastion.hashing.budget import MediaBudget
from bastion.hashing.services import hash_path
from bastion.moderation.models import MediaPreview
from bastion.moderation.previews import PREVIEW_PX, blurred, make_preview
from tests.factories.camera import phone_jpeg
from tests.factories.media import make_image

Header = Callable[[Role], dict[str, str]]


@pytest.fixture(autouse=True)
def _default_budget() -> Iterator[None]:
    yield
    budget.configure(MediaBudget())


def _opened(jpeg: bytes) -> Image.Image:
    with Image.open(io.BytesIO(jpeg)) as img:
        img.load()
        return img


def test_an_upload_is_decoded_once_and_keeps_its_preview(client: TestClient, auth_header: Header, db: Database,
                                                         settings: Settings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_image(tmp_path / "photo.jpg", seed=7, size=(1280, 960))
    opened: list[object] = []
    real_open = Image.open

    def counting_open(fp: Any, *args: Any, **kwargs: Any) -> Image.Image:
        opened.append(fp)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    with path.open("rb") as f:
        answer = client.post("/v1/content", files={"media": (path.name, f, "image/jpeg")},
                             data={"content_id": "one-decode", "account_id": "a1", "account_age": "30",
                                   "account_country": "DE", "content_type": "image"},
                             headers=auth_header(Role.PLATFORM))
    assert answer.status_code == 200, answer.text
    assert len(opened) == 1  # hashing's decode; the preview used to decode the file a second time
    monkeypatch.undo()
    with db.read() as session:
        kept = session.get(MediaPreview, "one-decode")
        assert kept is not None
        jpeg = Sealer(decode_key(settings.media_key)).open(kept.sealed, "one-decode")
    shown = _opened(jpeg)
    assert (shown.width, shown.height) == (kept.width, kept.height) == (PREVIEW_PX, 360)
    assert shown.mode == "RGB"
    assert _opened(blurred(jpeg)).mode == "L"  # the blurred, greyscale form reviewers see first


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_phone_photo_preview_is_upright_and_looks_like_the_photo(tmp_path: Path, orientation: int) -> None:
    path = phone_jpeg(tmp_path / "IMG.jpg", orientation, size=(2016, 1512))
    preview = make_preview(hash_path(path, picture_px=PREVIEW_PX))
    assert preview is not None
    with Image.open(path) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
    assert max(preview.width, preview.height) <= PREVIEW_PX
    assert (preview.width > preview.height) == (upright.width > upright.height)
    expected = np.asarray(upright.resize((preview.width, preview.height), Image.Resampling.BOX), dtype=np.float32)
    shown = np.asarray(_opened(preview.jpeg), dtype=np.float32)
    assert np.abs(shown - expected).mean() < 8  # the same picture, the same way up (a wrong turn is far off)


@pytest.mark.parametrize("mode, fmt", [("P", "PNG"), ("RGBA", "PNG"), ("L", "PNG"), ("RGB", "WEBP"),
                                        ("RGB", "GIF"), ("L", "JPEG")])
def test_every_format_hashing_reads_gets_an_rgb_preview_within_the_size(tmp_path: Path, mode: str,
                                                                        fmt: str) -> None:
    source = make_image(tmp_path / "src.png", seed=3, size=(900, 600))
    path = tmp_path / f"upload.{fmt.lower()}"
    with Image.open(source) as img:
        img.convert(mode).save(path, fmt)
    media = hash_path(path, picture_px=PREVIEW_PX)
    assert not media.errors
    preview = make_preview(media)
    assert preview is not None
    if fmt == "JPEG":  # decoded by hashing at 1/2 (300 px on the short side, its floor being 256): not enlarged
        assert (preview.width, preview.height) == (450, 300)
    else:
        assert (preview.width, preview.height) == (PREVIEW_PX, 320)
    assert _opened(preview.jpeg).mode == "RGB"


def test_a_small_image_is_not_enlarged(tmp_path: Path) -> None:
    media = hash_path(make_image(tmp_path / "small.jpg", seed=4, size=(200, 150)), picture_px=PREVIEW_PX)
    preview = make_preview(media)
    assert preview is not None and (preview.width, preview.height) == (200, 150)


def test_an_image_over_the_decode_budget_has_no_preview_and_is_never_decoded(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    with Image.open(make_image(tmp_path / "big.jpg", seed=5, size=(1200, 900))) as img:
        img.save(path, "PNG")  # a PNG decodes at full size: 1.08 MP
    budget.configure(MediaBudget(max_image_pixels=500_000))
    media = hash_path(path, picture_px=PREVIEW_PX)
    assert media.over_budget is not None and media.picture is None
    assert make_preview(media) is None


def test_hashing_keeps_no_picture_unless_asked(tmp_path: Path) -> None:
    media = hash_path(make_image(tmp_path / "photo.jpg", seed=6, size=(640, 480)))
    assert media.picture is None and make_preview(media) is None
