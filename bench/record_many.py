"""A batch's events written in one transaction: ``core/events.py: record_many`` against a named baseline.

``--batches`` write transactions of ``--events`` minors' deny events each (the shape of a batch of 100 interaction
checks with about half denied), on an empty database: SQLite in a temporary directory, or ``--database-url``, an
empty PostgreSQL database. The baseline, run in the same process on the same database, the batches alternating
with this checkout's: **the INSERT SQLAlchemy compiles for the table, given to the driver's ``executemany`` with a
row of parameters per event** (``record_many`` as it was before 2026-12-07 on both databases; what it still is on
SQLite, where the two should then be alike). Each transaction commits, as a request's does.

For each: the wall time and this process's CPU time per transaction (p50 and mean), then this checkout's over the
baseline's. PostgreSQL's own CPU is not in the CPU figure (it is in the wall time).

    python bench/record_many.py [--batches 2000] [--events 50] [--database-url postgresql://...]

Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, insert
from sqlalchemy.orm import Session

from bastion.core.db import Database, migrate
from bastion.core.events import EventLog, NewEvent, record_many
from bastion.minors.events import Denied, EventKind
from bastion.minors.models import MinorEvent
from stats import percentile

Writer = Callable[[Session, type[EventLog], Sequence[NewEvent]], None]


def executemany(session: Session, table: type[EventLog], events: Sequence[NewEvent]) -> None:
    """The baseline: the compiled INSERT (compiled once, as ``record_many`` did), and a row of parameters per event
    for the driver's ``executemany``."""
    session.flush()
    connection = session.connection()
    sql, order, process = _compiled(table.__table__, connection.dialect)  # type: ignore[attr-defined]
    rows = [{"subject": e.subject, "kind": e.kind.value, "actor": e.actor, "at": process(e.at),
             "data": e.data.model_dump_json() if e.data is not None else "{}"} for e in events]
    connection.exec_driver_sql(sql, [tuple(r[c] for c in order) for r in rows] if order else rows)


_COMPILED: dict[tuple[str, str], tuple[str, tuple[str, ...], Callable[[dt.datetime], Any]]] = {}


def _compiled(table: Table, dialect: Dialect) -> tuple[str, tuple[str, ...], Callable[[dt.datetime], Any]]:
    key = (table.name, dialect.name)
    if key not in _COMPILED:
        values: dict[str, Any] = {c: bindparam(c) for c in ("subject", "kind", "actor", "at", "data")}
        compiled = insert(table).inline().values(values).compile(dialect=dialect)
        process = table.c.at.type.dialect_impl(dialect).bind_processor(dialect)
        _COMPILED[key] = (str(compiled), tuple(compiled.positiontup or ()), process or (lambda at: at))
    return _COMPILED[key]


def batch(i: int, size: int) -> list[NewEvent]:
    """``size`` deny events of different actors at a minor each, as a half-denied batch of checks writes them."""
    now = dt.datetime.now(dt.UTC)
    return [NewEvent(f"account:acct{(i * size + n) % 500}", EventKind.DENIED, "token:1:bench", now,
                     Denied(action="dm", target=f"acct{(i + n * 7) % 500}", actor_band="18_plus",
                            target_band="13_15", rule="floor-adult-dm-unconnected-under-16"))
            for n in range(size)]


def timed(db: Database, write: Writer, events: list[NewEvent], into: dict[str, list[float]]) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    with db.write() as session:
        write(session, MinorEvent, events)
    into["wall"].append((time.perf_counter() - start) * 1000)
    into["cpu"].append((time.process_time() - cpu) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: SQLite in a "
                        "temporary directory)")
    args = parser.parse_args()
    if args.batches < 1 or args.events < 1:
        parser.error("--batches and --events must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        db = Database(url)
        writers: dict[str, Writer] = {"record_many": record_many, "baseline": executemany}
        figures: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in writers}
        for i in range(50):  # warm up: connections, compiled statements
            timed(db, record_many, batch(i, args.events), {"wall": [], "cpu": []})
            timed(db, executemany, batch(i, args.events), {"wall": [], "cpu": []})
        for i in range(args.batches):
            events = batch(i, args.events)
            for name in writers if i % 2 == 0 else reversed(writers):
                timed(db, writers[name], events, figures[name])
        db.dispose()
    out: dict[str, Any] = {"database": url.split(":", 1)[0], "events_per_batch": args.events}
    for name, f in figures.items():
        out[name] = {"wall_p50_ms": round(percentile(f["wall"], 0.5), 3),
                     "wall_mean_ms": round(sum(f["wall"]) / len(f["wall"]), 3),
                     "cpu_p50_ms": round(percentile(f["cpu"], 0.5), 3),
                     "cpu_mean_ms": round(sum(f["cpu"]) / len(f["cpu"]), 3)}
    out["ratio"] = {k: round(out["record_many"][k] / out["baseline"][k], 2) for k in out["baseline"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
