"""Hostile media is refused by its budget, with the limit named, before it costs memory or CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hashing import budget
from bastion.hashing.budget import MediaBudget
from bastion.hashing.interfaces import MediaKind
from bastion.hashing.services import hash_path
from bastion.moderation.models import ContentItem
from bastion.web.app import create_app
from tests.factories.hostile import long_video, png_bomb
from tests.factories.media import make_image, make_video

Header = Callable[[Role], dict[str, str]]
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def default_budget() -> Iterator[None]:
    yield
    budget.configure(MediaBudget())  # what a test (or an app it built) configured ends with it


def _in_subprocess(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter (its own peak RSS) and return the JSON it prints last."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONPATH": f"{SRC}:{Path.cwd()}"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_png_bomb_is_refused_from_its_header_without_decoding_it(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1_000_000  # a small upload, 144 megapixels once decoded
    report = _in_subprocess(f"""
import json, resource
from pathlib import Path
from bastion.hashing.services import hash_path
from tests.factories.media import make_image
hash_path(make_image(Path({str(tmp_path)!r}) / "warm.jpg", seed=1, size=(640, 480)))  # imports and kernels loaded
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
signals = hash_path(Path({str(bomb)!r}))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"kind": signals.kind.value, "setting": getattr(signals.over_budget, "setting", None),
                  "errors": signals.errors, "signals": [s.signal_type for s in signals.signals],
                  "growth_kb": after - before}}))
""")
    assert report["kind"] == "image" and report["setting"] == "BASTION_MAX_IMAGE_PIXELS"
    assert "12,000 x 12,000 = 144,000,000 pixels" in str(report["errors"])
    assert report["signals"] == ["md5", "sha256"]  # exact hashes still taken, nothing perceptual from a part of it
    assert int(str(report["growth_kb"])) < 64 * 1024  # it was 758 MB, decoded in full


def test_a_long_video_is_refused_from_its_header_within_a_bounded_cost(tmp_path: Path) -> None:
    video = long_video(tmp_path / "long.mp4")
    assert video.stat().st_size < 100_000
    report = _in_subprocess(f"""
import json, resource
from pathlib import Path
from bastion.hashing.services import hash_path
before = resource.getrusage(resource.RUSAGE_SELF)
signals = hash_path(Path({str(video)!r}))
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"kind": signals.kind.value, "setting": getattr(signals.over_budget, "setting", None),
                  "errors": signals.errors, "growth_kb": after.ru_maxrss - before.ru_maxrss}}))
""")
    assert report["kind"] == "video" and report["setting"] == "BASTION_MAX_VIDEO_SECONDS"
    assert "runs past 7," in str(report["errors"]) and "at most 3,600" in str(report["errors"])  # two hours
    assert int(str(report["growth_kb"])) < 128 * 1024  # FFmpeg loaded and the header read; no frame kept


def test_the_budget_counts_decoded_pixels_so_a_large_jpeg_decodes_reduced(tmp_path: Path) -> None:
    budget.configure(MediaBudget(max_image_pixels=1_000_000))
    jpeg = make_image(tmp_path / "big.jpg", seed=3, size=(2000, 1500))
    png = tmp_path / "big.png"
    with Image.open(jpeg) as img:
        img.save(png)
    assert [s.signal_type for s in hash_path(jpeg).signals] == ["pdq", "md5", "sha256"]  # decoded at 1/4
    refused = hash_path(png)
    assert refused.over_budget is not None and "3,000,000 pixels" in str(refused.over_budget)


@pytest.mark.parametrize(("limits", "setting"), [
    (MediaBudget(max_video_seconds=5), "BASTION_MAX_VIDEO_SECONDS"),
    (MediaBudget(max_video_frames=50), "BASTION_MAX_VIDEO_FRAMES"),
    (MediaBudget(max_video_pixels=1_000_000), "BASTION_MAX_VIDEO_PIXELS"),
    (MediaBudget(max_image_pixels=10_000), "BASTION_MAX_IMAGE_PIXELS"),  # a 160 x 120 frame
])
def test_each_video_limit_refuses_with_its_setting(tmp_path: Path, limits: MediaBudget, setting: str) -> None:
    video = make_video(tmp_path / "v.mp4", seed=5, seconds=8, fps=10)
    assert "video_pdq" in [s.signal_type for s in hash_path(video).signals]  # within the default budget
    budget.configure(limits)
    refused = hash_path(video)
    assert refused.over_budget is not None and refused.over_budget.setting == setting
    assert "video_pdq" not in [s.signal_type for s in refused.signals]


def test_over_budget_uploads_are_refused_over_http_naming_the_limit(
        settings: Settings, db: Database, auth_header: Header, tmp_path: Path) -> None:
    strict = Settings(**{**settings.__dict__, "max_video_seconds": 5})
    bomb = png_bomb(tmp_path / "bomb.png")
    video = make_video(tmp_path / "v.mp4", seed=6, seconds=8, fps=10)
    with TestClient(create_app(strict, db=db)) as client:
        with bomb.open("rb") as f:
            r = client.post("/v1/hash", files={"file": ("b.png", f, "image/png")}, headers=auth_header(Role.ANALYST))
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["limit"] == "BASTION_MAX_IMAGE_PIXELS" and "144,000,000" in r.json()["detail"]
        with video.open("rb") as f:
            r = client.post("/v1/hash", files={"file": ("v.mp4", f, "video/mp4")}, headers=auth_header(Role.ANALYST))
        assert r.status_code == 413 and r.json()["limit"] == "BASTION_MAX_VIDEO_SECONDS"
        data = {"content_id": "bomb-1", "account_id": "a", "account_age": "30", "account_country": "FR",
                "content_type": "image"}
        with bomb.open("rb") as f:
            r = client.post("/v1/content", data=data, files={"media": ("b.png", f, "image/png")},
                            headers=auth_header(Role.PLATFORM))
        assert r.status_code == 413 and r.json()["limit"] == "BASTION_MAX_IMAGE_PIXELS"
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ContentItem)) == 0  # refused: nothing recorded


def test_a_damaged_jpeg_is_an_unreadable_image_not_other(
        client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    good = make_image(tmp_path / "good.jpg", seed=9, size=(320, 240)).read_bytes()
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(good[:2] + b"\x00" * 200 + good[202:])  # start-of-image kept, the headers after it zeroed
    signals = hash_path(damaged)
    assert signals.kind is MediaKind.IMAGE and signals.errors  # what `bastion scan` counts as unreadable
    with damaged.open("rb") as f:
        r = client.post("/v1/hash", files={"file": ("d.jpg", f, "image/jpeg")}, headers=auth_header(Role.ANALYST))
    assert r.status_code == 415 and r.json()["title"] == "Unreadable media"


def test_decodes_wait_for_a_slot() -> None:
    budget.configure(MediaBudget(image_decodes=1))
    with budget.image_slot():
        assert not budget._image_slots.acquire(blocking=False)  # the one slot is taken: a second decode waits
    assert budget._image_slots.acquire(blocking=False)
    budget._image_slots.release()
