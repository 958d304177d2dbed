"""The CLI, run as a user would: a real subprocess for output contracts, Typer's runner for the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from bastion.core.audit.models import AuditEntry
from bastion.core.auth.roles import Role
from bastion.core.auth.services import authenticate_token
from bastion.core.db import Database
from tests.factories.media import make_image

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def bastion(db: Database, *args: str, stdin: str | None = None, actor: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would; ``actor``: who runs it (``BASTION_ACTOR``), else the OS user."""
    env = {**os.environ, "BASTION_DATABASE_URL": db.url, "CI": "true", **({"BASTION_ACTOR": actor} if actor else {})}
    return subprocess.run([sys.executable, "-m", "bastion", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_token_create_prints_the_token_alone(db: Database) -> None:
    r = bastion(db, "token", "create", "--role", "platform", "--name", "ingest")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert r.stdout == token + "\n"
    principal = authenticate_token(db, token)
    assert principal is not None and principal.role.value == "platform"


def test_bad_role_is_one_line_and_non_zero(db: Database) -> None:
    r = bastion(db, "token", "create", "--role", "janitor")
    assert r.returncode == 1
    assert r.stdout == ""
    known = ", ".join(role.value for role in Role)  # the CLI lists roles from the enum: a new role needs no edit here
    assert r.stderr.strip().splitlines() == [f"error: unknown role 'janitor' (known: {known})"]
    assert "admin, curator, moderator" in known


def test_bank_import_export_and_bad_line(db: Database, tmp_path: Path) -> None:
    assert bastion(db, "bank", "create", "TERRORIST_CONTENT", "--threshold", "pdq=20").returncode == 0
    good = tmp_path / "good.csv"
    good.write_text(f"signal_type,value,category\npdq,{PDQ},tco\nmd5,d41d8cd98f00b204e9800998ecf8427e,tco\n")
    r = bastion(db, "bank", "import", "TERRORIST_CONTENT", str(good))
    assert r.returncode == 0, r.stderr
    assert "imported 2 entries" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(f"signal_type,value\npdq,{'0' * 64}\npdq,{PDQ[:10]}\n")
    r = bastion(db, "bank", "import", "TERRORIST_CONTENT", str(bad))
    assert r.returncode == 1
    assert "line 3:" in r.stderr and "nothing imported" in r.stderr
    r = bastion(db, "bank", "export", "TERRORIST_CONTENT")
    assert r.stdout.splitlines() == ["signal_type,value,category,source,note", f"pdq,{PDQ},tco,,",
                                     "md5,d41d8cd98f00b204e9800998ecf8427e,tco,,"]
    listed = [json.loads(line) for line in bastion(db, "bank", "list", "--json").stdout.splitlines()]
    assert listed[0]["entries"] == 2
    assert bastion(db, "bank", "import", "NOPE", str(good)).returncode == 1
    assert bastion(db, "bank", "create", "TERRORIST_CONTENT").returncode == 1
    assert bastion(db, "bank", "create", "X2", "--threshold", "pdq").returncode == 1


def test_hash_prints_json_lines(db: Database, tmp_path: Path) -> None:
    img = make_image(tmp_path / "a.jpg", seed=5, size=(320, 240))
    r = bastion(db, "hash", str(img), str(tmp_path / "missing.jpg"))
    assert r.returncode == 1  # one file was missing
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {row["signal_type"] for row in rows} == {"pdq", "md5", "sha256"}
    pdq = next(row for row in rows if row["signal_type"] == "pdq")
    assert pdq["path"] == str(img) and 0 <= pdq["quality"] <= 100 and len(pdq["value"]) == 64
    assert "missing.jpg: no such file" in r.stderr


def test_scan_finds_banked_images(db: Database, tmp_path: Path) -> None:
    known = make_image(tmp_path / "known.jpg", seed=21, size=(640, 480))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    make_image(uploads / "copy.jpg", seed=21, size=(640, 480), quality=50)
    make_image(uploads / "other.jpg", seed=22, size=(640, 480))
    (uploads / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    pdq = json.loads(bastion(db, "hash", str(known)).stdout.splitlines()[0])
    assert pdq["signal_type"] == "pdq"
    bastion(db, "bank", "create", "TERRORIST_CONTENT")
    csv = tmp_path / "bank.csv"
    csv.write_text(f"signal_type,value\npdq,{pdq['value']}\n")
    assert bastion(db, "bank", "import", "TERRORIST_CONTENT", str(csv)).returncode == 0
    r = bastion(db, "scan", str(uploads), "--json")
    assert r.returncode == 0, r.stderr
    rows = {Path(row["path"]).name: row for row in map(json.loads, r.stdout.splitlines())}
    assert [m["bank"] for m in rows["copy.jpg"]["matches"]] == ["TERRORIST_CONTENT"]
    assert rows["other.jpg"]["matches"] == []
    assert rows["junk.jpg"]["error"]
    assert "scan summary" in r.stderr
    assert bastion(db, "scan", str(tmp_path / "nope")).returncode == 1


def test_audit_verify_detects_tampering(db: Database) -> None:
    bastion(db, "bank", "create", "B1")
    bastion(db, "bank", "create", "B2")
    r = bastion(db, "audit", "verify")
    assert r.returncode == 0 and "2 entries verified" in r.stderr
    with db.write() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == 1).values(subject="bank:FORGED"))
    r = bastion(db, "audit", "verify")
    assert r.returncode == 1 and "entry 1" in r.stderr


@pytest.mark.parametrize("args", [["bank", "import", "B1", "/nonexistent.csv"], ["user", "create", "x", "--role", "x"]])
def test_cli_errors_are_one_line(db: Database, args: list[str]) -> None:
    r = bastion(db, *args, stdin="")
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")
