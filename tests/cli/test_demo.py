"""``bastion demo`` as a user runs it: everything on standard output, in order, so a redirect keeps it readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.core.db import Database
from tests.test_cli import bastion


def test_the_demo_tells_its_story_on_one_stream(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_MEDIA_KEY_FILE", str(tmp_path / "media.key"))
    r = bastion(db, "demo", "--workdir", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no narration on another stream, to land out of order when both are redirected
    text = r.stdout
    steps = ["seeded banks", "scan of sample uploads", "8 files scanned", "d = distance", "intake under policy",
             "a moderator decided case", "removal order", "order executed and answered", "Next"]
    assert [text.index(step) for step in steps] == sorted(text.index(step) for step in steps)
