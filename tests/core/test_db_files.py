"""SQLite files hold the hash lists and the audit log: they are created readable by their owner only, and their WAL
is copied back by a worker, not by a request's commit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bastion.core import db as db_module
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


def _wal_generation(wal: Path) -> int:
    """The WAL header's checkpoint sequence number (bytes 12-15, big-endian: sqlite.org/fileformat2.html#walformat),
    which SQLite moves each time it starts the WAL again."""
    return int.from_bytes(wal.read_bytes()[12:16], "big")


def _fill_wal(db: Database, rows: int) -> None:
    with db.write() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS t (x BLOB)"))
        for _ in range(rows):  # a page each
            session.execute(text("INSERT INTO t VALUES (randomblob(1000))"))


def test_a_round_starts_the_wal_again_itself_so_no_commit_syncs_its_header(tmp_path: Path) -> None:
    """Once the WAL holds ``restart_pages``, the round copies it all and writes the new WAL's first frame itself
    (SQLite syncs the header of a new WAL at its first write): the WAL has started again before any commit comes,
    and the next commit appends to it."""
    db = Database(f"sqlite:///{tmp_path}/b.db")
    _fill_wal(db, 300)
    wal = tmp_path / "b.db-wal"
    generation = _wal_generation(wal)
    db.checkpoint(restart_pages=100)  # four rows a page: under the threshold, copied back, not started again
    assert _wal_generation(wal) == generation
    db.checkpoint(restart_pages=50)
    assert _wal_generation(wal) == generation + 1
    with db.read() as session:
        assert session.execute(text("PRAGMA user_version")).scalar() == 0  # written back unchanged
    _fill_wal(db, 10)
    assert _wal_generation(wal) == generation + 1  # the commit appended: the restart was the round's
    with db.read() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 310
    db.dispose()


def _in_another_process(db_path: Path, script: str) -> subprocess.Popen[str]:
    """A Python process with a plain sqlite3 connection ``c`` to the database (as the CLI would have)."""
    code = f"import sqlite3, sys\nc = sqlite3.connect({str(db_path)!r}, timeout=0.1, isolation_level=None)\n{script}"
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_a_round_neither_waits_for_another_process_writing_nor_loses_what_it_wrote(tmp_path: Path) -> None:
    """Another process holding SQLite's write lock (the CLI): the round does not wait for it (the restart is left
    to the next round) and the server's writers are not held up. Afterwards another process opening and closing the
    database finds the WAL in use and leaves it, and sees every commit: nothing of the round drops SQLite's file
    locks (closing any descriptor of the file would drop all of this process's)."""
    db = Database(f"sqlite:///{tmp_path}/b.db")
    _fill_wal(db, 300)
    wal = tmp_path / "b.db-wal"
    generation = _wal_generation(wal)
    cli = _in_another_process(tmp_path / "b.db", "c.execute('BEGIN IMMEDIATE'); print('in', flush=True); "
                                                 "sys.stdin.readline(); c.execute('COMMIT'); c.close()")
    try:
        assert cli.stdout is not None and cli.stdin is not None
        assert cli.stdout.readline().strip() == "in"
        started = time.monotonic()
        db.checkpoint(restart_pages=50)
        assert time.monotonic() - started < 5 and _wal_generation(wal) == generation
        cli.stdin.write("\n")
        cli.stdin.flush()
        assert cli.wait(10) == 0
    finally:
        cli.kill()
    db.checkpoint(restart_pages=50)
    assert _wal_generation(wal) == generation + 1
    _fill_wal(db, 5)
    # a reader that thinks itself the last one copies the WAL back and deletes it as it closes
    opened = _in_another_process(tmp_path / "b.db", "c.execute('SELECT count(*) FROM t').fetchone(); c.close()")
    assert opened.wait(10) == 0
    assert wal.exists()
    count = _in_another_process(tmp_path / "b.db", "print(c.execute('SELECT count(*) FROM t').fetchone()[0])")
    assert count.stdout is not None and count.stdout.read().strip() == "305"
    assert count.wait(10) == 0
    db.dispose()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the flush finds SQLite's descriptors in Linux's /proc")
def test_before_its_locked_copy_a_round_flushes_through_sqlites_own_descriptors_and_opens_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The WAL the requests appended and what the unlocked copy wrote reach the disk before the round takes the
    writer lock (so the locked copy syncs only the rest), through descriptors SQLite holds open: the round opens
    none, since closing one would drop SQLite's locks (the test above)."""
    db = Database(f"sqlite:///{tmp_path}/b.db")
    _fill_wal(db, 300)
    synced: list[tuple[str, bool]] = []
    opened: list[str] = []
    real_sync, real_open = os.fdatasync, os.open

    def sync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), db._writers is not None and db._writers._is_owned()))
        real_sync(fd)

    def open_(path: str, *args: object, **kwargs: object) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fdatasync", sync)
    monkeypatch.setattr(os, "open", open_)
    db.checkpoint(restart_pages=50)
    monkeypatch.undo()
    database = os.path.realpath(tmp_path / "b.db")
    assert synced == [(database + "-wal", False), (database, False)]
    assert not [p for p in opened if "b.db" in p]
    assert db_module.flush_open_file(str(tmp_path / "absent.db")) is False
    db.dispose()


