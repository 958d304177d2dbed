"""`bastion scan` names every file it could not read: a damaged image is never passed over as "other"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bastion.core.db import Database
from tests.factories.media import make_image
from tests.test_cli import bastion


def test_scan_names_and_counts_damaged_images_and_files_over_the_budget(db: Database, tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    good = make_image(uploads / "good.jpg", seed=31, size=(640, 480)).read_bytes()
    (uploads / "damaged.jpg").write_bytes(good[:2] + b"\x00" * 300 + good[302:])  # the headers after SOI zeroed
    r = bastion(db, "scan", str(uploads))
    assert r.returncode == 0, r.stderr
    assert f"unreadable: {uploads / 'damaged.jpg'}: not a readable image" in r.stderr
    assert "good.jpg" not in r.stderr
    summary = r.stderr[r.stderr.index("scan summary"):]
    assert re.search(r"\b2\b\D+\b0\b\D+\b1\b", summary)  # files 2, matched 0, unreadable 1


def test_scan_applies_the_decoding_budget_from_the_environment(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = make_image(tmp_path / "photo.png", seed=32, size=(640, 480))
    monkeypatch.setenv("BASTION_MAX_IMAGE_PIXELS", "100000")
    r = bastion(db, "scan", str(image))
    assert r.returncode == 0, r.stderr
    assert "unreadable:" in r.stderr and "BASTION_MAX_IMAGE_PIXELS" in r.stderr
