"""Semantic similarity to known texts: how close an upload's text is to the nearest reference text of a category.

Both sides are MiniLM sentence embeddings (``embeddings.py``), compared by cosine; the score is the highest cosine
mapped linearly from [``low``, ``high``] onto [0, 1] and clipped::

    score = clip((max_cosine - low) / (high - low), 0, 1)      defaults: low = 0.25, high = 0.65

With all-MiniLM-L6-v2, unrelated texts sit near cosine 0.0-0.2 and a paraphrase of the same call to violence near
0.6-0.8, so with the defaults a paraphrase scores about 0.9 and the policy's ``min_score`` reads as "how close to
known propaganda". The corpus's embeddings are computed once and kept until the corpus changes (checked at most
every ``refresh_seconds``), so scoring an upload embeds one text.

Loading the model and embedding the corpus take seconds, so the app does it at start-up in a background thread
(``warm``). Start-up and intake never wait for it: while that warm-up runs, an upload waits at most
``ready_wait_seconds`` (default 0.5) and is then judged without this score, its reasons saying ``not ready`` (the
same path as an outage, counted on ``/metrics``). Refusing briefly is better than holding every upload of the first
seconds for the whole load. Without a warm-up (the CLI, a script) the first ``classify`` loads it, as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np

from bastion.classifiers import embeddings, services
from bastion.classifiers.features import F32
from bastion.classifiers.interfaces import (
    Accepts,
    Classifier,
    ClassifierContext,
    ClassifierError,
    ClassifierFailed,
    Content,
)
from bastion.classifiers.options import Options
from bastion.core.db import Database


class SimilarityClassifier(Classifier):
    kind = "similarity"

    def __init__(self, name: str, db: Database, category: str, *, low: float = 0.25, high: float = 0.65,
                 refresh_seconds: float = 5.0, ready_wait_seconds: float = 0.5) -> None:
        embeddings.require_ml(f"classifier {name!r} ({self.kind})")
        if high <= low:
            raise ClassifierError(f"classifier {name!r}: high ({high:g}) must be above low ({low:g})")
        self.name, self.db, self.category = name, db, services.check_category(category)
        self.low, self.high, self.refresh_seconds = low, high, refresh_seconds
        self.ready_wait_seconds = ready_wait_seconds
        self._lock = threading.Lock()
        #: Set once the model is loaded and the corpus embedded; ``_warming`` while ``warm`` is doing that.
        self.ready = threading.Event()
        self._warming = threading.Event()
        self._version: tuple[int, int] | None = None
        self._checked = 0.0
        self._corpus: F32 = np.zeros((0, embeddings.DIMENSIONS), dtype=np.float32)

    @classmethod
    def configure(cls, entry: Mapping[str, Any], ctx: ClassifierContext) -> Self:
        o = Options(entry)
        built = cls(o.score_name("name"), ctx.db, o.text("category"), low=o.number("low", 0.25, low=-1, high=1),
                    high=o.number("high", 0.65, low=-1, high=1),
                    refresh_seconds=o.number("refresh_seconds", 5.0, low=0, high=3600),
                    ready_wait_seconds=o.number("ready_wait_seconds", 0.5, low=0, high=60))
        o.done()
        return built

    def score_names(self) -> Sequence[str]:
        return (self.name,)

    def accepts(self) -> frozenset[Accepts]:
        return frozenset({Accepts.TEXT})

    def corpus(self) -> F32:
        """The category's reference embeddings, recomputed only when the corpus changed."""
        with self._lock:
            if self._version is None or time.monotonic() - self._checked >= self.refresh_seconds:
                with self.db.read() as session:
                    version = services.corpus_version(session, self.category)
                    if version != self._version:
                        self._corpus = embeddings.embed(services.corpus_texts(session, self.category))
                        self._version = version
                self._checked = time.monotonic()
            self.ready.set()
            return self._corpus

    def warm(self) -> None:
        """Load the model and embed the corpus now, so the first upload scores at full speed."""
        self._warming.set()
        try:
            embeddings.load()
            self.corpus()
        finally:
            self._warming.clear()  # failed: the next upload tries itself, and says why in its reasons

    def similarity(self, text: str) -> float | None:
        """Highest cosine between ``text`` and the corpus; ``None`` when the corpus is empty."""
        corpus = self.corpus()
        if not len(corpus):
            return None
        return float(np.max(corpus @ embeddings.embed([text])[0]))

    def classify(self, content: Content) -> dict[str, float]:
        if self._warming.is_set() and not self.ready.wait(self.ready_wait_seconds):
            raise ClassifierFailed("not ready (the model and its corpus are still loading)")
        cosine = self.similarity(content.text)
        if cosine is None:
            return {}
        return {self.name: float(np.clip((cosine - self.low) / (self.high - self.low), 0.0, 1.0))}

    def describe(self) -> dict[str, object]:
        with self.db.read() as session:
            _, count = services.corpus_version(session, self.category)
        return {**super().describe(), "category": self.category, "corpus_texts": count,
                "mapping": {"low": self.low, "high": self.high}}