def test_a_reader_on_old_frames_leaves_the_restart_to_a_later_round(tmp_path: Path) -> None:
    """A read transaction still on frames the copy may not pass keeps the WAL as it is (nothing waits for the
    reader); the first round after it ends starts the WAL again."""
    db = Database(f"sqlite:///{tmp_path}/b.db")
    _fill_wal(db, 50)
    wal = tmp_path / "b.db-wal"
    generation = _wal_generation(wal)
    with db.read() as reader:
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 50  # its snapshot: 50 rows
        _fill_wal(db, 250)
        db.checkpoint(restart_pages=20)
        assert _wal_generation(wal) == generation
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 50
    db.checkpoint(restart_pages=20)
    assert _wal_generation(wal) == generation + 1
    db.dispose()


def _migrated(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'bastion.db'}"
    migrate(url)
    return Database(url)


def test_writers_of_one_process_take_turns_without_sqlite_polling(tmp_path: Path) -> None:
    """A second writer waits on the process's lock, not inside SQLite: it has not begun while the first holds the
    write, and it goes on as the first commits, seeing what the first wrote."""
    db = _migrated(tmp_path)
    with db.write() as session:
        session.execute(text("CREATE TABLE probe (x INTEGER)"))
    first_in, release, second_in = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def first() -> None:
        with db.write() as session:
            session.execute(text("INSERT INTO probe VALUES (1)"))
            first_in.set()
            release.wait(10)

    def second() -> None:
        first_in.wait(10)
        with db.write() as session:
            second_in.set()
            seen.append(session.execute(text("SELECT count(*) FROM probe")).scalar_one())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert first_in.wait(10)
    assert not second_in.wait(0.3)  # queued behind the first
    release.set()
    for t in threads:
        t.join(10)
    assert second_in.is_set() and seen == [1]
    db.dispose()


def test_a_writer_still_queued_at_the_busy_timeout_gets_sqlites_error_then_not_after_a_second_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One deadline: refused as the queue's wait ends, not sent on to wait SQLite's busy timeout again."""
    db = _migrated(tmp_path)
    with db.engine.connect(), db.engine.connect():
        pass  # two pooled connections whose busy timeout is SQLite's 30 s
    monkeypatch.setattr(db_module, "SQLITE_BUSY_SECONDS", 0.2)  # the queue's wait only
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write() as session:
            session.execute(text("CREATE TABLE probe (x INTEGER)"))
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"), db.write() as session:
            session.execute(text("SELECT 1"))
        assert time.monotonic() - started < 10  # not the 30 s SQLite would have waited after the queue
    finally:
        release.set()
        holder.join(10)
    with db.write() as session:  # the queue is free again once the holder commits
        assert session.execute(text("SELECT count(*) FROM probe")).scalar_one() == 0
    db.dispose()


def test_a_write_nested_in_another_of_the_same_thread_meets_sqlite_not_the_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-entrant: the inner write (the outer has sent nothing yet) takes SQLite's lock and commits at once."""
    monkeypatch.setattr(db_module, "SQLITE_BUSY_SECONDS", 0.2)
    db = _migrated(tmp_path)
    with db.write() as outer:
        with db.write() as inner:
            inner.execute(text("CREATE TABLE probe (x INTEGER)"))
        assert outer.execute(text("SELECT count(*) FROM probe")).scalar_one() == 0
    db.dispose()
