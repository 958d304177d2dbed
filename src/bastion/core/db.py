"""Database engine, sessions and migrations. SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    make_url,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


if TYPE_CHECKING:
    from alembic.config import Config


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which stores naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


#: PostgreSQL's SQLSTATEs of a request the same request may pass later: the classes connection exception (08),
#: transaction rollback (40: a deadlock, a serialization failure) and operator intervention (57: a shutdown, a
#: cancelled statement), too many connections, and a lock not available.
_TRANSIENT_CLASSES = ("08", "40", "57")
_TRANSIENT_STATES = frozenset({"53300", "55P03"})


def unavailable(exc: DBAPIError) -> bool:
    """Whether the database could not take a request now, and the same request may be taken later: a connection lost
    (a restart, a failover) or never made (``statement`` is None: the server refused it), PostgreSQL's transient
    SQLSTATEs, or SQLite still locked past its busy timeout (``Database._one_writer`` raises the same). Not a
    request that can never pass (too many parameters, a row too big for its index, "no such table")."""
    if exc.connection_invalidated or exc.statement is None:
        return True
    if isinstance(exc.orig, sqlite3.Error):
        return isinstance(exc.orig, sqlite3.OperationalError) and "database is locked" in str(exc.orig)
    state = str(getattr(exc.orig, "sqlstate", None) or "")
    return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES


def dialect_insert(bind: Engine | Connection, table: Any) -> sqlite.Insert | postgresql.Insert:
    """``insert(table)`` in the database's own dialect, the one with ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (SQLite's and PostgreSQL's take the same arguments)."""
    if is_sqlite(bind):
        return sqlite.insert(table)
    return postgresql.insert(table)


