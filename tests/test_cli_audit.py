"""``bastion audit checkpoint`` and ``bastion audit verify --checkpoint``, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete

from bastion.core.audit.models import AuditEntry
from bastion.core.db import Database


def bastion(db: Database, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "BASTION_DATABASE_URL": db.url, "CI": "true", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bastion", *args], env=environment, capture_output=True,
                          text=True, timeout=120)


def test_audit_checkpoint_then_cut_off_entries_are_found(db: Database, tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    env = {"BASTION_AUDIT_KEY_FILE": str(key_file)}
    for name in ("B1", "B2", "B3"):
        bastion(db, "bank", "create", name)
    r = bastion(db, "audit", "checkpoint", env=env)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert r.stdout.count("\n") == 1 and line["seq"] == 3 and len(line["mac"]) == 64
    assert key_file.stat().st_mode & 0o777 == 0o600
    marks = tmp_path / "audit.ckpt"
    marks.write_text(r.stdout)
    r = bastion(db, "audit", "verify", "--checkpoint", str(marks), env=env)
    assert r.returncode == 0 and "3 entries verified, 1 checkpoint(s) hold" in r.stderr
    with db.write() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.id == 3))
    assert bastion(db, "audit", "verify").returncode == 0  # the chain alone cannot tell
    r = bastion(db, "audit", "verify", "--checkpoint", str(marks), env=env)
    assert r.returncode == 1 and "entry 3" in r.stderr and "cut back" in r.stderr


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"), ("", "holds no checkpoint"), ("{oops\n", "line 1: not JSON"),
])
def test_audit_verify_with_a_bad_checkpoint_file_is_one_line(db: Database, tmp_path: Path, content: str | None,
                                                             message: str) -> None:
    marks = tmp_path / "audit.ckpt"
    if content is not None:
        marks.write_text(content)
    r = bastion(db, "audit", "verify", "--checkpoint", str(marks), env={"BASTION_AUDIT_KEY_FILE": str(tmp_path / "k")})
    assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_audit_verify_without_the_key_says_which_key(db: Database, tmp_path: Path) -> None:
    marks = tmp_path / "audit.ckpt"
    marks.write_text('{"seq": 0, "head": "0", "at": "x", "mac": "y"}\n')
    r = bastion(db, "audit", "verify", "--checkpoint", str(marks), env={"BASTION_AUDIT_KEY_FILE": str(tmp_path / "k")})
    assert r.returncode == 1 and "no audit key" in r.stderr
    assert not (tmp_path / "k").exists()  # not made up on the spot: every checkpoint would look forged
