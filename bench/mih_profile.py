#!/usr/bin/env python
"""Profile one PDQ index segment's lookups: counters and the time split between probing and verifying.

Builds one segment's tables (the layout ``choose_layout`` picks, or ``--chunks``/``--dir-bits``) on the bench's
random or clustered hashes and runs the same queries through several builds of the kernel in this process:

- ``--kernel NAME=PATH``: a compiled ``_mih`` (e.g. the previous commit's, built into /tmp) to compare with the
  worktree's (``new``); lookups per CPU-second are printed with the ratio to the first kernel;
- ``--stats PATH``: a build with ``-DMIH_STATS`` (counters: probes, bucket entries scanned, candidates gathered,
  candidates within the threshold, cycles verifying and in total), printed per query.

    python bench/mih_profile.py --rows 10000000 --queries 2000 [--dataset clustered] \
        --kernel old=/tmp/old/_mih.so --stats /tmp/stats/_mih.so
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matching
from bastion.hashing import _mih
from bastion.hashing.pdq_index import IndexHit, choose_layout


def load_kernel(name: str, path: str) -> ModuleType:
    """A second copy of the extension from another file (its init function is ``PyInit__mih`` either way)."""
    spec = importlib.util.spec_from_file_location(f"{name}._mih", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(kernel: ModuleType, hashes: Any, queries: Any, chunks: tuple[int, ...], dir_bits: int, threshold: int,
        repeat: int, segments: int = 1) -> tuple[float, float, list[Any], float]:
    """Builds the tables (``segments`` copies, each a source of its own, like an index of that many segments),
    then returns (CPU-seconds per query one at a time, the same in one batch, hits, build seconds)."""
    start = time.process_time()
    tables = [kernel.Tables(hashes, chunks, dir_bits) for _ in range(segments)]
    built = time.process_time() - start
    keys = np.arange(len(hashes), dtype=np.int64)
    sources = [(None, keys, None, len(hashes), t) for t in tables]
    kernel.search(sources, b"".join(queries[:64]), threshold, True, IndexHit)  # warm up
    best = best_batch = float("inf")
    hits: list[Any] = []
    joined = b"".join(queries)
    for _ in range(repeat):
        start = time.process_time()
        hits = [kernel.search(sources, q, threshold, False, IndexHit) for q in queries]
        best = min(best, (time.process_time() - start) / len(queries))
        start = time.process_time()
        batch = kernel.search(sources, joined, threshold, True, IndexHit)
        best_batch = min(best_batch, (time.process_time() - start) / len(queries))
        assert batch == hits, "the batch disagrees with single lookups"
    del sources, tables
    gc.collect()
    return best, best_batch, hits, built


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--threshold", type=int, default=31)
    parser.add_argument("--dataset", choices=("random", "clustered", "natural"), default="random")
    parser.add_argument("--factor-share", type=float, default=0.0)
    parser.add_argument("--kernel", action="append", default=[], help="NAME=PATH of another compiled _mih")
    parser.add_argument("--stats", default="", help="PATH of a _mih built with -DMIH_STATS")
    parser.add_argument("--chunks", default="", help="chunk widths (default: choose_layout's)")
    parser.add_argument("--dir-bits", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--segments", type=int, default=1, help="sources of --rows each (copies of one table)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    w, info = matching.make_workload(args.rows, args.queries, args.threshold, args.seed, args.dataset,
                                     args.factor_share)
    hashes = np.ascontiguousarray(w.hashes)
    queries = [bytes(q) for q in w.queries]
    chunks, dir_bits = choose_layout(args.rows, args.threshold)
    if args.chunks:
        chunks = tuple(int(b) for b in args.chunks.split(","))
    if args.dir_bits:
        dir_bits = args.dir_bits
    model_ns = _mih.estimate(chunks, dir_bits, args.rows, args.threshold)
    out: dict[str, Any] = {"rows": args.rows, "segments": args.segments, "queries": len(queries), "dataset": info,
                           "chunk_bits": chunks, "dir_bits": dir_bits, "model_ns": model_ns,
                           "loadavg_before": Path("/proc/loadavg").read_text().split()[:3], "kernels": {}}
    kernels = [(name, load_kernel(name, path)) for name, path in (k.split("=", 1) for k in args.kernel)]
    kernels.append(("new", _mih))
    reference: list[Any] | None = None
    base: float | None = None
    base_batch: float | None = None
    for name, kernel in kernels:
        per_query, per_batched, hits, built = run(kernel, hashes, queries, chunks, dir_bits, args.threshold,
                                                  args.repeat, args.segments)
        if reference is None:
            reference = hits
        same = hits == reference
        rate, batch_rate = 1.0 / per_query, 1.0 / per_batched
        base = base or rate
        base_batch = base_batch or batch_rate
        out["kernels"][name] = {"lookups_per_cpu_s": round(rate), "ratio": round(rate / base, 3),
                                "batched_lookups_per_cpu_s": round(batch_rate),
                                "batched_ratio": round(batch_rate / base_batch, 3),
                                "build_cpu_s": round(built, 1), "same_hits": same}
        print(name, out["kernels"][name], file=sys.stderr, flush=True)
    if args.stats:
        kernel = load_kernel("stats", args.stats)
        kernel.stats(True)
        per_query, _, _, _ = run(kernel, hashes, queries, chunks, dir_bits, args.threshold, 1)
        s = kernel.stats(True)
        n = len(queries) + 64  # the warm-up batch is counted too
        counters = {k: round(v / n, 1) for k, v in s.items()}
        counters["verify_share"] = round(s["check_cycles"] / s["search_cycles"], 3)
        out["per_query"] = counters
        out["stats_lookups_per_cpu_s"] = round(1.0 / per_query)
    out["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
