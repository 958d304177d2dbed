"""SQLite files hold the hash lists and the audit log: they are created readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from bastion.core.db import Database, migrate


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
