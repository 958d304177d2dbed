#!/usr/bin/env python
"""Matching benchmark: Bastion's PdqIndex against threatexchange's PDQIndex and faiss IndexBinaryFlat.

Everything runs in one process on one thread (``--threads 1,2`` adds a threaded measurement), on random PDQ
hashes or (``--dataset clustered|natural``) on hash sets modelled on real banks: bench/pdq_datasets.py.
Queries: half are indexed hashes with 0-31 random bits flipped (each must find its source), half are misses
drawn from the same model. Progress goes to stderr; the last line on stdout is one JSON object with every figure
and the Bastion/baseline ratios.

    python bench/matching.py [--sizes 1000000,10000000] [--queries 2000] [--baseline-queries 300] [--seed 1]
        [--segment-rows 20000000,1000000] [--stream]

``--segment-rows``: the index's segment bound (a list measures each on the same hashes and queries, one after
the other in this process). ``--stream``: generate the random hashes a segment at a time and hand each to the
index as it is made, so that the benchmark holds one segment's input (40 B a row), not all of it (for 100M).
Peak RSS is reported per phase (Linux: the high-water mark is reset before each phase) and for the process.

Needs the ``bench`` extra (threatexchange, faiss-cpu). See docs/benchmarks.md for recorded figures.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy/faiss load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from bastion.hashing import _mih  # noqa: E402
from bastion.hashing.pdq_index import SEGMENT_ROWS, PdqIndex  # noqa: E402

U8 = npt.NDArray[np.uint8]
POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)
KEY_BASE = 1_000_000  # keys are KEY_BASE + row, like bank entry ids


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def huge_page_bytes() -> int | None:
    """Anonymous memory on transparent huge pages (AnonHugePages): random lookups over tables that are not on
    huge pages miss the TLB, which at 100M (8+ GiB of tables) costs more than the cache misses themselves."""
    try:
        with open("/proc/self/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak() -> None:
    """Start a new high-water mark of RSS (Linux >= 4.0: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


_phase_peaks = [0]  # the highest phase peak seen: resetting VmHWM also resets what getrusage reports


def peak_bytes() -> int:
    """RSS high-water mark since the last ``reset_peak`` (VmHWM); else the process's (getrusage)."""
    peak = None
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except OSError:
        pass
    if peak is None:
        peak = process_peak_bytes()
    _phase_peaks[0] = max(_phase_peaks[0], peak)
    return peak


def process_peak_bytes() -> int:
    """The process's peak RSS since it started: ``ru_maxrss`` (KiB on Linux, bytes on macOS), or the highest
    phase peak when a reset has cut it (Linux resets both together)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(peak if sys.platform == "darwin" else peak * 1024, _phase_peaks[0])


def gib(n: int | None) -> float | None:
    return round(n / 2**30, 3) if n is not None else None


def per_row(before: int | None, after: int | None, rows: int) -> float | None:
    return round((after - before) / rows, 1) if before is not None and after is not None else None


def settle() -> int | None:
    gc.collect()
    return rss_bytes()


@dataclass
class Workload:
    keys: npt.NDArray[np.int64]
    hashes: U8
    queries: U8
    sources: npt.NDArray[np.int64]  # row each query was made from, -1 for a miss
    #: streamed: the hashes are not held (``keys``/``hashes`` empty); ``parts`` makes them again, chunk by chunk
    streamed: Callable[[int], Iterator[tuple[npt.NDArray[np.int64], U8]]] | None = None
    size: int = 0

    def __post_init__(self) -> None:
        if self.streamed is None:
            self.size = len(self.keys)

    @property
    def near(self) -> int:
        return int((self.sources >= 0).sum())

    def parts(self, chunk: int = 1 << 62) -> Iterator[tuple[npt.NDArray[np.int64], U8]]:
        """The indexed rows: in one piece, or streamed ``chunk`` rows at a time (the same rows every call)."""
        if self.streamed is not None:
            yield from self.streamed(min(chunk, 1 << 62))
        else:
            yield self.keys, self.hashes

    def subset(self, count: int) -> Workload:
        """``count`` queries with the same near/miss mix."""
        half = count // 2
        near = np.nonzero(self.sources >= 0)[0][:half]
        miss = np.nonzero(self.sources < 0)[0][: count - half]
        pick = np.concatenate([near, miss])
        return Workload(self.keys, self.hashes, self.queries[pick], self.sources[pick], self.streamed, self.size)


_BLOCK = 65_536  # rows made from one seed: the hashes are the same whatever the chunk size


def streamed_workload(size: int, queries: int, threshold: int, seed: int) -> Workload:
    """Random hashes made a block at a time from per-block seeds and handed on in chunks of any size, so they can
    be made again (to check hits) without being held; the near queries are taken from their sources as the
    blocks pass."""
    rng = np.random.default_rng(seed)
    near = queries // 2
    sources = np.full(queries, -1, dtype=np.int64)
    sources[:near] = rng.integers(0, size, near)
    out = rng.integers(0, 256, (queries, 32), dtype=np.uint8)

    def block(i: int) -> U8:
        n = min(_BLOCK, size - i * _BLOCK)
        return np.random.default_rng([seed, i]).integers(0, 256, (n, 32), dtype=np.uint8)

    def parts(chunk: int) -> Iterator[tuple[npt.NDArray[np.int64], U8]]:
        start = 0
        while start < size:
            n = min(chunk, size - start)
            first, last = start // _BLOCK, (start + n - 1) // _BLOCK
            joined = np.concatenate([block(i) for i in range(first, last + 1)])
            offset = start - first * _BLOCK
            hashes = joined[offset : offset + n]
            yield np.arange(KEY_BASE + start, KEY_BASE + start + n, dtype=np.int64), hashes
            del joined, hashes
            start += n

    flips = np.random.default_rng([seed, 2**32])
    for keys, hashes in parts(_BLOCK):
        first = int(keys[0]) - KEY_BASE
        for i in np.nonzero((sources[:near] >= first) & (sources[:near] < first + len(keys)))[0]:
            bits = np.unpackbits(hashes[sources[i] - first])
            bits[flips.choice(256, int(flips.integers(0, threshold + 1)), replace=False)] ^= 1
            out[i] = np.packbits(bits)
    empty = np.zeros(0, np.int64), np.zeros((0, 32), np.uint8)
    return Workload(empty[0], empty[1], out, sources, parts, size)


def make_workload(size: int, queries: int, threshold: int, seed: int, dataset: str = "random",
                  factor_share: float = 0.0) -> tuple[Workload, dict[str, Any]]:
    """``dataset``: ``random`` (uniform bits), ``clustered`` (half the rows in clusters of 10-1,000 measured
    edits, independent bits) or ``natural`` (the same clusters, bits from a copula fitted to PDQ of crops,
    plus ``factor_share`` of common factors); see bench/pdq_datasets.py. Misses come from the same model."""
    rng = np.random.default_rng(seed)
    info: dict[str, Any] = {"dataset": dataset}
    miss_source: Callable[[int], U8]
    if dataset == "random":
        hashes = rng.integers(0, 256, (size, 32), dtype=np.uint8)
        miss_source = lambda n: rng.integers(0, 256, (n, 32), dtype=np.uint8)  # noqa: E731
    else:
        import pdq_datasets as pd

        start = time.perf_counter()
        edits = pd.measured_edit_distances()
        info["edit_distance_percentiles_0_25_50_75_90_100"] = np.percentile(edits, [0, 25, 50, 75, 90, 100]).tolist()
        if dataset == "natural":
            copula, info["fitted_crops"] = pd.natural_copula()
            if factor_share:
                copula = copula.with_factors(factor_share, rng)
        else:
            copula = pd.Copula.independent()
        info["factor_share"] = factor_share
        log(f"{dataset}: model ready in {time.perf_counter() - start:.0f} s, generating")
        start = time.perf_counter()
        hashes, cluster = pd.generate(size, copula, edits, rng)
        log(f"{dataset}: {size:,} hashes in {time.perf_counter() - start:.0f} s")
        sizes = np.bincount(cluster[cluster >= 0])
        info["clusters"] = len(sizes)
        info["clustered_rows"] = int(sizes.sum())
        sample = np.unpackbits(hashes[: min(size, 20_000)], axis=1).astype(np.float64)
        r = np.corrcoef(sample, rowvar=False)[~np.eye(256, dtype=bool)]
        info["generated_bit_corr_mean_abs"] = round(float(np.nanmean(np.abs(r))), 4)
        info["generated_bit_bias_mean_abs"] = round(float(np.abs(sample.mean(axis=0) - 0.5).mean()), 4)
        miss_source = lambda n: pd._pack(copula.sample(rng, n))  # noqa: E731
    keys = np.arange(KEY_BASE, KEY_BASE + size, dtype=np.int64)
    near = queries // 2
    sources = np.full(queries, -1, dtype=np.int64)
    sources[:near] = rng.integers(0, size, near)
    out = miss_source(queries)
    for i in range(near):
        bits = np.unpackbits(hashes[sources[i]])
        bits[rng.choice(256, int(rng.integers(0, threshold + 1)), replace=False)] ^= 1
        out[i] = np.packbits(bits)
    return Workload(keys, hashes, out, sources), info


def recall(results: Sequence[Sequence[int]], sources: npt.NDArray[np.int64]) -> float:
    near = [(keys, int(src)) for keys, src in zip(results, sources, strict=True) if src >= 0]
    if not near:
        return 1.0
    return sum(1 for keys, src in near if KEY_BASE + src in keys) / len(near)


#: Lookups per CPU-second of this process in the last ``timed_loop``: on a loaded machine, where wall-clock rates
#: mostly measure the other processes, this is the figure to compare (one thread).
cpu_rate = [0.0]


def timed_loop(queries: Sequence[Any], run: Callable[[Any], Any], budget_s: float) -> tuple[list[Any], float]:
    """Run queries one by one until done or out of time; returns the results and lookups per second.

    The collector is off meanwhile: the results are kept for checking, and with hundreds of hits a query (the
    clustered sets) collecting them again and again would be timed as lookup cost; a service drops them."""
    out: list[Any] = []
    gc.disable()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for q in queries:
            out.append(run(q))
            if time.perf_counter() - start > budget_s:
                break
        cpu_rate[0] = len(out) / max(time.process_time() - cpu, 1e-9)
        return out, len(out) / (time.perf_counter() - start)
    finally:
        gc.enable()


def threaded_qps(queries: Sequence[Any], run: Callable[[Any], Any], threads: int, lock: bool
                 ) -> tuple[float, float]:
    """Lookups per second with ``threads`` threads sharing the queries, and the process's CPU seconds per wall
    second meanwhile (above 1 only when lookups really ran at once; on a loaded machine it also shows how much
    CPU there was to have). ``lock``: every lookup holds one shared lock, as the matcher did before lookups were
    made concurrent (the baseline)."""
    import threading

    gate = threading.Lock()
    barrier = threading.Barrier(threads + 1)
    parts = [queries[i::threads] for i in range(threads)]

    def worker(part: Sequence[Any]) -> None:
        barrier.wait()
        for q in part:
            if lock:
                with gate:
                    run(q)
            else:
                run(q)

    pool = [threading.Thread(target=worker, args=(part,)) for part in parts]
    for t in pool:
        t.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    return len(queries) / wall, (time.process_time() - cpu) / wall


def bench_threads(index: PdqIndex, hexes: Sequence[str], threshold: int, counts: Sequence[int]) -> dict[str, Any]:
    """Lookups/s at each thread count, without a lock and with the old single lock, same queries."""
    out: dict[str, Any] = {}
    for n in counts:
        free, free_cpu = threaded_qps(hexes, lambda h: index.query(h, threshold), n, lock=False)
        locked, locked_cpu = threaded_qps(hexes, lambda h: index.query(h, threshold), n, lock=True)
        out[f"threads_{n}"] = {"lookups_per_s": round(free), "cpu_per_wall": round(free_cpu, 2),
                               "one_lock_lookups_per_s": round(locked), "one_lock_cpu_per_wall": round(locked_cpu, 2)}
        log(f"bastion: {n} thread(s): {free:,.0f} lookups/s (CPU/wall {free_cpu:.2f}); "
            f"with one lock {locked:,.0f} ({locked_cpu:.2f})")
    if len(counts) > 1:
        lo, hi = out[f"threads_{counts[0]}"], out[f"threads_{counts[-1]}"]
        out["scaling"] = round(hi["lookups_per_s"] / lo["lookups_per_s"], 2)
        out["scaling_one_lock"] = round(hi["one_lock_lookups_per_s"] / lo["one_lock_lookups_per_s"], 2)
    return out


# ---- Bastion -----------------------------------------------------------------------------------------------


def one_segment_rate(index: PdqIndex, queries: U8, threshold: int) -> int | None:
    """Lookups per CPU-second against the largest segment alone (the same kernel call, one source): compared
    with the whole index's rate times the number of segments, it shows whether a query over all segments costs
    more than the sum of its parts (address translation: 8+ GiB of tables is beyond what the TLB covers)."""
    sources = [s for s in index._sources if s[4] is not None]
    if len(sources) < 2:
        return None
    largest = max(sources, key=lambda s: s[4].rows)
    raw = [bytes(q) for q in queries]
    for q in raw[:50]:
        _mih.search([largest], q, threshold, False)
    start = time.process_time()
    for q in raw:
        _mih.search([largest], q, threshold, False)
    return round(len(raw) / (time.process_time() - start))


def bench_bastion(
    w: Workload,
    threshold: int,
    check: tuple[Workload, list[set[tuple[int, int]]]] | None,
    threads: Sequence[int] = (),
    segment_rows: int = SEGMENT_ROWS,
) -> dict[str, Any]:
    """``check``: queries with the flat scan's (key, distance) sets, to compare result sets exactly."""
    size = w.size
    rss0 = settle()
    reset_peak()
    index = PdqIndex(segment_rows=segment_rows)
    build_s = 0.0
    for keys, hashes in w.parts(segment_rows):  # streamed: a segment at a time; making them is not timed
        start = time.perf_counter()
        index.add_arrays(keys, hashes)
        build_s += time.perf_counter() - start
        del keys, hashes
    build_peak = peak_bytes()
    rss1 = settle()
    huge_built = huge_page_bytes()
    nbytes = index.nbytes()
    stats = index.stats()
    layout = f"chunks {stats['chunk_bits']}, dir bits {stats['dir_bits'][:1]}, segments {stats['segment_sizes']}"
    log(f"bastion: built {size:,} in {build_s:.1f} s, {layout}; rss {gib(rss1)} GiB ({gib(huge_built)} on huge pages), "
        f"peak while building {gib(build_peak)} GiB")

    hexes = [bytes(q).hex() for q in w.queries]
    for h in hexes[:50]:  # warm caches and page tables the way a running service would have them
        index.query(h, threshold)
    results, qps = timed_loop(hexes, lambda h: index.query(h, threshold), float("inf"))
    cpu_qps = cpu_rate[0]
    gc.disable()
    start = time.perf_counter()
    batch = index.query_batch(w.queries, threshold)
    batch_qps = len(w.queries) / (time.perf_counter() - start)
    gc.enable()
    assert batch == results, "query_batch disagrees with query"
    log(f"bastion: {qps:,.0f} lookups/s single ({cpu_qps:,.0f} per CPU-second), {batch_qps:,.0f} batched")
    one_segment_cpu_qps = one_segment_rate(index, w.queries, threshold)
    threaded = bench_threads(index, hexes, threshold, threads) if threads else None

    found = [[hit.key for hit in hits] for hits in results]
    false_hits = 0
    for keys, hashes in w.parts(segment_rows):  # streamed: the chunks are made again, one at a time
        first, last = int(keys[0]), int(keys[-1])
        for q, hits in zip(w.queries, results, strict=True):
            for hit in hits:
                if first <= hit.key <= last:
                    real = int(POPCOUNT[hashes[hit.key - first] ^ q].sum())
                    false_hits += real != hit.distance or real > threshold
        del keys, hashes
    exact = None
    if check is not None:
        queries, truth = check
        same = [
            {(hit.key, hit.distance) for hit in index.query_bytes(q, threshold)} == want
            for q, want in zip(queries.queries, truth, strict=False)
        ]
        exact = sum(same) / len(same)

    # Changes: one add must be visible to the next query; a remove must hide the entry.
    rng = np.random.default_rng(99)
    add_ms, remove_ms = [], []
    for i in range(200):
        value = bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex()
        key = 2**40 + i
        start = time.perf_counter()
        index.add(key, value)
        visible = any(hit.key == key for hit in index.query(value, 0))
        add_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        index.remove(key)
        hidden = not any(hit.key == key for hit in index.query(value, 0))
        remove_ms.append((time.perf_counter() - start) * 1e3)
        assert visible and hidden
    # Queries with the delta just under its merge limit (the slowest steady state).
    stats = index.stats()
    fill = stats["delta_limit"] - stats["delta"] - 1
    extra = rng.integers(0, 256, (fill, 32), dtype=np.uint8)
    for i in range(fill):
        index.add_bytes(2**41 + i, extra[i].tobytes())
    _, full_delta_qps = timed_loop(hexes[:1000], lambda h: index.query(h, threshold), float("inf"))
    open_rows = min((r for r in index.stats()["segment_sizes"] if r < segment_rows), default=0)
    rss_merge0 = settle()
    reset_peak()
    start = time.perf_counter()
    index.compact()  # the delta folded into the open segment
    merge_s = time.perf_counter() - start
    merge_peak = peak_bytes()
    # The worst merge: a whole segment of the bound rebuilt (what a compaction of a sealed one costs, and what
    # folding the delta costs when the open segment is nearly full).
    largest = max(index.stats()["segment_sizes"])
    index.remove(next(int(s.keys[0]) for s in index._segments if s.rows == largest))
    rss_rebuild0 = settle()
    reset_peak()
    start = time.perf_counter()
    index.compact()
    rebuild_s = time.perf_counter() - start
    rebuild_peak = peak_bytes()
    rss2 = settle()
    log(f"bastion: add+query {statistics.median(add_ms):.3f} ms; merge of the delta ({fill:,}) into the open "
        f"segment ({open_rows:,}): {merge_s:.1f} s, peak {gib(merge_peak)} GiB; rebuild of a {largest:,}-row "
        f"segment: {rebuild_s:.1f} s, peak {gib(rebuild_peak)} GiB (rss after {gib(rss2)} GiB)")

    figures = {
        "build_s": round(build_s, 2),
        "lookups_per_s": round(qps),
        "lookups_per_cpu_s": round(cpu_qps),
        "lookups_per_cpu_s_largest_segment_alone": one_segment_cpu_qps,
        "lookups_per_s_batch": round(batch_qps),
        "lookups_per_s_full_delta": round(full_delta_qps),
        "full_delta_rows": fill + 1,
        "recall": recall(found, w.sources),
        "hits_per_query_mean": round(sum(len(f) for f in found) / len(found), 1),
        "hits_per_query_max": max(len(f) for f in found),
        "exact_vs_flat": exact,
        "false_or_wrong_hits": false_hits,
        "bytes_per_hash_nbytes": round(nbytes / size, 1),
        "bytes_per_hash_rss": per_row(rss0, rss1, size),
        "add_visible_ms_median": round(statistics.median(add_ms), 4),
        "add_visible_ms_max": round(max(add_ms), 4),
        "remove_hidden_ms_median": round(statistics.median(remove_ms), 4),
        "merge_s": round(merge_s, 2),
        "merge_open_segment_rows": open_rows,
        "rebuild_largest_segment_s": round(rebuild_s, 2),
        "rebuild_largest_segment_rows": largest,
        "segment_rows": segment_rows,
        "segment_sizes": stats["segment_sizes"],
        "rss_gib_before": gib(rss0),
        "rss_gib_built": gib(rss1),
        "huge_pages_gib_built": gib(huge_built),
        "peak_rss_gib_build": gib(build_peak),
        "peak_rss_gib_merge": gib(merge_peak),
        "merge_transient_bytes_per_open_row": per_row(rss_merge0, merge_peak, open_rows) if open_rows else None,
        "peak_rss_gib_rebuild_segment": gib(rebuild_peak),
        "rebuild_transient_bytes_per_row": per_row(rss_rebuild0, rebuild_peak, largest),
        "rss_gib_end": gib(rss2),
        "chunk_bits": stats["chunk_bits"],
        "dir_bits": stats["dir_bits"][:1],
    }
    if threaded is not None:
        figures["threads"] = threaded
    return figures


# ---- baselines ---------------------------------------------------------------------------------------------


def bench_faiss_flat(w: Workload, threshold: int, budget_s: float) -> tuple[dict[str, Any], list[set[Any]]]:
    import faiss

    faiss.omp_set_num_threads(1)
    start = time.perf_counter()
    index = faiss.IndexBinaryFlat(256)
    index.add(w.hashes)
    build_s = time.perf_counter() - start

    def run(q: U8) -> set[tuple[int, int]]:
        lims, dist, rows = index.range_search(q[None, :], threshold + 1)  # radius is exclusive
        lo, hi = lims[0], lims[1]
        return {(KEY_BASE + int(r), int(d)) for r, d in zip(rows[lo:hi], dist[lo:hi], strict=True)}

    results, qps = timed_loop(list(w.queries), run, budget_s)
    cpu_qps = cpu_rate[0]
    log(f"faiss IndexBinaryFlat: {qps:,.1f} lookups/s over {len(results)} queries")
    found = [[key for key, _ in hits] for hits in results]
    figures = {
        "build_s": round(build_s, 2),
        "lookups_per_s": round(qps, 1),
        "lookups_per_cpu_s": round(cpu_qps, 1),
        "queries": len(results),
        "recall": recall(found, w.sources[: len(results)]),
    }
    return figures, results


def bench_threatexchange(w: Workload, budget_s: float) -> dict[str, Any]:
    import faiss
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    faiss.omp_set_num_threads(1)
    size = len(w.keys)
    flat_hex = w.hashes.tobytes().hex()
    entries = [(flat_hex[i * 64 : (i + 1) * 64], KEY_BASE + i) for i in range(size)]
    del flat_hex
    rss0 = settle()
    log(f"threatexchange PDQIndex: building {size:,} (slow)")
    start = time.perf_counter()
    index = PDQIndex(entries)
    build_s = time.perf_counter() - start
    del entries
    rss1 = settle()
    log(f"threatexchange PDQIndex: built in {build_s:.1f} s")
    hexes = [bytes(q).hex() for q in w.queries]
    for h in hexes[:5]:
        index.query(h)
    results, qps = timed_loop(hexes, index.query, budget_s)
    found = [[m.metadata for m in matches] for matches in results]
    log(f"threatexchange PDQIndex: {qps:,.1f} lookups/s over {len(results)} queries")
    figures = {
        "build_s": round(build_s, 2),
        "lookups_per_s": round(qps, 1),
        "queries": len(results),
        "recall": recall(found, w.sources[: len(results)]),
        "bytes_per_hash_rss": per_row(rss0, rss1, size),
        "threshold": 31,  # PDQIndex.get_match_threshold(): PDQ_CONFIDENT_MATCH_THRESHOLD
    }
    return figures


# ---- main --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated index sizes")
    parser.add_argument("--queries", type=int, default=2000, help="Bastion queries: half near, half misses")
    parser.add_argument("--baseline-queries", type=int, default=300, help="queries for each baseline")
    parser.add_argument("--baseline-seconds", type=float, default=120.0, help="time box per baseline")
    parser.add_argument("--threshold", type=int, default=31)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-threatexchange", action="store_true")
    parser.add_argument("--skip-flat", action="store_true")
    parser.add_argument("--dataset", choices=("random", "clustered", "natural"), default="random")
    parser.add_argument("--factor-share", type=float, default=0.0,
                        help="natural: share of latent variance from common factors (a correlation stress test)")
    parser.add_argument("--skip-random-baseline", action="store_true",
                        help="with --dataset: do not also measure the same size on random hashes")
    parser.add_argument("--threads", default="", help="also measure lookups/s at these thread counts, e.g. 1,2")
    parser.add_argument("--segment-rows", default=str(SEGMENT_ROWS),
                        help="the index's segment bound; a comma-separated list measures each in turn")
    parser.add_argument("--stream", action="store_true",
                        help="random hashes made and indexed a segment at a time (with --skip-flat and "
                             "--skip-threatexchange): the benchmark holds one segment's input, not all of it")
    args = parser.parse_args(argv)
    bounds = [int(b) for b in args.segment_rows.split(",")]
    if args.stream and (args.dataset != "random" or not args.skip_flat or not args.skip_threatexchange):
        parser.error("--stream needs --dataset random, --skip-flat and --skip-threatexchange")

    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        log(f"size {size:,}: generating {size:,} hashes and {args.queries} queries")
        if args.stream:
            w = streamed_workload(size, args.queries, args.threshold, args.seed)
            info = {"dataset": "random", "streamed": True}
        else:
            w, info = make_workload(size, args.queries, args.threshold, args.seed, args.dataset,
                                    args.factor_share)
        base = w.subset(min(args.baseline_queries, args.queries))
        run: dict[str, Any] = {"size": size, "data": info}
        truth = None
        if not args.skip_flat:
            run["faiss_flat"], truth = bench_faiss_flat(base, args.threshold, args.baseline_seconds)
            settle()
        threads = [int(n) for n in args.threads.split(",") if n]
        bastion = bench_bastion(w, args.threshold, (base, truth) if truth is not None else None, threads,
                                bounds[0])
        run["bastion"] = bastion
        settle()
        for bound in bounds[1:]:  # the same hashes and queries, another segment bound
            log(f"bastion with segments of at most {bound:,} rows")
            other = bench_bastion(w, args.threshold, None, (), bound)
            run[f"bastion_segment_rows_{bound}"] = other
            ratios_key = f"cpu_lookups_segments_{bound}_vs_{bounds[0]}"
            run.setdefault("segment_ratios", {})[ratios_key] = round(
                other["lookups_per_cpu_s"] / bastion["lookups_per_cpu_s"], 3)
            settle()
        if args.dataset != "random" and not args.skip_random_baseline:
            # The named baseline for a modelled set: the same index on uniform random hashes, in this process.
            rw, _ = make_workload(size, args.queries, args.threshold, args.seed)
            log("baseline: the same size on uniformly random hashes")
            random_run = bench_bastion(rw, args.threshold, None, (), bounds[0])
            run["bastion_random"] = {k: random_run[k] for k in ("build_s", "lookups_per_s", "lookups_per_cpu_s",
                                                                 "lookups_per_s_batch",
                                                                 "lookups_per_s_full_delta", "hits_per_query_mean")}
            del rw
            settle()
        if not args.skip_threatexchange:
            run["threatexchange"] = bench_threatexchange(base, args.baseline_seconds)
            settle()
        ratios = {}
        for name in ("threatexchange", "faiss_flat"):
            if name in run and run[name]["lookups_per_s"]:
                ratios[f"lookups_vs_{name}"] = round(bastion["lookups_per_s"] / run[name]["lookups_per_s"], 1)
        if "bastion_random" in run:
            ratios["lookups_vs_random_hashes"] = round(
                bastion["lookups_per_s"] / run["bastion_random"]["lookups_per_s"], 3)
            ratios["cpu_lookups_vs_random_hashes"] = round(
                bastion["lookups_per_cpu_s"] / run["bastion_random"]["lookups_per_cpu_s"], 3)
        if "threatexchange" in run:
            te = run["threatexchange"]
            ratios["build_time_vs_threatexchange"] = round(bastion["build_s"] / te["build_s"], 3)
            if te["bytes_per_hash_rss"] and bastion["bytes_per_hash_rss"]:
                ratios["memory_vs_threatexchange"] = round(
                    bastion["bytes_per_hash_rss"] / te["bytes_per_hash_rss"], 2
                )
        run["ratios"] = ratios
        runs.append(run)
        log(f"size {size:,}: {json.dumps(run)}")
        del w, base
        settle()

    print(
        json.dumps(
            {
                "benchmark": "matching",
                "date": datetime.date.today().isoformat(),
                "machine": f"{os.cpu_count()} cores {platform.machine()}, {platform.processor() or 'cpu'}",
                "threads": 1,
                "threshold": args.threshold,
                "queries": args.queries,
                "baseline_queries": args.baseline_queries,
                "seed": args.seed,
                "peak_rss_gib_process": gib(process_peak_bytes()),
                "runs": runs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