def in_list(column: ColumnElement[Any] | QueryableAttribute[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of a list of strings bound as one parameter ``name``: the statement's text is the same
    whatever the list's length, so it is compiled once and the driver's cache of prepared statements keeps it (an
    expanding ``IN`` renders a placeholder per value on every call). SQLite reads the list as JSON (``json_each``),
    PostgreSQL as an array (``= ANY``)."""
    if dialect == "sqlite":
        values = func.json_each(bindparam(name, type_=JSON)).table_valued("value")
        return column.in_(select(values.c.value))
    return column == any_(bindparam(name, type_=ARRAY(String)))


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        _create_private(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate_if_asked)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_use_lifo=True)
    event.listen(engine, "checkin", _idle_from_now)
    event.listen(engine, "checkout", _ping_if_idle(engine.dialect))
    return engine


#: A PostgreSQL connection is pinged when it is taken from the pool only if it sat there longer than this. SQLAlchemy's
#: ``pool_pre_ping`` pings on every checkout: a round trip and a statement for PostgreSQL to run, twice in a minors'
#: batch with denies (its read and its write), 12 % of ``check_all``'s samples (``docs/benchmarks.md``,
#: "PostgreSQL: fewer round trips and statements"). The pool hands out the connection returned last (LIFO), so a
#: quiet server keeps one connection warm and the others idle, to be pinged when next needed. A ping that fails
#: replaces every connection the pool holds. The price: a connection dropped less than this long after its last use
#: (PostgreSQL restarted, a failover) fails the statement of the request that takes it, at least one request per
#: process, answered 503 with ``Retry-After`` (``unavailable``); SQLAlchemy then replaces every connection the pool
#: holds, and the request sent again succeeds.
PING_AFTER_IDLE_SECONDS = 5.0


def _idle_from_now(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Dialect) -> Callable[[Any, Any, Any], None]:
    """The pool's checkout hook: ping a connection that was idle longer than ``PING_AFTER_IDLE_SECONDS``; if it does
    not answer, the pool's connections are all replaced and the checkout tries again with a new one."""

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since <= PING_AFTER_IDLE_SECONDS:
            return  # new, or in steady use
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as error:
            # The others were most likely dropped with it (a restart): none of them is handed out again.
            raise InvalidatePoolError(f"an idle connection did not answer: {error}") from error

    return checkout


def _file_of(database: str | None) -> str | None:
    """A SQLite URL's database as a plain file's path; ``None`` for memory or a ``file:`` URI (left to SQLite)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def _create_private(url: str) -> None:
    """Create a new SQLite file with mode 0600 before SQLite opens it.

    The database holds the hash lists and who did what: it is no one else's to read. SQLite gives the ``-wal`` and
    ``-shm`` files the mode of the database file, so they are private too. An existing file keeps its mode.
    """
    path = _file_of(make_url(url).database)
    if path is None:
        return
    with contextlib.suppress(FileExistsError, FileNotFoundError):  # exists already / no such folder: SQLite says
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


#: SQLite's WAL is copied back into the database by every server's worker (``Database.checkpoint``, every
#: ``CHECKPOINT_SECONDS``), not by whichever commit crosses the automatic threshold: a commit that checkpointed waited
#: 18-35 ms (two ``fdatasync``), the tail of every write's latency (a batch of minors' checks with denies). The worker
#: starts the WAL again once it holds ``WAL_RESTART_PAGES`` (about 4 MB). The automatic checkpoint stays, so the WAL
#: stays bounded where no worker runs (the CLI) or if it stops, at a threshold (pages of 4 KiB: about 200 MB) that a
#: second of writes does not reach: at 40 MB, the minors bench's server wrote it in 0.6 s, and a request's commit
#: checkpointed once a second between the worker's rounds (``docs/benchmarks.md``, "SQLite's checkpoints kept out of
#: requests").
WAL_AUTOCHECKPOINT_PAGES = 50_000
WAL_RESTART_PAGES = 1_000
#: How long a SQLite writer waits for another to finish before it fails with "database is locked".
SQLITE_BUSY_SECONDS = 30
CHECKPOINT_SECONDS = 1.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy own transaction boundaries (pysqlite's implicit BEGIN is off).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cur.execute("PRAGMA journal_size_limit=67108864")  # the WAL file is cut back to 64 MB once it restarts
    cur.close()


def _sqlite_begin_immediate_if_asked(conn: Any) -> None:
    # Writers take the lock up front (BEGIN IMMEDIATE) so two writers never deadlock on lock upgrade.
    mode = "IMMEDIATE" if conn.get_execution_options().get("bastion_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine and its session factory; passed to services instead of a global."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            self.engine.execution_options(bastion_write=True), expire_on_commit=False
        )
        #: SQLite's writers of this process wait on this lock, not in SQLite's busy handler, which polls the lock
        #: after sleeps of 1, 2, 5, 10, 15 ms...: a request that came while the grooming watch committed slept 18 ms
        #: for a lock held 4 (``docs/benchmarks.md``, "Minors' tail"). Re-entrant, so a nested write meets SQLite as
        #: before, not this lock. Other processes (the CLI) still meet in SQLite's lock.
        self._writers = threading.RLock() if is_sqlite(self.engine) else None
        #: SQLite's files as its descriptors name them (``_flush_open_file``): resolved now, not after a ``chdir``,
        #: and the WAL after the database's real path, as SQLite names it behind a symbolic link.
        database = _file_of(self.engine.url.database) if self._writers is not None else None
        real = os.path.realpath(database) if database else None
        self._files = (real + "-wal", real) if real else ()
        self._descriptors: dict[str, int] = {}

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error: nothing is half-written."""
        with self._one_writer(), self._write_sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def _one_writer(self) -> Iterator[None]:
        """SQLite: this process's writers one at a time, each woken as the one before commits. A writer still
        waiting after the busy timeout is refused with the error SQLite gives then (one deadline, not the lock's and
        then SQLite's own)."""
        if self._writers is None:
            yield
            return
        if not self._writers.acquire(timeout=SQLITE_BUSY_SECONDS):
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
        try:
            yield
        finally:
            self._writers.release()

    def serialize_writers(self, session: Session, lock_id: int) -> None:
        """Order concurrent writers of one log (audit chain, bank change log) on PostgreSQL.

        SQLite allows one writer at a time already. On PostgreSQL an advisory lock held to the end of the
        transaction makes sequence values commit in order, so a reader that saw id N never later finds N-1.
        """
        if not is_sqlite(self.engine):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})

    def checkpoint(self, restart_pages: int = WAL_RESTART_PAGES) -> None:
        """SQLite: copy what the WAL holds back into the database, without blocking readers or writers (PASSIVE);
        run by every server's worker (``core/service.py``) so that no request's commit does it. PostgreSQL: nothing
        to do.

        Under steady writes that alone never empties the WAL: frames come while the copy runs, and SQLite starts
        the WAL again only at a write that begins with every frame copied. It grew to the automatic threshold, and
        then requests' commits checkpointed (two ``fdatasync``) and started it again (a third, for its header). So
        once it holds ``restart_pages``, the round copies what came meanwhile holding this process's writer lock,
        and makes the first write of the new WAL itself (``_start_wal_again``), so those syncs are its own. A reader
        still on old frames, or another process writing, leaves that to the next round.
        """
        if not is_sqlite(self.engine):
            return
        raw = self.engine.raw_connection()  # outside any transaction: pysqlite's own BEGIN is off (pragmas)
        cursor = raw.cursor()
        try:
            _, pages, _ = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if pages >= restart_pages:
                # What the requests appended and what this copy wrote, on disk before the lock: the locked copy's
                # syncs take only what comes meanwhile.
                for path in self._files:
                    _flush_open_file(path, self._descriptors)
                with self._one_writer():
                    busy, pages, copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if not busy and copied == pages:
                        _start_wal_again(cursor)
        finally:
            cursor.close()
            raw.close()

    def dispose(self) -> None:
        self.engine.dispose()


