"""Near-duplicate text: an exact hash plus a MinHash of the normalised text, so edited copies still match.

Value: ``"<sha256 hex>:<minhash>"``, where the SHA-256 is of the normalised text (UTF-8) and the MinHash is
128 unsigned 32-bit minima (little-endian), base64url without padding (683 characters). 748 characters in all.

Normalisation (what evasion usually changes and meaning does not): NFKC, case folding, accents and other
combining marks removed, invisible format characters (zero-width spaces, joiners) removed, every other
character that is not a letter or digit (punctuation, symbols, emoji, line breaks) turned into a space, runs
of spaces collapsed, ends stripped.

MinHash: the set of character 5-grams of the normalised text (a text shorter than 5 is one shingle), each
hashed to 64 bits, under 128 seeded hash functions (SplitMix64's mixer of the shingle hash XOR a fixed seed;
changing a constant changes every stored value, so they never change). Character shingles work for a five-word
slogan as well as a 50-page manifesto; word shingles would leave a slogan with two or three.

Distance: 0 when the normalised texts are identical, otherwise ``round(100 * (1 - J))`` (at least 1), where
``J`` is the estimated Jaccard similarity of the two shingle sets (the share of equal minima). The default
threshold 30 (J >= 0.7) matches a manifesto with a sentence rewritten, words swapped, punctuation changed or a
paragraph cut (J ~ 0.75-0.95) and leaves unrelated texts in the same language (J ~ 0.0-0.2) far away; the
tests show both.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeVar, overload

import numpy as np
import numpy.typing as npt

from bastion.hashing.interfaces import (
    HashResult,
    IndexHit,
    InvalidSignalValue,
    SignalIndex,
    SignalType,
    TextHasher,
)

__all__ = [
    "BANDS",
    "BAND_ROWS",
    "EXACT_BAND_THRESHOLD",
    "PERMUTATIONS",
    "SHINGLE",
    "TextIndex",
    "TextSignal",
    "normalise",
    "signature",
]

#: Character n-gram length.
SHINGLE: Final = 5
#: MinHash size: the estimate of J has a standard deviation of sqrt(J (1 - J) / 128), 0.04 at J = 0.7.
PERMUTATIONS: Final = 128
#: LSH banding of the index (see ``TextIndex``).
BAND_ROWS: Final = 3
BANDS: Final = PERMUTATIONS // BAND_ROWS

_SIG_BYTES: Final = 4 * PERMUTATIONS
_B64_LEN: Final = (4 * _SIG_BYTES + 2) // 3
_SIGNATURE: Final = re.compile(rf"[0-9a-f]{{64}}:[A-Za-z0-9_-]{{{_B64_LEN}}}")
# What a signature, or a damaged or re-encoded copy of one (uppercase hex, standard base64), looks like: such a
# value is refused with a reason rather than hashed as if it were a text.
_LOOKS_LIKE_SIGNATURE: Final = re.compile(r"[0-9a-fA-F]{64}:\S*")
_CHUNK: Final = 4096

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]


def _mix(x: U64) -> U64:
    """SplitMix64's finaliser: a bijection on 64 bits that spreads every input bit over the output."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _constants(seed: int, n: int) -> U64:
    return _mix(np.arange(seed, seed + n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))


_SEEDS: Final = _constants(1, PERMUTATIONS)
_BAND_SALT: Final = _constants(2001, BANDS)


