"""SQLite files hold the hash lists and the audit log: they are created readable by their owner only, and their WAL
is copied back by a worker, not by a request's commit."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from bastion.core.db import WAL_AUTOCHECKPOINT_PAGES, Database, migrate


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_database_and_its_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which alone would make them 0644
    try:
        url = f"sqlite:///{tmp_path / 'bastion.db'}"
        migrate(url)
        db = Database(url)
        with db.write() as session:  # a write, so the -wal and -shm files exist while the connection is open
            session.execute(text("CREATE TABLE probe (x INTEGER)"))
            files = {p.name: _mode(p) for p in tmp_path.iterdir()}
        db.dispose()
    finally:
        os.umask(old)
    assert files == {"bastion.db": 0o600, "bastion.db-wal": 0o600, "bastion.db-shm": 0o600}


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    Database(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o640


def test_the_wal_is_copied_back_by_the_checkpoint_not_by_a_commit(tmp_path: Path) -> None:
    """Commits leave the WAL to the app's worker (``Database.checkpoint``) up to a high threshold, so no request
    pays for copying it back; the checkpoint then puts every committed page in the database file."""
    db = Database(f"sqlite:///{tmp_path}/b.db")
    with db.write() as session:
        session.execute(text("CREATE TABLE t (x BLOB)"))
        for _ in range(2000):  # about 2,000 pages: past SQLite's default threshold of 1,000
            session.execute(text("INSERT INTO t VALUES (randomblob(1000))"))
    main, wal = tmp_path / "b.db", tmp_path / "b.db-wal"
    assert main.stat().st_size < 100_000 < wal.stat().st_size  # committed, still in the WAL only
    db.checkpoint()
    assert main.stat().st_size > 2_000_000
    with db.read() as session:
        assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == WAL_AUTOCHECKPOINT_PAGES
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 2000
    db.dispose()
