"""Exact hashes of any file (MD5 for the CSAM hash lists that still use it, SHA-256 for everything else)."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from bastion.hashing.interfaces import (
    FileHasher,
    HashResult,
    IndexHit,
    InvalidSignalValue,
    MediaKind,
    SignalIndex,
    SignalType,
)

_HEX = frozenset(string.hexdigits.lower())
_CHUNK = 1 << 20


class ExactIndex(SignalIndex):
    """A dictionary from value to keys: exact signals only ever match at distance 0."""

    def __init__(self) -> None:
        self._keys_by_value: dict[str, set[int]] = {}
        self._value_by_key: dict[int, str] = {}

    def add(self, key: int, value: str) -> None:
        self.remove(key)
        self._keys_by_value.setdefault(value, set()).add(key)
        self._value_by_key[key] = value

    def add_many(self, items: Iterable[tuple[int, str]]) -> None:
        for key, value in items:
            self.add(key, value)

    def remove(self, key: int) -> None:
        value = self._value_by_key.pop(key, None)
        if value is None:
            return
        keys = self._keys_by_value[value]
        keys.discard(key)
        if not keys:
            del self._keys_by_value[value]

    def query(self, value: str, threshold: int) -> list[IndexHit]:
        return [IndexHit(key, 0) for key in sorted(self._keys_by_value.get(value, ()))]

    def __len__(self) -> int:
        return len(self._value_by_key)


class ExactSignal(SignalType):
    """Signal types whose values match only when equal: distance 0 or 1, a dictionary for an index."""

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1

    @classmethod
    def index_class(cls) -> type[SignalIndex]:
        return ExactIndex


class _HexDigestSignal(ExactSignal, FileHasher):
    """Shared behaviour of the hex-digest signal types; each subclass names its hashlib algorithm."""

    algorithm: ClassVar[str]
    hex_length: ClassVar[int]
    _examples: ClassVar[tuple[str, ...]]

    @classmethod
    def validate(cls, value: str) -> str:
        return validate_hex(value, cls.hex_length, f"an {cls.name} hash")

    @classmethod
    def examples(cls) -> Sequence[str]:
        return cls._examples

    @classmethod
    def accepts(cls, kind: MediaKind) -> bool:
        return True

    @classmethod
    def hash_file(cls, path: Path, kind: MediaKind) -> list[HashResult]:
        return [HashResult(cls.name, digest_file(path, cls.algorithm))]


def validate_hex(value: str, length: int, label: str) -> str:
    """``value`` stripped and lowercased, when it is ``length`` hex digits; ``InvalidSignalValue`` otherwise.

    ``label`` names the value in the message ("a pdq hash" -> "a pdq hash is 64 hex digits, got 3 characters").
    """
    canonical = value.strip().lower()
    if len(canonical) != length:
        raise InvalidSignalValue(f"{label} is {length} hex digits, got {len(canonical)} characters")
    if not set(canonical) <= _HEX:
        raise InvalidSignalValue(f"{label} contains only hex digits 0-9a-f")
    return canonical


def digest_file(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks so a large video never sits whole in memory."""
    h: Callable[[], hashlib._Hash] = getattr(hashlib, algorithm)
    digest = h()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Md5Signal(_HexDigestSignal):
    name = "md5"
    algorithm = "md5"
    hex_length = 32
    _examples = ("d41d8cd98f00b204e9800998ecf8427e", "9e107d9d372bb6826bd81d3542a419d6")


class Sha256Signal(_HexDigestSignal):
    name = "sha256"
    algorithm = "sha256"
    hex_length = 64
    _examples = (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592",
    )
