"""Files into banks without glue (hash --csv, bank add), and close names offered for a mistyped bank."""

from __future__ import annotations

from pathlib import Path

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.matching import services as banks
from tests.factories.media import make_image
from tests.test_cli import bastion


def test_hash_csv_imports_into_a_bank_as_it_is(db: Database, tmp_path: Path) -> None:
    image = make_image(tmp_path / "known.jpg", seed=8, size=(320, 240))
    (tmp_path / "post.txt").write_text("Join the Grey Dawn Front at https://grey-dawn.example/join today.\n")
    r = bastion(db, "hash", "--csv", "--category", "terrorist_content", "--source", "referral 12",
                str(image), str(tmp_path / "post.txt"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "signal_type,value,category,source,note"
    assert {line.split(",")[0] for line in lines[1:]} == {"pdq", "md5", "sha256", "text", "url"}
    assert all(line.endswith((",terrorist_content,referral 12,known.jpg", ",terrorist_content,referral 12,post.txt"))
               for line in lines[1:])
    (tmp_path / "hashes.csv").write_text(r.stdout)
    assert bastion(db, "bank", "create", "TERRORIST_CONTENT").returncode == 0
    r = bastion(db, "bank", "import", "TERRORIST_CONTENT", str(tmp_path / "hashes.csv"))
    assert r.returncode == 0 and f"imported {len(lines) - 1} entries" in r.stderr


def test_bank_add_hashes_files_straight_into_a_bank(db: Database, tmp_path: Path) -> None:
    first = make_image(tmp_path / "a.jpg", seed=3, size=(320, 240))
    second = make_image(tmp_path / "b.jpg", seed=4, size=(320, 240))
    assert bastion(db, "bank", "create", "TERRORIST_CONTENT").returncode == 0
    r = bastion(db, "bank", "add", "TERRORIST_CONTENT", str(first), str(second), "--category", "terrorist_content")
    assert r.returncode == 0, r.stderr
    assert "added 6 entries from 2 file(s)" in r.stderr
    exported = bastion(db, "bank", "export", "TERRORIST_CONTENT").stdout.splitlines()
    assert sorted(line.split(",")[0] for line in exported[1:]) == ["md5", "md5", "pdq", "pdq", "sha256", "sha256"]
    assert all(line.endswith((",terrorist_content,,a.jpg", ",terrorist_content,,b.jpg")) for line in exported[1:])
    # one file missing: nothing added
    r = bastion(db, "bank", "add", "TERRORIST_CONTENT", str(make_image(tmp_path / "c.jpg", seed=9)),
                str(tmp_path / "gone.jpg"))
    assert r.returncode == 1 and r.stderr.strip() == f"error: {tmp_path / 'gone.jpg'}: no such file; nothing added"
    assert len(bastion(db, "bank", "export", "TERRORIST_CONTENT").stdout.splitlines()) == 7


def test_a_mistyped_bank_gets_close_names(db: Database, tmp_path: Path) -> None:
    assert bastion(db, "bank", "create", "TERRORIST_CONTENT").returncode == 0
    r = bastion(db, "bank", "disable", "TERRORIST_CONTNET")
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["error: no bank named 'TERRORIST_CONTNET'; did you mean TERRORIST_CONTENT?"]
    r = bastion(db, "bank", "export", "terrorist_content")
    assert r.returncode == 1 and "did you mean TERRORIST_CONTENT?" in r.stderr and r.stdout == ""
    (tmp_path / "h.csv").write_text("signal_type,value\nmd5,d41d8cd98f00b204e9800998ecf8427e\n")
    r = bastion(db, "bank", "import", "TERORIST_CONTENT", str(tmp_path / "h.csv"))
    assert r.returncode == 1 and "did you mean TERRORIST_CONTENT?" in r.stderr and "nothing imported" in r.stderr
    r = bastion(db, "bank", "enable", "NOPE")
    assert r.stderr.splitlines() == ["error: no bank named 'NOPE' (bastion bank list shows them)"]


def test_restricted_bank_names_are_offered_only_to_those_who_may_see_them(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "CSAM_KNOWN", actor=admin, restricted=True)
    banks.create_bank(db, "CSAM_KNOWN_2", actor=admin)
    curator = Principal("token", 1, "curator", Role.CURATOR)
    specialist = Principal("token", 2, "specialist", Role.CHILD_SAFETY)
    with db.read() as session:
        assert banks.close_bank_names(session, "CSAM_KNOWM", curator) == ["CSAM_KNOWN_2"]
        assert banks.close_bank_names(session, "CSAM_KNOWM", specialist) == ["CSAM_KNOWN", "CSAM_KNOWN_2"]
