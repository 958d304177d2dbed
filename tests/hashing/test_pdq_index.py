"""PdqIndex and its kernel against brute-force Hamming distance: exact recall, no false hits, keys once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bastion.hashing import _mih
from bastion.hashing.interfaces import IndexHit
from bastion.hashing.pdq_index import (
    LINEAR_BELOW,
    SEGMENT_ROWS,
    PdqIndex,
    choose_layout,
    hex_to_array,
    hex_to_bytes,
)

POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)
N_MIH = 60_000  # above LINEAR_BELOW, so the multi-index tables are used


def distances(hashes: np.ndarray, query: np.ndarray) -> np.ndarray:
    return POPCOUNT[hashes ^ query].sum(axis=1)


def brute(keys: np.ndarray, hashes: np.ndarray, query: np.ndarray, threshold: int) -> list[tuple[int, int]]:
    d = distances(hashes, query)
    rows = np.nonzero(d <= threshold)[0]
    return sorted((int(d[r]), int(keys[r])) for r in rows)


def as_pairs(hits: list[IndexHit]) -> list[tuple[int, int]]:
    return [(h.distance, h.key) for h in hits]


def flip(rng: np.random.Generator, h: np.ndarray, nbits: int) -> np.ndarray:
    bits = np.unpackbits(h)
    bits[rng.choice(256, nbits, replace=False)] ^= 1
    return np.packbits(bits)


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 32), dtype=np.uint8)


def near_queries(rng: np.random.Generator, hashes: np.ndarray, count: int, max_dist: int) -> list[np.ndarray]:
    picks = rng.integers(0, len(hashes), count)
    near = [flip(rng, hashes[i], int(rng.integers(0, max_dist + 1))) for i in picks]
    return near + list(random_hashes(rng, count))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    keys = rng.choice(2**40, N_MIH, replace=False).astype(np.int64)
    return keys, random_hashes(rng, N_MIH)


@pytest.fixture(scope="module")
def index(data: tuple[np.ndarray, np.ndarray]) -> PdqIndex:
    idx = PdqIndex()
    idx.add_arrays(*data)
    return idx


# ---- helpers -----------------------------------------------------------------------------------------------


def test_hex_round_trip() -> None:
    raw = bytes(range(32))
    assert hex_to_bytes(raw.hex()) == raw
    arr = hex_to_array([raw.hex(), bytes(32).hex()])
    assert arr.shape == (2, 32) and arr.dtype == np.uint8 and bytes(arr[0]) == raw


@pytest.mark.parametrize("bad", ["", "00" * 31, "00" * 33, "zz" * 32, "0" * 62 + " 0", "0" * 63 + "g"])
def test_bad_hex_is_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        hex_to_bytes(bad)
    with pytest.raises(ValueError):
        hex_to_array([bad])
    with pytest.raises(ValueError):
        PdqIndex().query(bad, 31)
    with pytest.raises(ValueError):
        PdqIndex().add(1, bad)


def test_layout_choice() -> None:
    assert choose_layout(LINEAR_BELOW - 1) == ((), 0)
    bits, dir_bits = choose_layout(10_000_000)
    assert sum(bits) == 256 and len(bits) == 11 and dir_bits == 21


# ---- exactness ---------------------------------------------------------------------------------------------


def test_empty_index() -> None:
    idx = PdqIndex()
    assert len(idx) == 0
    assert idx.query("00" * 32, 31) == []
    assert idx.query_batch(np.zeros((3, 32), np.uint8), 256) == [[], [], []]
    idx.remove(5)
    idx.add_arrays(np.zeros(0, np.int64), np.zeros((0, 32), np.uint8))
    assert len(idx) == 0 and idx.query("ff" * 32, 256) == []
    assert idx.stats()["live"] == 0 and idx.nbytes() >= 0


def test_uses_tables(index: PdqIndex) -> None:
    stats = index.stats()
    assert stats["chunks"] > 1 and stats["rows"] == N_MIH and stats["delta"] == 0


@pytest.mark.parametrize("threshold", range(0, 65))
def test_matches_brute_force(index: PdqIndex, data: tuple[np.ndarray, np.ndarray], threshold: int) -> None:
    keys, hashes = data
    rng = np.random.default_rng(threshold)
    for q in near_queries(rng, hashes, 3, threshold):
        assert as_pairs(index.query_bytes(q.tobytes(), threshold)) == brute(keys, hashes, q, threshold)


def test_hex_query_and_batch_agree(index: PdqIndex, data: tuple[np.ndarray, np.ndarray]) -> None:
    keys, hashes = data
    rng = np.random.default_rng(1)
    queries = np.stack(near_queries(rng, hashes, 50, 31))
    batch = index.query_batch(queries, 31)
    assert len(batch) == len(queries)
    for q, hits in zip(queries, batch, strict=True):
        assert hits == index.query(bytes(q).hex(), 31) == index.query_bytes(q, 31)
        assert as_pairs(hits) == brute(keys, hashes, q, 31)


def test_whole_range_thresholds(index: PdqIndex) -> None:
    q = np.zeros(32, np.uint8)
    everything = index.query_bytes(q, 256)
    assert len(everything) == N_MIH == len({h.key for h in everything})
    assert [h.distance for h in everything] == sorted(h.distance for h in everything)
    for bad in (-1, 257, 1000):
        with pytest.raises(ValueError):
            index.query_bytes(q, bad)
    with pytest.raises(ValueError):
        index.query_bytes(b"\x00" * 31, 10)


@pytest.mark.parametrize(
    ("chunk_bits", "dir_bits"),
    [
        ((24,) * 3 + (23,) * 8, 14),  # the 10M layout on few rows: long low-bit filters
        ((16,) * 16, 12),
        ((29,) * 4 + (28,) * 5, 15),
        ((11,) * 16 + (10,) * 8, 8),
        ((128, 128), 0),  # rejected below: wider than a chunk may be
    ],
)
def test_kernel_layouts(chunk_bits: tuple[int, ...], dir_bits: int) -> None:
    rng = np.random.default_rng(len(chunk_bits))
    n = 20_000
    hashes = random_hashes(rng, n)
    keys = np.arange(n, dtype=np.int64)
    if max(chunk_bits) > _mih.MAX_CHUNK_BITS:
        with pytest.raises(ValueError):
            _mih.Tables(hashes, chunk_bits, dir_bits)
        return
    tables = _mih.Tables(hashes, chunk_bits, dir_bits)
    assert bytes(memoryview(tables)) == hashes.tobytes()
    dead = np.zeros((n + 7) // 8, np.uint8)
    sources = ((None, keys, dead, n, tables),)
    for threshold in (0, 3, 11, 17, 31, 45, 70):
        for q in near_queries(rng, hashes, 4, threshold):
            got = _mih.search(sources, q.tobytes(), threshold, False)
            assert [(d, k) for k, d in got] == brute(keys, hashes, q, threshold)


def test_clustered_hashes_reported_once() -> None:
    """Near-duplicates share many chunks with the query; each must still come back exactly once."""
    rng = np.random.default_rng(3)
    centers = random_hashes(rng, 2_000)
    hashes = np.stack([flip(rng, centers[i // 25], int(rng.integers(0, 9))) for i in range(50_000)])
    keys = np.arange(50_000, dtype=np.int64) * 7
    idx = PdqIndex()
    idx.add_arrays(keys, hashes)
    for c in rng.integers(0, len(centers), 30):
        for threshold in (0, 8, 16, 31):
            q = flip(rng, centers[c], 4)
            assert as_pairs(idx.query_bytes(q, threshold)) == brute(keys, hashes, q, threshold)


def test_keys_up_to_2_62() -> None:
    rng = np.random.default_rng(4)
    n = 40_000
    keys = rng.integers(0, 2**62, n, dtype=np.int64)
    keys[0] = 2**62
    keys = np.unique(keys)
    hashes = random_hashes(rng, len(keys))
    idx = PdqIndex()
    idx.add_arrays(keys, hashes)
    for i in (0, len(keys) // 2, len(keys) - 1):
        assert IndexHit(int(keys[i]), 0) in idx.query_bytes(hashes[i], 0)
    idx.add(2**63 - 1, "ab" * 32)
    assert idx.query("ab" * 32, 0) == [IndexHit(2**63 - 1, 0)]
    idx.remove(int(keys[-1]))
    assert idx.query_bytes(hashes[-1], 0) == []
    for bad in (-1, 2**63):
        with pytest.raises(ValueError):
            idx.add(bad, "00" * 32)


# ---- changes -----------------------------------------------------------------------------------------------


def test_add_remove_readd() -> None:
    idx = PdqIndex()
    a, b = "00" * 32, "0f" * 32
    idx.add(1, a)
    idx.add(2, a)
    assert idx.query(a, 0) == [IndexHit(1, 0), IndexHit(2, 0)]
    idx.remove(1)
    assert idx.query(a, 0) == [IndexHit(2, 0)] and len(idx) == 1
    idx.add(1, b)  # re-add with a new value replaces nothing old
    assert idx.query(a, 0) == [IndexHit(2, 0)]
    assert idx.query(b, 0) == [IndexHit(1, 0)]
    idx.add(2, b)  # re-adding a live key replaces its value
    assert idx.query(a, 255) == [IndexHit(1, 128), IndexHit(2, 128)]
    assert idx.query(a, 0) == [] and len(idx) == 2


def test_remove_unknown_keys_is_silent(index: PdqIndex) -> None:
    before = len(index)
    for key in (-5, 2**64, 3, 10**15):
        index.remove(key)
    index.remove("x")  # type: ignore[arg-type]
    assert len(index) == before


def test_add_arrays_replaces_and_last_wins() -> None:
    rng = np.random.default_rng(5)
    hashes = random_hashes(rng, 4)
    idx = PdqIndex()
    idx.add(10, bytes(hashes[0]).hex())
    idx.add_arrays(np.array([10, 11, 11], np.int64), hashes[1:4])
    assert len(idx) == 2
    assert idx.query_bytes(hashes[0], 0) == []
    assert idx.query_bytes(hashes[1], 0) == [IndexHit(10, 0)]
    assert idx.query_bytes(hashes[2], 0) == []
    assert idx.query_bytes(hashes[3], 0) == [IndexHit(11, 0)]
    with pytest.raises(ValueError):
        idx.add_arrays(np.array([1]), np.zeros((1, 31), np.uint8))
    with pytest.raises(ValueError):
        idx.add_arrays(np.array([-1]), np.zeros((1, 32), np.uint8))


@pytest.mark.parametrize("bulk", [False, True])
def test_add_many(bulk: bool) -> None:
    rng = np.random.default_rng(6)
    n = 200
    hashes = random_hashes(rng, n)
    idx = PdqIndex(delta_limit=100 if bulk else 1000)
    idx.add_many((i, bytes(h).hex()) for i, h in enumerate(hashes))
    idx.wait_for_merge()
    assert len(idx) == n
    assert (idx.stats()["rows"] == n) is bulk
    for i in (0, n - 1):
        assert IndexHit(i, 0) in idx.query_bytes(hashes[i], 0)


def test_delta_tombstones_and_merges_stay_exact(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Random adds, re-adds and removals through many background merges, checked against a model."""
    base_keys, base_hashes = data
    rng = np.random.default_rng(8)
    idx = PdqIndex(delta_limit=300)
    idx.add_arrays(base_keys, base_hashes)
    model = {int(k): h for k, h in zip(base_keys, base_hashes, strict=True)}
    fresh = iter(range(2**50, 2**51))
    pool = [int(k) for k in base_keys[-2000:]]  # keys to re-add and remove; may hold removed ones
    for step in range(3_000):
        action = rng.random()
        if action < 0.5:
            key = next(fresh)
            model[key] = random_hashes(rng, 1)[0]
            idx.add(key, bytes(model[key]).hex())
            pool.append(key)
        elif action < 0.7:  # re-add a key (live or removed) with a nearby value
            key = pool[int(rng.integers(len(pool)))]
            model[key] = flip(rng, model.get(key, base_hashes[0]), 3)
            idx.add(key, bytes(model[key]).hex())
        else:
            key = pool[int(rng.integers(len(pool)))]
            model.pop(key, None)
            idx.remove(key)
        if step % 500 == 0:
            assert len(idx) == len(model)
        if step % 500 == 499:
            idx.wait_for_merge()  # on a loaded machine, let a merge finish so the next one can start
    assert idx.stats()["merges"] > 1
    idx.wait_for_merge()
    assert len(idx) == len(model)
    keys = np.array(list(model), np.int64)
    hashes = np.stack(list(model.values()))
    for q in near_queries(rng, hashes, 25, 31):
        assert as_pairs(idx.query_bytes(q, 31)) == brute(keys, hashes, q, 31)
    idx.compact()
    stats = idx.stats()
    assert stats["delta"] == 0 and stats["tombstones"] == 0 and stats["rows"] == len(model)
    for q in near_queries(rng, hashes, 10, 31):
        assert as_pairs(idx.query_bytes(q, 31)) == brute(keys, hashes, q, 31)