class TextSignal(SignalType, TextHasher):
    """Normalised-text SHA-256 + MinHash. ``validate`` also takes raw text and returns its signature.

    Text files reach it through ``hashing.services``, which reads a file once for every text hasher.
    """

    name = "text"
    default_threshold = 30
    #: Up to ``EXACT_BAND_THRESHOLD`` the index uses its LSH bands; above, it scans every entry (exact).
    max_threshold = 50

    @classmethod
    def validate(cls, value: str) -> str:
        stripped = value.strip()
        if not _LOOKS_LIKE_SIGNATURE.fullmatch(stripped):
            return signature(value)
        candidate = stripped[:64].lower() + stripped[64:]
        if not _SIGNATURE.fullmatch(candidate):
            raise InvalidSignalValue(
                f"malformed text signature: expected 64 hex digits, ':' and {_B64_LEN} base64url characters "
                "(A-Z a-z 0-9 - _, no padding)"
            )
        # Re-encoded: base64 has spare bits in its last character.
        return f"{candidate[:64]}:{_encode_minhash(_decode_minhash(candidate))}"

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        if a[:64] == b[:64]:
            return 0
        equal = int(np.count_nonzero(_decode_minhash(a) == _decode_minhash(b)))
        return max(1, _distance(PERMUTATIONS - equal))

    @classmethod
    def index_class(cls) -> type[SignalIndex]:
        return TextIndex

    @classmethod
    def examples(cls) -> Sequence[str]:
        return _examples()

    @classmethod
    def hash_text(cls, text: str) -> list[HashResult]:
        norm = normalise(text)
        if not norm:
            return []
        return [HashResult(cls.name, _signature_of(norm))]


@functools.cache
def _examples() -> tuple[str, ...]:
    return tuple(
        signature(t)
        for t in (
            "Example slogan number one",
            "An entirely different sentence, used as a second example of a banked text.",
            "Ok",
        )
    )


# ------------------------------------------------------------------------------------------------------------
# Hashing


