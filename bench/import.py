#!/usr/bin/env python
"""Bank import: CSV lines per second into a bank, on SQLite and PostgreSQL, against one entry per transaction.

Bastion's path is ``matching/services.py: import_csv`` (``bastion bank import``): the file is streamed in chunks, a
reader thread validating the next (a column at a time where it can) while the database writes this one (SQLite: an
executemany of tuples; PostgreSQL: COPY of the file's own text, then one INSERT ... SELECT), in one transaction,
with one ``add_range`` change-log row. Besides wall time it reports this process's CPU seconds and, where the
PostgreSQL server runs on this machine, its backend's, to say which side is the limit, and how the import checked
the bank (``foreign_key_check``: once by a lock on its row where the role may, else per row; give ``--postgres`` a
URL with a non-superuser role to measure the latter).
The named baseline is HMA's shape of adding to a bank: one signal per request, each its own insert and commit
(HMA's ``POST /c/bank/<name>/signal`` -> ``bank_add_content``); here Bastion's own ``add_entry``, which is that
(HMA itself is not installed on this machine), on ``--baseline-lines`` lines in the same process.

    python bench/import.py [--lines 1000000] [--baseline-lines 2000] [--postgres postgresql://...] [--skip-sqlite]

Without ``--postgres`` only SQLite is measured. The PostgreSQL database's ``public`` schema is DROPPED and
recreated: give it a scratch database. Progress goes to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.db import Database, migrate
from bastion.matching import services as banks

ADMIN = Principal("cli", 0, "bench", Role.ADMIN)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class CsvLines(io.TextIOBase):
    """A CSV of ``lines`` random PDQ entries, generated as it is read (memory stays flat at 10M lines)."""

    def __init__(self, lines: int, seed: int) -> None:
        self._rows = self._generate(lines, seed)

    @staticmethod
    def _generate(lines: int, seed: int) -> Iterator[str]:
        rng = np.random.default_rng(seed)
        yield "signal_type,value,category\n"
        for start in range(0, lines, 65_536):
            n = min(65_536, lines - start)
            hexes = rng.integers(0, 256, (n, 32), dtype=np.uint8).tobytes().hex()
            yield "".join(f"pdq,{hexes[i * 64:(i + 1) * 64]},tco\n" for i in range(n))

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:  # all csv.reader uses
        for chunk in self._rows:
            yield from chunk.splitlines(keepends=True)


def fresh(url: str) -> Database:
    if url.startswith("postgresql"):
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    migrate(url)
    return Database(url)


def server_cpu(db: Database) -> float | None:
    """CPU seconds of the PostgreSQL backend the pool hands out next (the import's), when it runs on this machine."""
    if db.url.startswith("sqlite"):
        return None
    with db.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def foreign_key_check(db: Database) -> str | None:
    """How the PostgreSQL import checked the bank (``docs/matching-scale.md``): once, by locking its row, where the
    role may set ``session_replication_role``; else per row, by the foreign key's trigger."""
    if db.url.startswith("sqlite"):
        return None
    raw = db.engine.raw_connection()
    try:
        return "bank row lock" if banks._checks_bank_itself(raw.driver_connection) else "per row"
    finally:
        raw.close()


def measure(url: str, lines: int, baseline_lines: int) -> dict[str, object]:
    db = fresh(url)
    banks.create_bank(db, "IMPORT", actor=ADMIN)
    server_before = server_cpu(db)
    start, cpu = time.perf_counter(), time.process_time()
    result = banks.import_csv(db, "IMPORT", CsvLines(lines, seed=1), actor=ADMIN)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    server_after = server_cpu(db)
    server = None if server_before is None or server_after is None else round(server_after - server_before, 1)
    assert result.added == lines, result
    log(f"{db.url.split(':')[0]}: import_csv {lines:,} lines in {seconds:.1f} s = {lines / seconds:,.0f} lines/s "
        f"(CPU: this process {cpu:.1f} s, database server {server} s)")
    banks.create_bank(db, "ONE_BY_ONE", actor=ADMIN)
    rng = np.random.default_rng(2)
    values = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(baseline_lines)]
    start = time.perf_counter()
    for value in values:
        banks.add_entry(db, "ONE_BY_ONE", banks.NewEntry.parse("pdq", value, "tco"), actor=ADMIN)
    base = time.perf_counter() - start
    log(f"{db.url.split(':')[0]}: one entry per transaction: {baseline_lines / base:,.0f} lines/s")
    rate = lines / seconds
    figures: dict[str, object] = {"lines": lines, "seconds": round(seconds, 1), "lines_per_s": round(rate),
            "foreign_key_check": foreign_key_check(db),
            "python_cpu_s": round(cpu, 1), "server_cpu_s": server,
            "baseline_one_per_transaction_lines_per_s": round(baseline_lines / base),
            "ratio": round(rate / (baseline_lines / base), 1),
            "projected_10m_lines_s": round(10_000_000 / rate)}
    db.dispose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--baseline-lines", type=int, default=2000)
    parser.add_argument("--postgres", default="", help="a scratch PostgreSQL database (its schema is dropped)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    out: dict[str, object] = {"benchmark": "import"}
    with tempfile.TemporaryDirectory(prefix="bastion-import-") as tmp:
        if not args.skip_sqlite:
            out["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'bench.db'}", args.lines, args.baseline_lines)
    if args.postgres:
        out["postgresql"] = measure(args.postgres, args.lines, args.baseline_lines)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