def test_add_and_remove_are_fast(index: PdqIndex) -> None:
    idx = PdqIndex()
    idx.add_arrays(np.arange(N_MIH, dtype=np.int64), random_hashes(np.random.default_rng(9), N_MIH))
    start = time.perf_counter()
    for key in range(N_MIH, N_MIH + 500):
        idx.add(key, "12" * 32)
    for key in range(0, 500):
        idx.remove(key)
    per_change = (time.perf_counter() - start) / 1000
    assert per_change < 1e-3
    assert {h.key for h in idx.query("12" * 32, 0)} == set(range(N_MIH, N_MIH + 500))


def test_memory_per_entry(index: PdqIndex) -> None:
    assert index.nbytes() / len(index) < 200  # small index; ~90 bytes at 10M (see docs/benchmarks.md)


@pytest.mark.parametrize("segment_rows", [SEGMENT_ROWS, 33_000])  # one segment; a sealed one and an open one
def test_concurrent_queries_during_merges(data: tuple[np.ndarray, np.ndarray], segment_rows: int) -> None:
    """Readers must see every stable entry exactly once while writers add, remove and merge."""
    keys, hashes = data
    idx = PdqIndex(delta_limit=500, segment_rows=segment_rows)
    idx.add_arrays(keys, hashes)
    stable = list(range(0, N_MIH, 997))
    stop = threading.Event()
    errors: list[str] = []
    checked = [0]

    def reader() -> None:
        while not stop.is_set():
            for row in stable:
                hits = idx.query_bytes(hashes[row], 6)
                found = [h.key for h in hits]
                if found.count(int(keys[row])) != 1 or len(found) != len(set(found)):
                    errors.append(f"row {row}: {found}")
                checked[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        rng = np.random.default_rng(10)
        stable_keys = {int(keys[r]) for r in stable}
        churn = [int(k) for k in keys if int(k) not in stable_keys][:3_000]
        for i, key in enumerate(churn):
            idx.remove(key)
            idx.add(2**45 + i, bytes(random_hashes(rng, 1)[0]).hex())
            new = random_hashes(rng, 1)[0]
            idx.add(key, bytes(new).hex())
            assert IndexHit(key, 0) in idx.query_bytes(new, 0)  # visible as soon as add returns
        idx.compact()
        idx.wait_for_merge()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:5]
    assert checked[0] > 0 and idx.stats()["merges"] >= 2  # one background merge at least, then compact()
    assert len(idx) == N_MIH + 3_000