def normalise(text: str) -> str:
    """The text as it is hashed (see the module docstring)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    table = {ord(c): _replacement(c) for c in set(folded) if not c.isalnum()}
    return " ".join(folded.translate(table).split())


def _replacement(char: str) -> str | None:
    category = unicodedata.category(char)
    if category[0] == "M" or category == "Cf":
        return None  # marks and invisible formatting vanish without splitting the word
    return " "


def signature(text: str) -> str:
    """The ``text`` value of a text; ``InvalidSignalValue`` when nothing is left after normalisation."""
    norm = normalise(text)
    if not norm:
        raise InvalidSignalValue("a text has at least one letter or digit")
    return _signature_of(norm)


def _signature_of(norm: str) -> str:
    """The value of an already normalised, non-empty text."""
    digest = hashlib.sha256(norm.encode("utf-8")).hexdigest()
    return f"{digest}:{_encode_minhash(_minhash(norm))}"


def _shingles(norm: str) -> U64:
    """Distinct 64-bit hashes of the character ``SHINGLE``-grams."""
    codes = np.frombuffer(norm.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    width = min(SHINGLE, len(codes))
    count = len(codes) - width + 1
    h = np.zeros(count, dtype=np.uint64)
    for offset in range(width):
        h = h * np.uint64(0x100000001B3) + codes[offset : offset + count]
    return np.unique(_mix(h ^ np.uint64(width)))


def _minhash(norm: str) -> U32:
    shingles = _shingles(norm)
    lowest = np.full(PERMUTATIONS, np.iinfo(np.uint64).max, dtype=np.uint64)
    for i in range(0, len(shingles), _CHUNK):
        part = shingles[None, i : i + _CHUNK]
        np.minimum(lowest, _mix(part ^ _SEEDS[:, None]).min(axis=1), out=lowest)
    return (lowest >> np.uint64(32)).astype(np.uint32)


def _encode_minhash(minhash: U32) -> str:
    return base64.urlsafe_b64encode(minhash.astype("<u4").tobytes()).rstrip(b"=").decode("ascii")


def _decode_minhash(value: str) -> U32:
    try:
        raw = base64.urlsafe_b64decode(value[65:] + "=" * (-len(value[65:]) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSignalValue("malformed text signature: the MinHash is not base64url") from None
    if len(raw) != _SIG_BYTES:
        raise InvalidSignalValue(f"malformed text signature: a {len(raw)}-byte MinHash, not {_SIG_BYTES}")
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


@overload
def _distance(mismatches: int) -> int: ...


@overload
def _distance(mismatches: npt.NDArray[np.integer]) -> npt.NDArray[np.integer]: ...


def _distance(mismatches: int | npt.NDArray[np.integer]) -> int | npt.NDArray[np.integer]:
    """``round(100 * (1 - J))``, halves up, in integers (of one pair, or element-wise of an array)."""
    return (100 * mismatches + PERMUTATIONS // 2) // PERMUTATIONS


def _max_mismatches(threshold: int) -> int:
    """Most unequal minima a pair can have and still be within ``threshold``."""
    return (PERMUTATIONS * threshold + PERMUTATIONS // 2 - 1) // 100


#: Largest threshold for which the bands alone are exact: fewer mismatches than bands leaves a band intact.
EXACT_BAND_THRESHOLD: Final = max(t for t in range(101) if _max_mismatches(t) < BANDS)


# ------------------------------------------------------------------------------------------------------------
# Index


@dataclass(frozen=True, slots=True)
class _Parsed:
    sha: npt.NDArray[np.uint8]
    minhash: U32

    @classmethod
    def of(cls, value: str) -> _Parsed:
        return cls(np.frombuffer(bytes.fromhex(value[:64]), dtype=np.uint8), _decode_minhash(value))


def _band_keys(minhash: npt.NDArray[np.uint32]) -> U64:
    """One 64-bit key per band of ``BAND_ROWS`` minima (rows of a 2-D array, or one 1-D signature)."""
    sig = np.atleast_2d(minhash)[:, : BANDS * BAND_ROWS].astype(np.uint64).reshape(-1, BANDS, BAND_ROWS)
    key = _BAND_SALT[None, :].copy()
    for r in range(BAND_ROWS):
        key = _mix(key ^ sig[:, :, r])
    return key


_T = TypeVar("_T", bound=np.generic)


def _grown(a: npt.NDArray[_T], capacity: int, used: int) -> npt.NDArray[_T]:
    out = np.zeros((capacity, *a.shape[1:]), dtype=a.dtype)
    out[:used] = a[:used]
    return out


class TextIndex(SignalIndex):
    """MinHash LSH over ``BANDS`` = 42 bands of ``BAND_ROWS`` = 3 minima, then candidates' exact distance.

    Band math. An entry becomes a candidate when one of its bands equals the query's. Two texts with Jaccard
    J share a band with probability J**3, so the chance that no band matches is (1 - J**3)**42: 2e-8 at
    J = 0.7 (recall 99.999998 %), 4e-5 at J = 0.6, 4e-3 at J = 0.5. Unrelated texts are candidates
    1 - (1 - J**3)**42 of the time (0.03 % at J = 0.02, 4 % at 0.1, 29 % at 0.2); the distance check drops
    them.

    Better than probable: for thresholds up to ``EXACT_BAND_THRESHOLD`` (32) a pair within the threshold has
    at most 41 unequal minima, fewer than the 42 bands, so at least one band is intact and the index is exact
    with respect to ``TextSignal.distance``. Above it (banks may go up to 50) a query scans every entry.

    Storage is columnar: signatures, SHA-256s and band keys in NumPy arrays, plus a key -> row dict. Band keys
    of older rows are kept sorted for binary search; rows added since are scanned until ``pending_limit`` of
    them accumulate and are merged in (one sorted insert, O(n)). Removed rows are masked, and compacted away
    once they are half the table. There is no separate dictionary of SHA-256s: identical texts have identical
    MinHashes, so every band of an exact copy collides and the SHA-256 comparison of candidates gives it 0.
    """

    def __init__(self, pending_limit: int = 4096) -> None:
        self._pending_limit = pending_limit
        self._capacity = 0
        self._n = 0  # rows used, live or dead
        self._keys: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._alive: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._shas: npt.NDArray[np.uint8] = np.zeros((0, 32), dtype=np.uint8)
        self._sigs: U32 = np.zeros((0, PERMUTATIONS), dtype=np.uint32)
        self._bands: U64 = np.zeros((0, BANDS), dtype=np.uint64)
        self._row_of: dict[int, int] = {}
        self._indexed = 0  # rows < this are in the sorted band arrays
        self._sorted_keys: U64 = np.zeros(0, dtype=np.uint64)
        self._sorted_rows: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)

    # ---- writing

    def add(self, key: int, value: str) -> None:
        parsed = _Parsed.of(value)
        self.remove(key)
        if self._n == self._capacity:
            self._grow()
        row = self._n
        self._keys[row] = key
        self._alive[row] = True
        self._shas[row] = parsed.sha
        self._sigs[row] = parsed.minhash
        self._bands[row] = _band_keys(parsed.minhash)[0]
        self._row_of[key] = row
        self._n += 1
        if self._n - self._indexed >= self._pending_limit:
            self._merge_pending()

    def remove(self, key: int) -> None:
        row = self._row_of.pop(key, None)
        if row is None:
            return
        self._alive[row] = False
        dead = self._n - len(self._row_of)
        if dead >= 1024 and dead * 2 >= self._n:
            self._compact()

    def _grow(self) -> None:
        capacity, n = max(1024, 2 * self._capacity), self._n
        self._keys = _grown(self._keys, capacity, n)
        self._alive = _grown(self._alive, capacity, n)
        self._shas = _grown(self._shas, capacity, n)
        self._sigs = _grown(self._sigs, capacity, n)
        self._bands = _grown(self._bands, capacity, n)
        self._capacity = capacity

    def _merge_pending(self) -> None:
        start, stop = self._indexed, self._n
        new_keys = self._bands[start:stop].ravel()
        new_rows = np.repeat(np.arange(start, stop, dtype=np.int64), BANDS)
        order = np.argsort(new_keys, kind="stable")
        new_keys, new_rows = new_keys[order], new_rows[order]
        at = np.searchsorted(self._sorted_keys, new_keys)
        self._sorted_keys = np.insert(self._sorted_keys, at, new_keys)
        self._sorted_rows = np.insert(self._sorted_rows, at, new_rows)
        self._indexed = stop

    def _compact(self) -> None:
        live = np.flatnonzero(self._alive[: self._n])
        self._keys[: len(live)] = self._keys[live]
        self._shas[: len(live)] = self._shas[live]
        self._sigs[: len(live)] = self._sigs[live]
        self._bands[: len(live)] = self._bands[live]
        self._alive[:] = False
        self._alive[: len(live)] = True
        self._n = len(live)
        self._row_of = {int(k): row for row, k in enumerate(self._keys[: self._n])}
        self._indexed = 0
        self._sorted_keys = np.zeros(0, dtype=np.uint64)
        self._sorted_rows = np.zeros(0, dtype=np.int64)
        self._merge_pending()

    # ---- reading

    def query(self, value: str, threshold: int) -> list[IndexHit]:
        q = _Parsed.of(value)
        rows = self._all_rows() if threshold > EXACT_BAND_THRESHOLD else self._candidates(q.minhash)
        rows = rows[self._alive[rows]]
        if not len(rows):
            return []
        mismatches = PERMUTATIONS - np.count_nonzero(self._sigs[rows] == q.minhash, axis=1)
        distances = np.maximum(1, _distance(mismatches))
        distances[np.all(self._shas[rows] == q.sha, axis=1)] = 0
        keep = distances <= threshold
        keys = self._keys[rows][keep]
        hits = [IndexHit(int(k), int(d)) for k, d in zip(keys, distances[keep], strict=True)]
        return sorted(hits, key=lambda h: (h.distance, h.key))

    def _all_rows(self) -> npt.NDArray[np.int64]:
        return np.arange(self._n, dtype=np.int64)

    def _candidates(self, minhash: U32) -> npt.NDArray[np.int64]:
        bands = _band_keys(minhash)[0]
        lo = np.searchsorted(self._sorted_keys, bands, side="left")
        hi = np.searchsorted(self._sorted_keys, bands, side="right")
        parts = [self._sorted_rows[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        recent = self._bands[self._indexed : self._n]
        pending = np.flatnonzero(np.any(recent == bands, axis=1)) + self._indexed
        parts.append(pending.astype(np.int64))
        return np.unique(np.concatenate(parts))

    def __len__(self) -> int:
        return len(self._row_of)

    def nbytes(self) -> int:
        arrays = (self._keys, self._alive, self._shas, self._sigs, self._bands)
        sorted_bytes = self._sorted_keys.nbytes + self._sorted_rows.nbytes
        return sum(a.nbytes for a in arrays) + sorted_bytes + 100 * len(self._row_of)