#: What a descriptor that was closed (``readlink``: ENOENT; ``fdatasync``: EBADF) or reused for a pipe or a socket
#: (EINVAL) fails with.
_GONE = frozenset({errno.EBADF, errno.EINVAL, errno.ENOENT})


def _flush_open_file(path: str, last: dict[str, int]) -> None:
    """``fdatasync`` a descriptor of ``path`` that this process already holds open (SQLite's own), found in
    ``/proc/self/fd`` (the one found last time, kept in ``last``, tried first); where there is none (or no
    ``/proc/self/fd``: not Linux), the flush is left to SQLite. Never a descriptor of its own: closing any
    descriptor of a database file drops every POSIX lock the process holds on it, SQLite's included, and another
    process could then delete a WAL in use (``tests/core/test_db_files.py``). A descriptor reused between its look-up
    and its sync syncs another file (and may report that file's disk error). An I/O error is raised, not passed over:
    the round then stops before its locked copy and the WAL's restart, as it does where SQLite's own sync meets one."""
    if path in last and _sync_if_open(last[path], path):
        return
    last.pop(path, None)
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in names:
        if _sync_if_open(int(name), path):
            last[path] = int(name)
            return


def _sync_if_open(descriptor: int, path: str) -> bool:
    """``fdatasync`` ``descriptor`` if it is open on ``path``."""
    try:
        if os.readlink(f"/proc/self/fd/{descriptor}") != path:
            return False
        os.fdatasync(descriptor)
    except OSError as exc:
        if exc.errno in _GONE:
            return False
        raise
    return True


def _start_wal_again(cursor: Any) -> None:
    """The first write of a WAL copied back whole, which starts it again (SQLite syncs the new header then): the
    database's ``user_version`` written back unchanged, a page's write that changes nothing. It does not wait for
    another process's writer (busy timeout 0): a round that meets one leaves the restart to the next."""
    waits = int(cursor.execute("PRAGMA busy_timeout").fetchone()[0])
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return
        raise
    finally:
        cursor.execute(f"PRAGMA busy_timeout={waits}")
    try:
        version = int(cursor.execute("PRAGMA user_version").fetchone()[0])
        cursor.execute(f"PRAGMA user_version={version}")
        cursor.execute("COMMIT")
    except BaseException:
        if cursor.connection.in_transaction:  # a failed COMMIT may have ended it already
            cursor.execute("ROLLBACK")
        raise


def alembic_config(url: str) -> Config:
    """Alembic's configuration for the package's migrations, pointed at ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    cfg.attributes["database_url"] = url
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic; safe to run on every start."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