@pytest.mark.parametrize("delta_limit", [100, 100_000])  # rebuild path, delta path
def test_add_arrays_into_non_empty_index(data: tuple[np.ndarray, np.ndarray], delta_limit: int) -> None:
    keys, hashes = data
    rng = np.random.default_rng(11)
    idx = PdqIndex(delta_limit=delta_limit)
    idx.add_arrays(keys, hashes)
    idx.remove(int(keys[0]))
    replaced = keys[1:2_001]  # new values for existing keys, plus 3,000 new keys
    more_keys = np.concatenate([replaced, np.arange(2**41, 2**41 + 3_000)])
    more_hashes = random_hashes(rng, len(more_keys))
    idx.add_arrays(more_keys, more_hashes)
    idx.wait_for_merge()
    assert (idx.stats()["delta"] == 0) is (delta_limit == 100)
    model = dict(zip(keys[1:].tolist(), hashes[1:], strict=True))
    model.update(zip(more_keys.tolist(), more_hashes, strict=True))
    assert len(idx) == len(model)
    all_keys = np.array(list(model), np.int64)
    all_hashes = np.stack(list(model.values()))
    for q in [*near_queries(rng, all_hashes, 10, 31), hashes[0], hashes[1], more_hashes[0]]:
        assert as_pairs(idx.query_bytes(q, 31)) == brute(all_keys, all_hashes, q, 31)


