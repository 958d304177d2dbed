"""Exact in-memory index of PDQ hashes (256 bits): every entry within a Hamming threshold, fast at 10M.

The work is done by the compiled multi-index-hashing kernel in ``_mih.c``; this module keeps its state:

- *segments*: each an immutable ``_mih.Tables`` (aligned hashes + per-chunk tables) with its keys, sorted so
  that one array maps row -> key and, by binary search, key -> row; removed rows are bits in a tombstone bitset.
  A segment holds at most ``segment_rows`` rows (``SEGMENT_ROWS`` by default); the smallest segment below that
  bound is the *open* one, the others are *sealed*;
- a *delta*: entries added since the last merge, scanned linearly by the kernel;
- while a merge runs, the *frozen* delta being folded into the open segment.

``add`` and ``remove`` cost microseconds. When the delta fills, a background thread rebuilds the open segment
with the delta (a segment that would pass the bound is split and its full part sealed); when a segment's
tombstones pass an eighth of it, that segment alone is rebuilt from its live rows. Sealed segments are never
rebuilt for additions, so a merge needs memory for one segment at most beside the index, whatever its size.
Queries keep running meanwhile and every live entry is seen exactly once, because each key lives in exactly one
of the segments / frozen / delta, and removals made during the merge are logged and replayed onto the new
segments before the swap.

Readers never take a lock: they read ``self._sources`` (one attribute load), a tuple rebuilt under the lock
after every change, and the kernel holds buffer views of what it reads until it returns.

Snapshots (``save_snapshot`` / ``from_snapshot``): each segment's arrays, as the kernel reads them, in ``.npy``
files. A restarted process memory-maps them (``np.load(mmap_mode="r")``) and answers at once: nothing is parsed,
sorted or built, and pages are read from the file as queries touch them. A segment's next rebuild puts it in
ordinary memory.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

import bastion.hashing._mih as _mih
from bastion.hashing.exact import validate_hex
from bastion.hashing.interfaces import IndexHit, SignalIndex
from bastion.hashing.pdq import MATCH_THRESHOLD

__all__ = [
    "HASH_BYTES",
    "SEGMENT_ROWS",
    "PdqIndex",
    "choose_layout",
    "hex_to_array",
    "hex_to_bytes",
]

log = logging.getLogger(__name__)

HASH_BYTES: Final = 32
HEX_CHARS: Final = 2 * HASH_BYTES
MAX_THRESHOLD: Final = 256
MAX_KEY: Final = 2**63 - 1
#: Threshold the chunk layout is tuned for (PDQ's usual match threshold); any 0..256 stays exact.
DESIGN_THRESHOLD: Final = MATCH_THRESHOLD
#: Below this many rows a linear scan is as fast as it needs to be and holds no tables.
LINEAR_BELOW: Final = 32_768
#: Version of the snapshot layout (``meta.json``'s ``format``): 2 is one sub-directory per segment; 1 (one
#: segment, files at the top) still loads; another version is refused.
SNAPSHOT_FORMAT: Final = 2
#: Most rows in one segment. A query searches every segment, so fewer, larger segments answer faster, while a
#: merge holds one segment's rebuild (100-120 B a row, measured) beside the index: at 100M rows, 4 segments of 25M
#: measured 1,077 lookups per CPU-second on the quiet machine (20M: 690-835, short of 1,000) and peaked at 10.8 GiB
#: (11.6 GB) while rebuilding one, under 12 GB. docs/matching-scale.md has the arithmetic and the measurements.
SEGMENT_ROWS: Final = 25_000_000

U8Array = npt.NDArray[np.uint8]
I64Array = npt.NDArray[np.int64]
KeyArray = npt.NDArray[Any]  # uint32 when every key fits, else int64
# What the kernel reads: (hashes, keys, dead bitset, row count, tables or None).
Source = tuple[Any, KeyArray, U8Array, int, Any]


_PACK_CHUNK = 65_536


def hex_to_bytes(value: str) -> bytes:
    """32 bytes of a 64-hex-digit PDQ value; ``ValueError`` (``InvalidSignalValue``) on anything else."""
    return bytes.fromhex(validate_hex(value, HEX_CHARS, "a PDQ hash"))


def hex_to_array(values: Sequence[str]) -> U8Array:
    """An ``(N, 32)`` uint8 array of many hex PDQ values (one ``fromhex`` call, not N)."""
    for value in values:
        if len(value) != HEX_CHARS:
            raise ValueError(f"a PDQ hash is {HEX_CHARS} hex digits, got {len(value)} characters")
    try:
        raw = bytes.fromhex("".join(values))
    except ValueError:
        raise ValueError("a PDQ hash contains only hex digits 0-9a-f") from None
    if len(raw) != HASH_BYTES * len(values):
        raise ValueError("a PDQ hash contains only hex digits 0-9a-f")
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), HASH_BYTES).copy()


def _even_split(m: int) -> tuple[int, ...]:
    width, wider = divmod(8 * HASH_BYTES, m)
    return (width + 1,) * wider + (width,) * (m - wider)


def choose_layout(rows: int, threshold: int = DESIGN_THRESHOLD) -> tuple[tuple[int, ...], int]:
    """Chunk widths (summing to 256) and directory bits that minimise the kernel's cost model at
    ``threshold``, within ~56 bytes of tables per row; ``((), 0)`` means a plain linear scan.

    At 10M rows: 11 chunks (3 of 24 bits, 8 of 23) and 2^21-slot directories, i.e. about log2(rows) bits a
    chunk and a few rows a bucket.
    """
    if rows < LINEAR_BELOW:
        return (), 0
    row_bits = max(1, (rows - 1).bit_length())
    table_budget = 56 * rows + (8 << 20)
    best: tuple[float, tuple[int, ...], int] = (_mih.estimate((), 0, rows, threshold), (), 0)
    for m in range(2, _mih.MAX_CHUNKS + 1):
        bits = _even_split(m)
        if max(bits) > _mih.MAX_CHUNK_BITS:
            continue
        for dir_bits in range(max(1, row_bits - 6), min(row_bits, _mih.MAX_CHUNK_BITS) + 1):
            if max(bits) - dir_bits > 32 - row_bits:
                continue  # the row number would not fit next to the low bits
            table_bytes = 4 * (m * rows + sum(1 << min(dir_bits, b) for b in bits))
            if table_bytes > table_budget:
                continue
            cost = _mih.estimate(bits, dir_bits, rows, threshold)
            if cost < best[0]:
                best = (cost, bits, dir_bits)
    return best[1], best[2]


def _check_threshold(threshold: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise TypeError("threshold must be an int")
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise ValueError(f"threshold must be 0..{MAX_THRESHOLD}, got {threshold}")


def _check_key(key: int) -> None:
    if isinstance(key, bool) or not isinstance(key, int | np.integer):
        raise TypeError("keys are ints")
    if not 0 <= key <= MAX_KEY:
        raise ValueError(f"keys are 0..2**63-1, got {key}")


def _set_bit(bits: U8Array, row: int) -> bool:
    """Set bit ``row``; False when it was already set."""
    byte = int(bits[row >> 3])
    mask = 1 << (row & 7)
    if byte & mask:
        return False
    bits[row >> 3] = byte | mask
    return True


def _live_mask(dead: U8Array, rows: int) -> npt.NDArray[np.bool_]:
    alive: npt.NDArray[np.bool_] = np.unpackbits(dead, count=rows, bitorder="little") == 0
    return alive


@dataclass(slots=True)
class _Segment:
    """The static part: immutable tables and sorted keys, plus a tombstone bitset (the only thing that
    changes)."""

    tables: Any  # _mih.Tables
    keys: KeyArray
    dead: U8Array
    ndead: int = 0

    @classmethod
    def build(cls, keys: I64Array, hashes: U8Array | Sequence[Any], rows: I64Array | None = None) -> _Segment:
        """``keys`` strictly increasing; ``hashes`` (N, 32) in the same order, or with ``rows`` the buffers of
        hashes (numbered one after another) that the kernel gathers ``rows`` from, in the keys' order."""
        count = len(keys)
        chunk_bits, dir_bits = choose_layout(count)
        if rows is None:
            tables = _mih.Tables(np.ascontiguousarray(hashes, dtype=np.uint8), chunk_bits, dir_bits)
        else:
            tables = _mih.Tables(hashes, chunk_bits, dir_bits, np.ascontiguousarray(rows, dtype=np.int64))
        small = count == 0 or int(keys[-1]) <= np.iinfo(np.uint32).max
        # a copy either way: ``keys`` may be a slice of a larger array that must not stay alive with the segment
        stored: KeyArray = keys.astype(np.uint32) if small else np.array(keys, dtype=np.int64)
        return cls(tables, stored, np.zeros((count + 7) // 8, dtype=np.uint8))

    @property
    def rows(self) -> int:
        return len(self.keys)

    @property
    def live(self) -> int:
        return self.rows - self.ndead

    def hashes(self) -> U8Array:
        """The tables' own aligned copy of the hashes, as a read-only (N, 32) view."""
        return np.frombuffer(self.tables, dtype=np.uint8).reshape(self.rows, HASH_BYTES)

    def find(self, key: int) -> int:
        """Row of a key (dead or alive), -1 when absent."""
        if self.rows == 0 or key > int(self.keys[-1]):
            return -1
        row = int(np.searchsorted(self.keys, self.keys.dtype.type(key)))
        return row if int(self.keys[row]) == key else -1

    def kill(self, key: int) -> bool:
        row = self.find(key)
        if row < 0 or not _set_bit(self.dead, row):
            return False
        self.ndead += 1
        return True

    def kill_many(self, keys: I64Array) -> int:
        """Kill the live rows of ``keys`` (int64, any order; absent keys ignored); returns how many died."""
        if self.rows == 0 or len(keys) == 0:
            return 0
        return self.kill_rows(self._rows_of(keys))

    def kill_rows(self, rows: I64Array) -> int:
        """Kill those of ``rows`` still alive; returns how many died."""
        if len(rows) == 0:
            return 0
        rows = np.unique(rows)
        alive = ((self.dead[rows >> 3] >> (rows & 7).astype(np.uint8)) & 1) == 0
        rows = rows[alive]
        np.bitwise_or.at(self.dead, rows >> 3, np.left_shift(1, rows & 7).astype(np.uint8))
        self.ndead += len(rows)
        return len(rows)

    def _rows_of(self, keys: I64Array) -> I64Array:
        """Rows (dead or alive) of those of ``keys`` that are in this segment."""
        lo, hi = int(self.keys[0]), int(self.keys[-1])
        inside = keys[(keys >= lo) & (keys <= hi)]
        pos = np.searchsorted(self.keys, inside.astype(self.keys.dtype))
        np.minimum(pos, self.rows - 1, out=pos)
        found: I64Array = pos[self.keys[pos] == inside].astype(np.int64)
        return found

    def live_rows(self) -> tuple[I64Array, I64Array, Any, int]:
        """Keys and row numbers of the live rows, the buffer of hashes they index, and its row count."""
        if self.ndead:
            rows: I64Array = np.flatnonzero(_live_mask(self.dead, self.rows)).astype(np.int64)
            keys: I64Array = self.keys[rows].astype(np.int64)
        else:
            rows, keys = np.arange(self.rows, dtype=np.int64), self.keys.astype(np.int64)
        return keys, rows, self.tables, self.rows

    def source(self) -> Source:
        return (None, self.keys, self.dead, self.rows, self.tables)

    def nbytes(self) -> int:
        return int(self.tables.nbytes) + self.keys.nbytes + self.dead.nbytes


class _Delta:
    """Recent additions, appended in place and scanned linearly. Readers see a prefix of ``count`` rows, so
    writes past it are invisible to them; growing allocates new arrays and leaves the old ones to readers
    holding them."""

    __slots__ = ("count", "dead", "hashes", "keys", "pos")

    def __init__(self, capacity: int = 1024) -> None:
        self.keys: I64Array = np.zeros(capacity, dtype=np.int64)
        self.hashes: U8Array = np.zeros(capacity * HASH_BYTES, dtype=np.uint8)
        self.dead: U8Array = np.zeros((capacity + 7) // 8, dtype=np.uint8)
        self.count = 0
        self.pos: dict[int, int] = {}  # live key -> row; small by construction (bounded by the merge limit)

    def append(self, key: int, raw: bytes) -> None:
        if self.count == len(self.keys):
            self._grow()
        row = self.count
        self.keys[row] = key
        self.hashes[row * HASH_BYTES : (row + 1) * HASH_BYTES] = np.frombuffer(raw, dtype=np.uint8)
        self.pos[key] = row
        self.count = row + 1

    def _grow(self) -> None:
        capacity = 2 * len(self.keys)
        keys = np.zeros(capacity, dtype=np.int64)
        hashes = np.zeros(capacity * HASH_BYTES, dtype=np.uint8)
        dead = np.zeros((capacity + 7) // 8, dtype=np.uint8)
        keys[: self.count] = self.keys[: self.count]
        hashes[: self.count * HASH_BYTES] = self.hashes[: self.count * HASH_BYTES]
        dead[: len(self.dead)] = self.dead
        self.keys, self.hashes, self.dead = keys, hashes, dead

    def kill(self, key: int) -> bool:
        row = self.pos.pop(key, None)
        if row is None:
            return False
        _set_bit(self.dead, row)
        return True

    @property
    def live(self) -> int:
        return len(self.pos)

    def live_rows(self) -> tuple[I64Array, I64Array, Any, int]:
        """As ``_Segment.live_rows``: rows in the order they were added."""
        rows = np.fromiter(sorted(self.pos.values()), dtype=np.int64, count=len(self.pos))
        return self.keys[rows], rows, self.hashes, len(self.keys)

    def source(self) -> Source:
        return (self.hashes, self.keys, self.dead, self.count, None)

    def nbytes(self) -> int:
        # the dict: ~100 bytes an entry (slot, int key, int row)
        return self.keys.nbytes + self.hashes.nbytes + self.dead.nbytes + 100 * len(self.pos)


def _sorted_unique(keys: I64Array, hashes: npt.NDArray[Any]) -> tuple[I64Array, npt.NDArray[Any]]:
    """Sort rows by key; of rows with equal keys keep the last one (later parts replace earlier ones).
    ``hashes``: the rows' hashes, or their row numbers."""
    if len(keys) < 2 or bool(np.all(keys[1:] > keys[:-1])):
        return keys, hashes
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    last = np.ones(len(keys), dtype=np.bool_)
    last[:-1] = ordered[1:] != ordered[:-1]
    picked = order[last]
    return ordered[last], hashes[picked]


class PdqIndex(SignalIndex):
    """Exact PDQ index: ``query`` returns every live entry within ``threshold`` bits, sorted by distance,
    then key.

    Thread safety: any number of threads may query while others add and remove; changes are serialised by a
    lock held for microseconds, and merges run in a background thread without blocking either. The kernel
    releases the GIL while it searches, so queries from several threads run on several cores.
    """

    concurrent = True

    def __init__(self, *, delta_limit: int | None = None, segment_rows: int = SEGMENT_ROWS) -> None:
        """``delta_limit``: rows in the delta that trigger a background merge; by default it scales with the
        index so that scanning the delta stays a small share of a query. ``segment_rows``: most rows in one
        segment (see ``SEGMENT_ROWS``)."""
        if delta_limit is not None and delta_limit < 1:
            raise ValueError("delta_limit must be positive")
        if not 1 <= segment_rows <= 1 << 30:
            raise ValueError("segment_rows must be 1..2**30")
        self._fixed_limit = delta_limit
        self._segment_rows = segment_rows
        self._lock = threading.Lock()  # guards every field below
        self._merge_lock = threading.Lock()  # one merge at a time
        self._segments: tuple[_Segment, ...] = ()  # replaced whole, never changed in place
        self._frozen: _Delta | None = None
        self._delta = _Delta()
        self._removed_during_merge: list[int] | None = None
        self._merge_thread: threading.Thread | None = None
        self._merges = 0
        self._sources: tuple[Source, ...] = ()

    # ---- reading -------------------------------------------------------------------------------------------

    def query(self, value: str, threshold: int) -> list[IndexHit]:
        return self.query_bytes(hex_to_bytes(value), threshold)

    def query_bytes(self, h: bytes | bytearray | memoryview | U8Array, threshold: int) -> list[IndexHit]:
        """Like ``query`` for 32 raw hash bytes (``bytes.fromhex`` of the value)."""
        _check_threshold(threshold)
        raw = np.ascontiguousarray(h, dtype=np.uint8) if isinstance(h, np.ndarray) else h
        # the kernel checks the length (ValueError unless 32 bytes) and builds the IndexHit tuples itself
        hits: list[IndexHit] = _mih.search(self._sources, raw, threshold, False, IndexHit)
        return hits

    def query_batch(self, hashes: U8Array, threshold: int) -> list[list[IndexHit]]:
        """One result list per row of an ``(Q, 32)`` uint8 array, in one call to the kernel."""
        _check_threshold(threshold)
        queries = np.ascontiguousarray(hashes, dtype=np.uint8)
        if queries.ndim != 2 or queries.shape[1] != HASH_BYTES:
            raise ValueError(f"queries must have shape (Q, {HASH_BYTES})")
        batch: list[list[IndexHit]] = _mih.search(self._sources, queries, threshold, True, IndexHit)
        return batch

    def __len__(self) -> int:
        with self._lock:
            return self._live_locked()

    def _live_locked(self) -> int:
        frozen = self._frozen.live if self._frozen is not None else 0
        return sum(s.live for s in self._segments) + frozen + self._delta.live

    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes_locked()

    def _nbytes_locked(self) -> int:
        parts = (*self._segments, self._frozen, self._delta)
        return sum(part.nbytes() for part in parts if part is not None)

    def stats(self) -> dict[str, Any]:
        """Sizes for /status and the benchmarks (layout: the largest segment's)."""
        with self._lock:
            segments = self._segments
            largest = max(segments, key=lambda s: s.rows, default=None)
            return {
                "live": self._live_locked(),
                "rows": sum(s.rows for s in segments),
                "tombstones": sum(s.ndead for s in segments),
                "segments": len(segments),
                "segment_rows": self._segment_rows,
                "segment_sizes": [s.rows for s in segments],
                "delta": self._delta.count,
                "delta_live": self._delta.live,
                "frozen": self._frozen.count if self._frozen is not None else 0,
                "chunks": len(largest.tables.chunk_bits) if largest is not None else 0,
                "chunk_bits": list(largest.tables.chunk_bits) if largest is not None else [],
                "dir_bits": list(largest.tables.dir_bits) if largest is not None else [],
                "delta_limit": self._limit_locked(),
                "merging": self._removed_during_merge is not None,
                "merges": self._merges,
                "bytes": self._nbytes_locked(),
            }

    # ---- writing -------------------------------------------------------------------------------------------

    def add(self, key: int, value: str) -> None:
        self.add_bytes(key, hex_to_bytes(value))

    def add_bytes(self, key: int, raw: bytes) -> None:
        """Like ``add`` for 32 raw hash bytes."""
        _check_key(key)
        if len(raw) != HASH_BYTES:
            raise ValueError(f"a PDQ hash is {HASH_BYTES} bytes")
        key = int(key)
        with self._lock:
            self._kill_locked(key)
            self._delta.append(key, bytes(raw))
            self._publish_locked()
            self._maybe_merge_locked()

    def add_many(self, items: Iterable[tuple[int, str]]) -> None:
        """Bulk insert; large batches are built straight into segments, not through the delta.

        Rows are packed into arrays chunk by chunk and handed on a segment's worth at a time, so a 100M-entry
        stream never sits whole in memory beside the index (neither as Python strings nor as arrays)."""
        key_chunks: list[npt.NDArray[np.int64]] = []
        hash_chunks: list[npt.NDArray[np.uint8]] = []
        packed = 0
        keys: list[int] = []
        values: list[str] = []
        for key, value in items:
            _check_key(key)
            keys.append(int(key))
            values.append(value)
            if len(keys) >= _PACK_CHUNK:
                key_chunks.append(np.array(keys, dtype=np.int64))
                hash_chunks.append(hex_to_array(values))
                packed += len(keys)
                keys, values = [], []
                if packed >= self._segment_rows:
                    self.add_arrays(np.concatenate(key_chunks), np.concatenate(hash_chunks))
                    key_chunks, hash_chunks, packed = [], [], 0
        if key_chunks:
            key_chunks.append(np.array(keys, dtype=np.int64))
            hash_chunks.append(hex_to_array(values) if values else np.empty((0, HASH_BYTES), np.uint8))
            self.add_arrays(np.concatenate(key_chunks), np.concatenate(hash_chunks))
        elif len(keys) >= self._limit():
            self.add_arrays(np.array(keys, dtype=np.int64), hex_to_array(values))
        else:
            for key, value in zip(keys, values, strict=True):
                self.add(key, value)

    def add_arrays(self, keys: npt.ArrayLike, hashes: npt.ArrayLike) -> None:
        """Bulk insert of ``keys`` (N ints) and ``hashes`` ((N, 32) uint8), built synchronously into segments
        (or, for fewer rows than the merge limit into a non-empty index, added to the delta).

        The fast path at start-up: 10M entries build in seconds. The rows go in one segment at a time (the
        first tops up the open segment), each published when built, so the memory beside the index and the
        caller's arrays is one segment's rebuild. Keys already present are replaced; of repeated keys in
        ``keys`` the last wins. Queries keep running meanwhile and see each key once, old or new.
        """
        key_array = np.asarray(keys)
        hash_array = np.asarray(hashes)
        if key_array.ndim != 1 or not np.issubdtype(key_array.dtype, np.integer):
            raise ValueError("keys must be a 1-D integer array")
        if hash_array.dtype != np.uint8 or hash_array.shape != (len(key_array), HASH_BYTES):
            raise ValueError(f"hashes must be a uint8 array of shape ({len(key_array)}, {HASH_BYTES})")
        if len(key_array) and (int(key_array.min()) < 0 or int(key_array.max()) > MAX_KEY):
            raise ValueError("keys are 0..2**63-1")
        if len(key_array) < self._limit() and len(self):  # a few rows: the delta beats a rebuild
            for key, row in zip(key_array.tolist(), hash_array, strict=True):
                self.add_bytes(key, row.tobytes())
            return
        all_keys = key_array.astype(np.int64, copy=False)
        start, n = 0, len(all_keys)
        while True:
            with self._merge_lock:
                with self._lock:
                    target = self._open_locked()
                    room = self._segment_rows - self._delta.count - (target.live if target is not None else 0)
                    if room < self._segment_rows // 4:  # nearly full: leave it, start a segment of its own
                        target, room = None, self._segment_rows - self._delta.count
                    room = max(1, room)
                take = min(room, n - start)
                self._rebuild_locked((target,) if target is not None else (), True,
                                     (all_keys[start : start + take], hash_array[start : start + take]))
            start += take
            if start >= n:
                break
        with self._lock:  # the replaced rows may call for a compaction
            self._maybe_merge_locked()

    def remove(self, key: int) -> None:
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or not 0 <= key <= MAX_KEY:
            return
        with self._lock:
            if self._kill_locked(int(key)):
                self._publish_locked()
                self._maybe_merge_locked()

    def compact(self) -> None:
        """Fold the delta into the open segment and rebuild every segment with tombstones, one at a time
        (waits for a running merge first)."""
        self._fold_delta()
        while True:
            with self._merge_lock:
                with self._lock:
                    dirty = next((s for s in self._segments if s.ndead), None)
                if dirty is None:
                    return
                self._rebuild_locked((dirty,), True, None)

    def wait_for_merge(self, timeout: float | None = None) -> bool:
        """Wait for a background merge, if any; True when none is running afterwards."""
        while True:
            with self._lock:
                thread = self._merge_thread
            if thread is None:
                return True
            thread.join(timeout)
            if thread.is_alive():
                return False

    # ---- snapshots -----------------------------------------------------------------------------------------

    def save_snapshot(self, path: Path, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Fold the delta into the open segment and write every segment to the directory ``path`` (replaced
        whole), with ``meta`` (JSON) beside it; tombstones are written as they are, not compacted. The caller keeps
        changes away meanwhile (the matcher holds its refresh lock): a change arriving between the fold and the
        write raises ``RuntimeError`` and nothing is replaced."""
        self._fold_delta()
        with self._merge_lock:  # no merge swaps a segment while it is written
            with self._lock:
                if self._frozen is not None or self._delta.count:
                    raise RuntimeError("the index changed while its snapshot was being taken")
                segments = [(s, s.dead.copy(), s.ndead) for s in self._segments if s.rows]
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            described = []
            for i, (segment, dead, ndead) in enumerate(segments):
                where = tmp / f"seg_{i}"
                where.mkdir()
                tables = segment.tables
                np.save(where / "hashes.npy", segment.hashes())
                np.save(where / "keys.npy", segment.keys)
                np.save(where / "dead.npy", dead)
                for j in range(len(tables.chunk_bits)):
                    np.save(where / f"dir_{j}.npy", np.frombuffer(tables.dir_array(j), dtype=np.uint32))
                    np.save(where / f"ent_{j}.npy", np.frombuffer(tables.ent_array(j), dtype=np.uint32))
                described.append({"rows": segment.rows, "chunk_bits": list(tables.chunk_bits),
                                  "dir_bits": max(tables.dir_bits, default=0), "ndead": ndead})
            info: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "rows": sum(d["rows"] for d in described),
                                    "ndead": sum(d["ndead"] for d in described), "segments": described,
                                    **(meta or {})}
            (tmp / "meta.json").write_text(json.dumps(info))
            old = path.with_name(f"{path.name}.old-{os.getpid()}")
            if path.exists():
                path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
            return info

    @classmethod
    def from_snapshot(cls, path: Path, *, segment_rows: int = SEGMENT_ROWS) -> tuple[PdqIndex, dict[str, Any]]:
        """An index serving from the memory-mapped snapshot in ``path`` at once, and the snapshot's meta.
        ``ValueError`` when it is missing, of an unknown format or inconsistent (the caller then loads in full).
        A format-1 snapshot (one segment, written before segments existed) loads as one segment when it is within
        ``segment_rows``, and is refused otherwise."""
        try:
            info: dict[str, Any] = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"no readable PDQ snapshot in {path}: {exc}") from None
        fmt = info.get("format")
        if fmt == 1:
            described = [{k: info.get(k) for k in ("rows", "chunk_bits", "dir_bits", "ndead")}]
            places = [path]
            if not isinstance(info.get("rows"), int) or info["rows"] > segment_rows:
                # its compaction would rebuild it whole (the 2x peak segments avoid): load in full instead
                raise ValueError(f"PDQ snapshot {path} has format 1 with one segment above {segment_rows} rows")
        elif fmt == SNAPSHOT_FORMAT and isinstance(info.get("segments"), list):
            described = info["segments"]
            places = [path / f"seg_{i}" for i in range(len(described))]
        else:
            raise ValueError(f"PDQ snapshot {path} has format {fmt}, not {SNAPSHOT_FORMAT}")
        if len(described) > _MAX_SEGMENTS:
            raise ValueError(f"PDQ snapshot {path} has too many segments")
        index = cls(segment_rows=segment_rows)
        segments = []
        for where, d in zip(places, described, strict=True):
            try:
                segment = _load_segment(where, d)
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"PDQ snapshot {path} is damaged: {exc}") from None
            if segment is not None:
                segments.append(segment)
        with index._lock:
            index._segments = tuple(segments)
            index._publish_locked()
        return index, info

    # ---- internals -----------------------------------------------------------------------------------------

    def _limit(self) -> int:
        with self._lock:
            return self._limit_locked()

    def _limit_locked(self) -> int:
        if self._fixed_limit is not None:
            return self._fixed_limit
        rows = sum(s.rows for s in self._segments)
        # The delta is scanned at ~0.75 ns a row and a query costs ~140 us at 10M rows, ~60 us at 1M:
        # rows/512 keeps a full delta near 10 % of a query; the cap bounds it (a merge rebuilds up to a segment).
        return max(4096, min(32_768, rows // 512))

    def _open_locked(self) -> _Segment | None:
        """The segment that merges top up: the smallest below the bound (None when every one is full)."""
        below = [s for s in self._segments if s.rows < self._segment_rows]
        return min(below, key=lambda s: s.rows, default=None)

    def _kill_locked(self, key: int) -> bool:
        if self._removed_during_merge is not None:
            self._removed_during_merge.append(key)  # replayed onto the segments being built
        if self._delta.kill(key):
            return True
        if self._frozen is not None and self._frozen.kill(key):
            return True
        # a key has one live row at most, but may have dead ones in other segments: look until one dies
        return any(segment.kill(key) for segment in self._segments)

    def _publish_locked(self) -> None:
        """Rebuild what readers see; they pick it up with one attribute load."""
        sources: list[Source] = [s.source() for s in self._segments if s.rows]
        if self._frozen is not None and self._frozen.count:
            sources.append(self._frozen.source())
        if self._delta.count:
            sources.append(self._delta.source())
        self._sources = tuple(sources)

    def _needs_compaction_locked(self) -> _Segment | None:
        limit = self._limit_locked()
        dirty = [s for s in self._segments if s.ndead >= max(limit, s.rows // 8)]
        return max(dirty, key=lambda s: s.ndead / s.rows, default=None)

    def _maybe_merge_locked(self) -> None:
        if self._merge_thread is not None:
            return
        if self._delta.count < self._limit_locked() and self._needs_compaction_locked() is None:
            return
        self._merge_thread = threading.Thread(
            target=self._background_merge, name="pdq-index-merge", daemon=True
        )
        self._merge_thread.start()

    def _background_merge(self) -> None:
        merged = False
        try:
            with self._merge_lock:
                with self._lock:
                    dirty = self._needs_compaction_locked()
                    target = dirty if dirty is not None else self._open_locked()
                self._rebuild_locked((target,) if target is not None else (), True, None)
            merged = True
        except Exception:  # the index still answers from segments + delta; a later change retries
            log.exception("PDQ index merge failed")
        finally:
            with self._lock:
                self._merge_thread = None
                if merged:  # changes made during the merge may already call for the next one
                    self._maybe_merge_locked()

    def _fold_delta(self) -> None:
        with self._merge_lock:
            with self._lock:
                if not self._delta.count:
                    return
                target = self._open_locked()
            self._rebuild_locked((target,) if target is not None else (), True, None)

    def _rebuild_locked(self, replace: tuple[_Segment, ...], fold_delta: bool,
                        extra: tuple[I64Array, U8Array] | None) -> None:
        """Rebuild the segments ``replace`` (+ the delta, + ``extra`` rows) into new segments of at most the
        bound and swap them in; blocks no reader or writer. The caller holds ``_merge_lock``.

        Memory: the new segments beside the old, and 16 bytes a row (keys and row numbers) while they are built."""
        with self._lock:
            frozen = self._delta if fold_delta and self._delta.count else None
            if frozen is not None:
                self._frozen, self._delta = frozen, _Delta()
            self._removed_during_merge = []
            others = tuple(s for s in self._segments if not any(s is r for r in replace))
            self._publish_locked()
        try:
            # Oldest first, so that the last row of a repeated key is the newest value. Each part: the keys and
            # row numbers of its live rows in a buffer of hashes; the kernel gathers the rows from the buffers
            # (numbered one after another) straight into the new tables, so no hashes are copied out first.
            parts = [p.live_rows() for p in (*replace, frozen) if p is not None and p.live]
            kills: list[tuple[_Segment, I64Array]] = []
            if extra is not None and len(extra[0]):
                extra_hashes = np.ascontiguousarray(extra[1], dtype=np.uint8)
                parts.append((extra[0], np.arange(len(extra[0]), dtype=np.int64), extra_hashes, len(extra[0])))
                # the new rows replace live rows of these keys in segments that are not rebuilt
                kills = [(s, s._rows_of(extra[0])) for s in others]
            buffers = [buffer for _, _, buffer, _ in parts]
            offsets = np.cumsum([0] + [size for _, _, _, size in parts])
            keys = np.concatenate([k for k, _, _, _ in parts]) if parts else np.zeros(0, np.int64)
            rows = np.concatenate([r + offsets[i] for i, (_, r, _, _) in enumerate(parts)]) if parts else keys
            del parts
            keys, rows = _sorted_unique(keys, rows)
            bound = self._segment_rows
            built = tuple(_Segment.build(keys[i : i + bound], buffers, rows[i : i + bound])
                          for i in range(0, len(keys), bound))
            del keys, rows, buffers
            if len(others) + len(built) > _MAX_SEGMENTS:
                raise RuntimeError(f"more than {_MAX_SEGMENTS} segments: raise segment_rows")
        except BaseException:
            with self._lock:  # put the frozen rows back in front of the delta: nothing is lost
                if frozen is not None:
                    self._delta = self._rejoin(frozen, self._delta)
                    self._frozen = None
                self._removed_during_merge = None
                self._publish_locked()
            raise
        with self._lock:
            for segment, rows in kills:
                segment.kill_rows(rows)
            removed = np.array(self._removed_during_merge, dtype=np.int64)
            for segment in built:
                segment.kill_many(removed)
            self._segments = others + built
            self._frozen = None
            self._removed_during_merge = None
            self._merges += 1
            self._publish_locked()

    @staticmethod
    def _rejoin(older: _Delta, newer: _Delta) -> _Delta:
        joined = _Delta(max(1024, older.count + newer.count))
        for part in (older, newer):
            for key, row in sorted(part.pos.items(), key=lambda item: item[1]):
                joined.append(key, part.hashes[row * HASH_BYTES : (row + 1) * HASH_BYTES].tobytes())
        return joined


#: Sources the kernel takes in one search (its MAX_SOURCES), less the frozen delta and the delta.
_MAX_SEGMENTS: Final[int] = _mih.MAX_SOURCES - 2


def _load_segment(where: Path, described: Mapping[str, Any]) -> _Segment | None:
    """One segment memory-mapped from its directory (``None`` for an empty one); raises on damage."""
    rows = int(described["rows"])
    if not rows:
        return None
    hashes = np.load(where / "hashes.npy", mmap_mode="r")
    keys = np.load(where / "keys.npy", mmap_mode="r")
    dead = np.load(where / "dead.npy")  # tombstones are written to: a private copy
    m = len(described["chunk_bits"])
    dirs = [np.load(where / f"dir_{j}.npy", mmap_mode="r") for j in range(m)]
    ents = [np.load(where / f"ent_{j}.npy", mmap_mode="r") for j in range(m)]
    tables = _mih.Tables.load(hashes, described["chunk_bits"], int(described["dir_bits"]), dirs, ents)
    if len(keys) != rows or tables.rows != rows or len(dead) != (rows + 7) // 8 or keys.dtype not in (
            np.uint32, np.int64):
        raise ValueError("sizes disagree with meta.json")
    return _Segment(tables, keys, dead, int(described["ndead"]))
