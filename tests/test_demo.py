from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from bastion.cli import _print_summary, load_matcher
from bastion.core.db import Database
from bastion.demo import run_demo


def test_demo_seeds_banks_and_finds_each_kind_of_copy(db: Database, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the demo's media key file is written where it runs
    quiet = Console(file=open(tmp_path / "out.txt", "w"), width=200)  # noqa: SIM115 - closed with the test
    summary = run_demo(db, tmp_path / "demo", out=quiet, err=quiet, load_matcher=load_matcher,
                       print_summary=_print_summary)
    assert (summary.files, summary.matched, summary.unreadable) == (8, 6, 0)
    assert summary.by_bank == {"TERRORIST_CONTENT": 5, "CSAM_KNOWN": 1}
    text = (tmp_path / "out.txt").read_text()
    assert "mirrored" in text
    assert "text d=" in text and "url d=0" in text  # the edited post matches as text and by its URL
    # the moderation step: known copies blocked, a near copy held and decided by a moderator, the rest published
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│ demo-")}
    assert "block" in rows["demo-photo-resized"] and "review" in rows["demo-photo-contrast"]
    # the intake answer says what was found, never which rule or bank (docs/policy: public reasons)
    assert "allow" in rows["demo-holiday"] and "child sexual abuse material" in rows["demo-csam-standin"]
    assert "a moderator decided case 1: the content is now removed" in text
    assert (tmp_path / "bastion-media.key").exists()
    # A second run reuses the banks instead of failing or duplicating them.
    again = run_demo(db, tmp_path / "demo", out=quiet, err=quiet, load_matcher=load_matcher,
                     print_summary=_print_summary)
    assert again.by_bank == summary.by_bank
    quiet.file.close()
