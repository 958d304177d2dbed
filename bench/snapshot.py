#!/usr/bin/env python
"""Restart without rebuilding: how soon a fresh process answers its first PDQ match from a memory-mapped snapshot.

Builds an index of ``--size`` random PDQ hashes, writes its snapshot (``PdqIndex.save_snapshot``), then starts
new Python processes that import Bastion, map the snapshot (``PdqIndex.from_snapshot``) and answer one near
query; the time is from just before the process is spawned to the answer. Twice: with the snapshot's files in the
page cache (a restart), and with them dropped from it first (``posix_fadvise(DONTNEED)`` on this snapshot's files
only: a cold start, read from disk as queries touch pages). Then the lookups/s of the mapped index over its first
2,000 queries. The baseline, measured in this process: rebuilding the same index from arrays already in memory
(``add_arrays``), which is the least a start without a snapshot does (it also reads every row from the database).

    python bench/snapshot.py [--size 10000000] [--dir /tmp/bastion-snapshot-bench]

Progress goes to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bastion.hashing.pdq_index import PdqIndex

CHILD = r"""
import sys, time, json
import numpy as np
from pathlib import Path
from bastion.hashing.pdq_index import PdqIndex
index, meta = PdqIndex.from_snapshot(Path(sys.argv[1]))
query = bytes.fromhex(sys.argv[2])
hits = index.query_bytes(query, 31)
first = time.time()
queries = np.frombuffer(bytes.fromhex(sys.argv[3]), dtype=np.uint8).reshape(-1, 32)
start = time.perf_counter()
for q in queries:
    index.query_bytes(q, 31)
qps = len(queries) / (time.perf_counter() - start)
print(json.dumps({"first_match_at": first, "first_hits": [h.key for h in hits], "lookups_per_s_first_2000": qps}))
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def drop_from_page_cache(directory: Path) -> None:
    for f in directory.rglob("*"):  # one sub-directory per segment
        if not f.is_file():
            continue
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages cannot be dropped: write them first
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bastion-snapshot-bench"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    hashes = rng.integers(0, 256, (args.size, 32), dtype=np.uint8)
    keys = np.arange(1_000_000, 1_000_000 + args.size, dtype=np.int64)
    index = PdqIndex()
    start = time.perf_counter()
    index.add_arrays(keys, hashes)
    rebuild_s = time.perf_counter() - start
    log(f"rebuilt {args.size:,} from arrays in {rebuild_s:.1f} s (the baseline)")
    snap = args.dir / "snap"
    start = time.perf_counter()
    index.save_snapshot(snap, {"change_id": 1})
    save_s = time.perf_counter() - start
    size = sum(f.stat().st_size for f in snap.rglob("*") if f.is_file())
    log(f"snapshot written in {save_s:.1f} s, {size / 1e6:,.0f} MB")
    target = int(rng.integers(0, args.size))
    near = hashes[target].copy()
    near[:2] ^= 0x11  # 4 bits away
    queries = rng.integers(0, 256, (2000, 32), dtype=np.uint8)
    queries[::2] = hashes[rng.integers(0, args.size, 1000)]
    del index, hashes
    out: dict[str, object] = {"benchmark": "snapshot", "size": args.size, "rebuild_from_arrays_s": round(rebuild_s, 2),
                              "save_s": round(save_s, 2), "snapshot_bytes": size}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[1:])}
    for mode in ("page_cache", "cold"):
        if mode == "cold":
            drop_from_page_cache(snap)
        spawned = time.time()
        done = subprocess.run([sys.executable, "-c", CHILD, str(snap), near.tobytes().hex(), queries.tobytes().hex()],
                              capture_output=True, text=True, env=env, check=True)
        child = json.loads(done.stdout.strip().splitlines()[-1])
        assert child["first_hits"] == [1_000_000 + target], child["first_hits"]
        first_s = child["first_match_at"] - spawned
        qps = child["lookups_per_s_first_2000"]
        out[mode] = {"first_match_s": round(first_s, 3), "lookups_per_s_first_2000": round(qps)}
        log(f"{mode}: first match {first_s:.2f} s after spawning; then {qps:,.0f} lookups/s")
    out["first_match_vs_rebuild"] = round(out["page_cache"]["first_match_s"] / rebuild_s, 3)  # type: ignore[index]
    shutil.rmtree(args.dir, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
