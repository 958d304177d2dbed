from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from bastion.cli import load_matcher
from bastion.core.db import Database
from bastion.demo import run_demo


def test_demo_seeds_banks_and_finds_each_kind_of_copy(db: Database, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the demo's media key file is written where it runs
    quiet = Console(file=open(tmp_path / "out.txt", "w"), width=80)  # noqa: SIM115 - closed with the test
    summary = run_demo(db, tmp_path / "demo", console=quiet, load_matcher=load_matcher)
    assert (summary.files, summary.matched, summary.unreadable) == (8, 6, 0)
    assert summary.by_bank == {"TERRORIST_CONTENT": 5, "CSAM_KNOWN": 1}
    quiet.file.flush()
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
    again = run_demo(db, tmp_path / "demo", console=quiet, load_matcher=load_matcher)
    assert again.by_bank == summary.by_bank
    quiet.file.close()


def test_demo_reads_at_80_columns_and_ends_with_what_to_do_next(db: Database, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "out.txt").open("w") as sink:
        run_demo(db, tmp_path / "demo", console=Console(file=sink, width=80), load_matcher=load_matcher)
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    # each upload's "why" takes two lines at most (the rule, the nearest match), the category not repeated
    intake = lines[next(i for i, line in enumerate(lines) if "intake under policy" in line):]
    intake = intake[:next(i for i, line in enumerate(intake) if line.startswith("└"))]
    first = next(i for i, line in enumerate(intake) if line.startswith("│ demo-photo-resized"))
    assert intake[first + 1].startswith("│ ") and not intake[first + 2].startswith("│  ")
    assert "terrorist_content" not in "".join(intake[first:first + 2])
    assert any("d = distance" in line for line in lines)  # a PDQ distance said in words, once
    # the hints come once, at the end, not between the tables
    assert sum("Next" in line for line in lines) == 1
    next_at = next(i for i, line in enumerate(lines) if line.strip() == "Next")
    assert next_at > max(i for i, line in enumerate(lines) if line.startswith("└"))
    assert all(line.startswith("  bastion ") for line in lines[next_at + 1:next_at + 4])  # none wrapped
    before = "\n".join(lines[:next_at])
    assert "bastion token create" not in before and "bastion user create" not in before