def test_a_snapshot_serves_the_same_answers_memory_mapped_and_takes_changes(
        data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    keys, hashes = data
    idx = PdqIndex()
    idx.add_arrays(keys, hashes)
    idx.remove(int(keys[0]))
    idx.add(2**50, "ab" * 32)  # in the delta: the snapshot folds it in
    meta = idx.save_snapshot(tmp_path / "snap", {"change_id": 42})
    assert meta["rows"] == N_MIH and meta["change_id"] == 42 and len(meta["segments"][0]["chunk_bits"]) > 1
    loaded, info = PdqIndex.from_snapshot(tmp_path / "snap")
    assert info == meta and len(loaded) == len(idx) == N_MIH
    assert loaded.stats()["delta"] == 0 and loaded._segments[0].tables.borrowed
    rng = np.random.default_rng(3)
    queries = hashes[rng.choice(N_MIH, 200)].copy()
    queries[:, :3] ^= rng.integers(0, 256, (200, 3), dtype=np.uint8)
    assert loaded.query_batch(queries, 31) == idx.query_batch(queries, 31)
    assert loaded.query_bytes(hashes[0], 0) == [] and loaded.query("ab" * 32, 0) == [IndexHit(2**50, 0)]
    loaded.remove(int(keys[1]))  # tombstones are the process's own copy, not the file's
    loaded.add(2**51, "cd" * 32)
    assert loaded.query_bytes(hashes[1], 0) == [] and loaded.query("cd" * 32, 0) == [IndexHit(2**51, 0)]
    assert PdqIndex.from_snapshot(tmp_path / "snap")[0].query_bytes(hashes[1], 0) == [IndexHit(int(keys[1]), 0)]
    loaded.compact()  # the next segment is built in ordinary memory
    assert not any(s.tables.borrowed for s in loaded._segments) and len(loaded) == N_MIH


def test_a_missing_or_damaged_snapshot_is_refused(data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    keys, hashes = data
    with pytest.raises(ValueError, match="no readable"):
        PdqIndex.from_snapshot(tmp_path / "none")
    idx = PdqIndex()
    idx.add_arrays(keys, hashes)
    idx.save_snapshot(tmp_path / "snap")
    np.save(tmp_path / "snap" / "seg_0" / "ent_0.npy", np.zeros(10, np.uint32))
    with pytest.raises(ValueError, match="damaged"):
        PdqIndex.from_snapshot(tmp_path / "snap")
    (tmp_path / "snap" / "meta.json").write_text('{"format": 99}')
    with pytest.raises(ValueError, match="format 99"):
        PdqIndex.from_snapshot(tmp_path / "snap")
    empty = PdqIndex()
    empty.save_snapshot(tmp_path / "empty")
    assert len(PdqIndex.from_snapshot(tmp_path / "empty")[0]) == 0


def test_the_kernel_builds_the_hits_itself(index: PdqIndex, data: tuple[np.ndarray, np.ndarray]) -> None:
    keys, hashes = data
    (hit,) = index.query_bytes(hashes[5], 0)
    assert type(hit) is IndexHit and hit == IndexHit(int(keys[5]), 0) and (hit.key, hit.distance) == hit
    assert all(type(h) is IndexHit for hits in index.query_batch(hashes[:3], 31) for h in hits)
    for bad in (list, int, "x"):
        with pytest.raises(TypeError, match="hit_type"):
            _mih.search(index._sources, hashes[5].tobytes(), 0, False, bad)


# ---- segments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_segmented_index_matches_brute_force_through_every_kind_of_change(seed: int, tmp_path: Path) -> None:
    """A differential test: small segments (some with tables, some scanned), bulk loads that top up the open
    segment and replace keys in sealed ones, adds, re-adds, removals, background merges, compactions and a
    snapshot round trip, each step checked against a brute-force scan of a model."""
    rng = np.random.default_rng(seed)
    idx = PdqIndex(delta_limit=200, segment_rows=40_000)
    model: dict[int, np.ndarray] = {}
    next_key = [0]

    def new_keys(n: int) -> np.ndarray:
        out = np.arange(next_key[0], next_key[0] + n, dtype=np.int64) * 3 + 2**33 * int(rng.integers(0, 2))
        next_key[0] += n
        return out

    def bulk(n: int) -> None:
        fresh = new_keys(n)
        known = np.array(list(model), np.int64)
        again = rng.choice(known, min(len(known), n // 10), replace=False) if len(known) else known[:0]
        keys = np.concatenate([fresh, again, fresh[:5]])  # replaced keys, and repeats within the batch
        order = rng.permutation(len(keys))
        keys = keys[order]
        hashes = random_hashes(rng, len(keys))
        hashes[: len(keys) // 4] = hashes[0]  # bit-identical copies under different keys
        idx.add_arrays(keys, hashes)
        model.update(zip(keys.tolist(), hashes, strict=True))

    def check(count: int = 12) -> None:
        idx.wait_for_merge()
        assert len(idx) == len(model)
        keys = np.array(list(model), np.int64)
        hashes = np.stack(list(model.values()))
        queries = near_queries(rng, hashes, count, 40)
        for threshold in (0, 31, 40):
            got = idx.query_batch(np.stack(queries), threshold)
            for q, hits in zip(queries, got, strict=True):
                assert as_pairs(hits) == brute(keys, hashes, q, threshold)

    bulk(70_000)  # 40,000 + 30,000 (open), built segment by segment
    assert 39_900 <= idx.stats()["segment_sizes"][0] <= 40_000  # less the keys repeated in the slice
    check()
    bulk(25_000)  # tops up the open segment, then starts another
    assert max(idx.stats()["segment_sizes"]) <= 40_000 and idx.stats()["segments"] >= 3
    check()
    for step in range(4_000):
        action = rng.random()
        keys = list(model)
        if action < 0.45:
            key = int(new_keys(1)[0])
            model[key] = random_hashes(rng, 1)[0]
            idx.add(key, bytes(model[key]).hex())
        elif action < 0.65:  # re-add a key (live or removed) with a nearby value
            key = keys[int(rng.integers(len(keys)))]
            model[key] = flip(rng, model[key], int(rng.integers(0, 8)))
            idx.add(key, bytes(model[key]).hex())
        else:  # removals concentrated on the oldest keys, so a sealed segment passes its tombstone share
            key = keys[int(rng.integers(min(len(keys), 8_000)))]
            del model[key]
            idx.remove(key)
        if step == 2_000:
            check()
    check()
    stats = idx.stats()
    assert stats["merges"] > 5 and all(rows <= 40_000 for rows in stats["segment_sizes"])
    meta = idx.save_snapshot(tmp_path / "snap", {"change_id": 1})
    assert meta["format"] == 2 and len(meta["segments"]) == stats["segments"]
    loaded, _ = PdqIndex.from_snapshot(tmp_path / "snap", segment_rows=40_000)
    assert loaded.stats()["segment_sizes"] == idx.stats()["segment_sizes"]
    idx = loaded
    check()
    bulk(5_000)
    for key in list(model)[:3_000]:
        del model[key]
        idx.remove(key)
    check()
    idx.compact()
    assert idx.stats()["tombstones"] == 0 and idx.stats()["delta"] == 0
    check()


def test_merges_rebuild_only_the_open_segment_and_compact_one_at_a_time() -> None:
    rng = np.random.default_rng(4)
    idx = PdqIndex(delta_limit=100, segment_rows=1_000)
    keys = np.arange(4_500, dtype=np.int64)
    idx.add_arrays(keys, random_hashes(rng, 4_500))
    assert idx.stats()["segment_sizes"] == [1_000, 1_000, 1_000, 1_000, 500]
    sealed = idx._segments[:4]
    for i in range(150):  # 150 adds: a background merge folds them into the open segment
        idx.add(10_000 + i, bytes(random_hashes(rng, 1)[0]).hex())
    idx.wait_for_merge()
    assert all(a is b for a, b in zip(sealed, idx._segments[:4], strict=True))
    assert idx.stats()["segment_sizes"][4] >= 600
    for key in range(1_000, 1_200):  # a fifth of the second segment
        idx.remove(key)
    idx.wait_for_merge()
    assert idx._segments[0] is sealed[0] and all(s is not sealed[1] for s in idx._segments)
    # compacted at an eighth (125 dead); the removals after that wait as tombstones for the next eighth
    assert idx.stats()["tombstones"] < 125 and len(idx) == 4_500 + 150 - 200
    assert idx.stats()["rows"] < 4_650


def test_add_many_hands_on_a_segment_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import bastion.hashing.pdq_index as module

    monkeypatch.setattr(module, "_PACK_CHUNK", 100)
    seen: list[int] = []
    idx = PdqIndex(segment_rows=250)
    real = idx.add_arrays
    monkeypatch.setattr(idx, "add_arrays", lambda k, h: (seen.append(len(k)), real(k, h)))
    rng = np.random.default_rng(5)
    values = [bytes(h).hex() for h in random_hashes(rng, 1_000)]
    idx.add_many(enumerate(values))
    assert seen == [300, 300, 300, 100] and len(idx) == 1_000
    assert idx.query(values[999], 0) == [IndexHit(999, 0)]


def test_a_format_1_snapshot_still_loads(data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """Written before segments: the files of its one segment at the top of the directory."""
    keys, hashes = data
    idx = PdqIndex()
    idx.add_arrays(keys, hashes)
    idx.remove(int(keys[3]))
    meta = idx.save_snapshot(tmp_path / "snap", {"change_id": 7})
    snap = tmp_path / "snap"
    for f in (snap / "seg_0").iterdir():
        f.rename(snap / f.name)
    (snap / "seg_0").rmdir()
    seg = meta["segments"][0]
    old = {"format": 1, "rows": seg["rows"], "chunk_bits": seg["chunk_bits"], "dir_bits": seg["dir_bits"],
           "ndead": seg["ndead"], "change_id": 7}
    (snap / "meta.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="format 1 with one segment above"):  # a matcher then loads in full
        PdqIndex.from_snapshot(snap, segment_rows=N_MIH // 2)
    loaded, info = PdqIndex.from_snapshot(snap)
    assert info["change_id"] == 7 and len(loaded) == N_MIH - 1
    assert loaded.query_bytes(hashes[3], 0) == [] and loaded.query_bytes(hashes[4], 0) == [IndexHit(int(keys[4]), 0)]
    loaded.add(2**50, "ab" * 32)
    loaded.save_snapshot(snap)  # rewritten in the current format
    assert json.loads((snap / "meta.json").read_text())["format"] == 2


def test_the_kernel_gathers_rows_from_several_buffers_into_the_same_tables() -> None:
    """What merges build with: rows taken from several buffers, numbered one after another."""
    rng = np.random.default_rng(6)
    a, b = random_hashes(rng, 40_000), random_hashes(rng, 5_000)
    rows = rng.permutation(45_000)[:41_000].astype(np.int64)
    chunk_bits, dir_bits = choose_layout(len(rows))
    gathered = _mih.Tables([a, b], chunk_bits, dir_bits, rows)
    copied = _mih.Tables(np.concatenate([a, b])[rows], chunk_bits, dir_bits)
    assert bytes(gathered) == bytes(copied)
    assert all(bytes(gathered.ent_array(j)) == bytes(copied.ent_array(j)) for j in range(len(chunk_bits)))
    with pytest.raises(ValueError, match="outside"):
        _mih.Tables([a, b], chunk_bits, dir_bits, np.array([45_000], np.int64))
    with pytest.raises(ValueError, match="int64"):
        _mih.Tables([a], (), 0, np.array([1], np.int32))


def test_more_segments_than_the_kernel_takes_are_refused_and_nothing_is_lost() -> None:
    rng = np.random.default_rng(12)
    idx = PdqIndex(segment_rows=10)
    hashes = random_hashes(rng, 700)
    with pytest.raises(RuntimeError, match="segments"):
        idx.add_arrays(np.arange(700), hashes)
    assert idx.stats()["segments"] == _mih.MAX_SOURCES - 2 and len(idx) == 10 * idx.stats()["segments"]
    assert idx.query_bytes(hashes[5], 0) == [IndexHit(5, 0)]
