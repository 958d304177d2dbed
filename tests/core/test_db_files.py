"""SQLite files hold the hash lists and the audit log: they are created readable by their owner only, and their WAL
is copied back by a worker, not by a request's commit."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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


_LINUX_FDS = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="the flush finds SQLite's descriptors in Linux's /proc/self/fd")


def _open_on(paths: set[str]) -> set[int]:
    """This process's descriptors open on ``paths``."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") in paths:
                found.add(int(name))
    return found


@_LINUX_FDS
@pytest.mark.parametrize("through_a_link", [False, True])
def test_before_its_locked_copy_a_round_flushes_through_sqlites_own_descriptors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through_a_link: bool) -> None:
    """The WAL the requests appended and what the unlocked copy wrote are synced before the round takes the writer
    lock (so the locked copy syncs only the rest), through descriptors SQLite already held open (one of the round's
    own would drop SQLite's locks as it closed: the test above). Behind a symbolic link, SQLite names the WAL after
    the real file, and so does the round."""
    (tmp_path / "real").mkdir()
    if through_a_link:
        (tmp_path / "link.db").symlink_to(tmp_path / "real" / "b.db")
    db = Database(f"sqlite:///{tmp_path / ('link.db' if through_a_link else 'real/b.db')}")
    _fill_wal(db, 300)
    database = os.path.realpath(tmp_path / "real" / "b.db")
    already_open = _open_on({database, database + "-wal"})
    steps: list[object] = []
    real_sync, one_writer = os.fdatasync, db._one_writer

    def sync(fd: int) -> None:
        steps.append((os.readlink(f"/proc/self/fd/{fd}"), fd in already_open))
        real_sync(fd)

    @contextlib.contextmanager
    def locked() -> Iterator[None]:
        steps.append("lock")
        with one_writer():
            yield

    monkeypatch.setattr(os, "fdatasync", sync)
    monkeypatch.setattr(db, "_one_writer", locked)
    db.checkpoint(restart_pages=50)
    monkeypatch.undo()
    assert steps == [(database + "-wal", True), (database, True), "lock"]
    db.dispose()


@_LINUX_FDS
def test_a_round_whose_flush_meets_an_io_error_stops_before_the_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error of the disk's is not passed over (it is reported once per open file, and the descriptor is SQLite's):
    the round fails before its locked copy and the WAL's restart, as where SQLite's own sync meets one. A descriptor
    closed meanwhile is passed over."""
    db = Database(f"sqlite:///{tmp_path}/b.db")
    _fill_wal(db, 300)
    wal = tmp_path / "b.db-wal"
    generation = _wal_generation(wal)

    def failing(error: int) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            raise OSError(error, os.strerror(error))
        return sync

    locked: list[bool] = []
    one_writer = db._one_writer

    @contextlib.contextmanager
    def recorded() -> Iterator[None]:
        locked.append(True)
        with one_writer():
            yield

    monkeypatch.setattr(db, "_one_writer", recorded)
    monkeypatch.setattr(os, "fdatasync", failing(errno.EIO))
    with pytest.raises(OSError, match="Input/output"):
        db.checkpoint(restart_pages=50)
    assert not locked and _wal_generation(wal) == generation
    monkeypatch.setattr(os, "fdatasync", failing(errno.EBADF))
    db.checkpoint(restart_pages=50)
    assert _wal_generation(wal) == generation + 1
    db.dispose()


@_LINUX_FDS
def test_the_flush_looks_again_where_the_descriptor_it_kept_is_no_longer_sqlites_and_not_where_it_still_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round tries first the descriptors the last one found: one now open on another file is not synced, and the
    files are looked for again; ones still right are used without listing every descriptor again. The database's
    path is resolved when it is opened, so a later change of directory does not lose it."""
    monkeypatch.chdir(tmp_path)
    db = Database("sqlite:///b.db")
    _fill_wal(db, 300)
    monkeypatch.chdir("/")
    database = os.path.realpath(tmp_path / "b.db")
    other = tmp_path / "other"
    other.write_bytes(b"x")
    stale = os.open(other, os.O_RDONLY)  # not a database file: opening and closing it drops no lock of SQLite's
    synced: list[str] = []
    listed: list[str] = []
    real_sync, real_listdir = os.fdatasync, os.listdir

    def sync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_sync(fd)

    def listdir(path: str) -> list[str]:
        listed.append(str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "fdatasync", sync)
    monkeypatch.setattr(os, "listdir", listdir)
    try:
        db._descriptors.update({database + "-wal": stale, database: stale})
        db.checkpoint(restart_pages=50)
        assert synced == [database + "-wal", database] and listed == ["/proc/self/fd"] * 2
        synced.clear()
        listed.clear()
        _fill_wal(db, 300)
        db.checkpoint(restart_pages=50)
        assert synced == [database + "-wal", database] and listed == []
    finally:
        monkeypatch.undo()
        os.close(stale)
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
