"""How texts become numbers for the model trained on decisions.

Two featurisers, chosen when a model is trained and stored with it (``feature_kind``), so scoring uses the same:

- ``ngrams``: hashed word uni- and bigrams and character 3- to 5-grams of the normalised text (the text hasher's
  ``normalise``), counted into ``2**16`` buckets and scaled to unit length. Numpy only: works on the default install.
- ``minilm``: the sentence embedding (``embeddings.py``), when the ``ml`` extra is installed. Paraphrases land near
  each other, so fewer decisions are needed to generalise.

Rows come back as ``Rows``: sparse for n-grams (a few hundred non-zeros in 65,536 columns), dense for embeddings.
"""

from __future__ import annotations

import abc
import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bastion.classifiers import embeddings
from bastion.classifiers.interfaces import ClassifierError
from bastion.hashing.text import normalise

F32 = npt.NDArray[np.float32]


class Rows(abc.ABC):
    """A feature matrix, as far as logistic regression needs one."""

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def dot(self, w: F32) -> F32:
        """``X @ w``."""

    @abc.abstractmethod
    def tdot(self, g: F32) -> F32:
        """``X.T @ g``."""

    @abc.abstractmethod
    def take(self, rows: npt.NDArray[np.int64]) -> Rows:
        """The given rows, in that order."""


@dataclass(frozen=True)
class DenseRows(Rows):
    x: F32

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def dot(self, w: F32) -> F32:
        return (self.x @ w).astype(np.float32)

    def tdot(self, g: F32) -> F32:
        return (self.x.T @ g).astype(np.float32)

    def take(self, rows: npt.NDArray[np.int64]) -> DenseRows:
        return DenseRows(self.x[rows])


@dataclass(frozen=True)
class SparseRows(Rows):
    """Compressed rows: row ``i``'s columns are ``cols[start[i]:start[i+1]]`` with values ``vals[...]``."""

    start: npt.NDArray[np.int64]
    cols: npt.NDArray[np.int64]
    vals: F32
    width: int

    def __len__(self) -> int:
        return len(self.start) - 1

    def _row_of_each_value(self) -> npt.NDArray[np.int64]:
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.start))

    def dot(self, w: F32) -> F32:
        products = self.vals * w[self.cols]
        return np.bincount(self._row_of_each_value(), weights=products, minlength=len(self)).astype(np.float32)

    def tdot(self, g: F32) -> F32:
        weights = self.vals * g[self._row_of_each_value()]
        return np.bincount(self.cols, weights=weights, minlength=self.width).astype(np.float32)

    def take(self, rows: npt.NDArray[np.int64]) -> SparseRows:
        lengths = np.diff(self.start)[rows]
        parts = [np.arange(self.start[r], self.start[r + 1]) for r in rows]
        index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        start = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return SparseRows(start, self.cols[index], self.vals[index], self.width)


class Featuriser(abc.ABC):
    #: Storage key in ``classifier_models.feature_kind``: never rename.
    kind: str
    dimensions: int

    @abc.abstractmethod
    def rows(self, texts: Sequence[str]) -> Rows: ...


class HashedNgrams(Featuriser):
    kind = "ngrams"
    dimensions = 1 << 16

    def grams(self, text: str) -> list[str]:
        """Word 1- and 2-grams and character 3- to 5-grams (inside word boundaries marked by spaces)."""
        norm = normalise(text)
        words = norm.split()
        grams = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
        padded = f" {norm} "
        for n in (3, 4, 5):
            grams.extend(f"c:{padded[i:i + n]}" for i in range(len(padded) - n + 1))
        return grams

    def rows(self, texts: Sequence[str]) -> SparseRows:
        starts, cols, vals = [0], [], []
        for text in texts:
            buckets: dict[int, float] = {}
            for gram in self.grams(text):
                h = zlib.crc32(gram.encode("utf-8"))
                # The top bit signs the count, so colliding grams tend to cancel rather than add up.
                sign = -1.0 if h & 0x80000000 else 1.0
                key = h % self.dimensions
                buckets[key] = buckets.get(key, 0.0) + sign
            norm = float(np.sqrt(sum(v * v for v in buckets.values()))) or 1.0
            for key, value in buckets.items():
                cols.append(key)
                vals.append(value / norm)
            starts.append(len(cols))
        return SparseRows(np.asarray(starts, dtype=np.int64), np.asarray(cols, dtype=np.int64),
                          np.asarray(vals, dtype=np.float32), self.dimensions)


class MiniLmEmbeddings(Featuriser):
    kind = embeddings.KIND
    dimensions = embeddings.DIMENSIONS

    def rows(self, texts: Sequence[str]) -> DenseRows:
        return DenseRows(embeddings.embed(texts))


FEATURISERS: tuple[type[Featuriser], ...] = (HashedNgrams, MiniLmEmbeddings)


def featuriser(kind: str) -> Featuriser:
    for cls in FEATURISERS:
        if cls.kind == kind:
            return cls()
    known = ", ".join(c.kind for c in FEATURISERS)
    raise ClassifierError(f"unknown feature kind {kind!r} (known: {known})")


def best_available() -> Featuriser:
    """Embeddings when the ``ml`` extra is installed, hashed n-grams otherwise."""
    return HashedNgrams() if embeddings.ml_missing() else MiniLmEmbeddings()
