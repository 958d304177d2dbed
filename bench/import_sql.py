#!/usr/bin/env python
"""The PostgreSQL import's INSERT ... SELECT, before and after the 32-byte digest, in one process: server CPU a line.

"Before" is the SQL and table of the tree before migration 0031 (hex digest, the id sequence looked up per row with
``pg_get_serial_sequence``, the default 4 MB sort memory); "after" is ``matching/services.py: _insert_staged`` (bytea
digest, the sequence by oid, 64 MB). Each gets its own copy of ``bank_entries`` (same indexes, foreign key and unique
constraint) preloaded with ``--preload`` entries; rounds alternate which goes first. The figure is the backend's
CPU time (``/proc``), so the server must run on this machine. Schema ``import_sql`` of the given database is
dropped and recreated: give it a scratch database.

    python bench/import_sql.py --postgres postgresql://postgres@127.0.0.1:5432/<scratch> [--preload 1000000]
        [--rounds 6] [--lines 65536]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import psycopg

COLUMNS = "id, bank_id, signal_type, value, value_digest, category, source, note, enabled, added_by, added_at"
DIGESTS = {"before": ("varchar(64)", "encode(sha256(convert_to(v, 'UTF8')), 'hex')"),
           "after": ("bytea", "sha256(convert_to(v, 'UTF8'))")}


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_tables(conn: psycopg.Connection[tuple[object, ...]], preload: int) -> None:
    conn.execute("DROP SCHEMA IF EXISTS import_sql CASCADE")
    conn.execute("CREATE SCHEMA import_sql")
    conn.execute("CREATE TABLE import_sql.banks (id int PRIMARY KEY)")
    conn.execute("INSERT INTO import_sql.banks VALUES (1)")
    for name, (kind, digest) in DIGESTS.items():
        conn.execute(f"CREATE TABLE import_sql.{name} (id bigserial PRIMARY KEY, bank_id int NOT NULL "
                     "REFERENCES import_sql.banks (id) ON DELETE CASCADE, signal_type varchar(32) NOT NULL, "
                     f"value text NOT NULL, value_digest {kind} NOT NULL, category varchar(64) NOT NULL, "
                     "source varchar(200) NOT NULL, note text NOT NULL, enabled bool NOT NULL, "
                     "added_by varchar(200) NOT NULL, added_at timestamptz NOT NULL, "
                     "UNIQUE (bank_id, signal_type, value_digest))")
        conn.execute(f"CREATE INDEX ON import_sql.{name} (signal_type, enabled, id)")
        conn.execute(f"INSERT INTO import_sql.{name} ({COLUMNS.removeprefix('id, ')}) SELECT 1, 'pdq', v, {digest}, "
                     "'tco', '', '', true, 'bench', now() FROM (SELECT encode(sha256(int8send(g)), 'hex') AS v "
                     f"FROM generate_series(1, {preload}) AS g) AS s")
        conn.execute(f"VACUUM ANALYZE import_sql.{name}")


def statements(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, tuple[str, str]]:
    row = conn.execute("SELECT pg_get_serial_sequence('import_sql.after', 'id')::regclass::oid").fetchone()
    assert row is not None
    head = ("SELECT id, 1, signal_type, value, digest, coalesce(category, ''), coalesce(source, ''), "
            "coalesce(note, ''), true, 'bench', now() FROM (SELECT ")
    tail = " ON CONFLICT (bank_id, signal_type, value_digest) DO NOTHING"
    return {
        "before": ("4MB", f"INSERT INTO import_sql.before ({COLUMNS}) {head}"
                   "nextval(pg_get_serial_sequence('import_sql.before', 'id')) AS id, *, "
                   "encode(sha256(convert_to(value, 'UTF8')), 'hex') AS digest FROM lines) AS l "
                   f"ORDER BY signal_type, digest{tail}"),
        "after": ("64MB", f"INSERT INTO import_sql.after ({COLUMNS}) {head}nextval({int(row[0])}::regclass) AS id, "
                  "*, sha256(convert_to(value, 'UTF8')) AS digest FROM lines) AS l "
                  f"ORDER BY signal_type, digest, id{tail}"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True, help="a scratch PostgreSQL database")
    parser.add_argument("--preload", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--lines", type=int, default=65_536)
    args = parser.parse_args()
    conn = psycopg.connect(args.postgres, autocommit=True)
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    pid = int(row[0])
    make_tables(conn, args.preload)
    sql = statements(conn)
    rng = np.random.default_rng(5)
    spent = dict.fromkeys(sql, 0.0)
    for round_ in range(args.rounds):
        hexes = rng.integers(0, 256, (args.lines, 32), dtype=np.uint8).tobytes().hex()
        text = "".join(f"pdq,{hexes[i * 64:(i + 1) * 64]},tco\n" for i in range(args.lines))
        for name in sorted(sql, reverse=round_ % 2 == 1):
            work_mem, insert = sql[name]
            with conn.transaction():
                conn.execute(f"SET LOCAL work_mem = '{work_mem}'")
                conn.execute("CREATE TEMPORARY TABLE lines (signal_type text, value text, category text, "
                             "source text, note text) ON COMMIT DROP")
                start = backend_cpu(pid)
                with conn.cursor().copy("COPY lines (signal_type, value, category) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(text)
                conn.execute(insert)
                spent[name] += backend_cpu(pid) - start
    conn.execute("DROP SCHEMA import_sql CASCADE")
    per_line = {name: round(s * 1e6 / (args.rounds * args.lines), 2) for name, s in spent.items()}
    print(json.dumps({"benchmark": "import_sql", "preload": args.preload, "server_cpu_us_per_line": per_line,
                      "ratio_before_over_after": round(spent["before"] / spent["after"], 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
