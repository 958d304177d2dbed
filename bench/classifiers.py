"""Classifier throughput: texts scored per second by the embedding classifier, against the n-gram model.

Both are the real classifiers as intake calls them, one upload's text at a time, on a temporary SQLite database:

- baseline ``decisions`` (hashed word and character n-grams, logistic regression in numpy; the default install),
  trained here on ``--train`` synthetic decisions;
- ``similarity`` (all-MiniLM-L6-v2 sentence embedding on CPU, highest cosine against ``--corpus`` reference texts;
  the ``ml`` extra), with its corpus embedded once before timing; also the embedding alone in batches of 64, which
  is what training and corpus loading see.

    python bench/classifiers.py [--texts 300] [--corpus 1000] [--train 400]

Prints figures and ratios against the baseline, then one JSON line.
"""

from __future__ import annotations

# isort: off
import bastion  # noqa: F401 - first: it limits BLAS threads before numpy loads (see bastion/__init__.py)
# isort: on
import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bastion.classifiers import embeddings, services
from bastion.classifiers.decisions import DecisionsClassifier
from bastion.classifiers.features import HashedNgrams
from bastion.classifiers.interfaces import Content, LabelledText
from bastion.core.clock import FrozenClock
from bastion.core.db import Database, migrate

WORDS = ("the", "we", "they", "fight", "join", "city", "river", "brothers", "market", "music", "holiday", "strike",
         "enemy", "faith", "family", "dinner", "army", "video", "today", "friends", "will", "must", "never",
         "always", "burn", "build", "pray", "sing", "walk", "children", "school", "war", "peace", "our", "their",
         "land", "home", "road", "victory", "glory", "garden", "football", "weekend")
CLOCK = FrozenClock(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))


def texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 30))) for _ in range(n)]


def per_second(fn: Callable[[Content], dict[str, float]], items: list[str]) -> float:
    start = time.perf_counter()
    for text in items:
        fn(Content(text))
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--corpus", type=int, default=1000)
    parser.add_argument("--train", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        db = Database(url)
        labelled = [LabelledText(f"c{i}", t, "hate_speech", "strike" in t)
                    for i, t in enumerate(texts(args.train, 1))]
        services.train(db, labelled, category="hate_speech", features=HashedNgrams(), clock=CLOCK, actor="bench")
        sample = texts(args.texts, 2)
        ngrams = DecisionsClassifier("decisions:hate_speech", db, "hate_speech", refresh_seconds=3600)
        ngrams.classify(Content("warm up"))
        baseline = per_second(ngrams.classify, sample)
        figures: dict[str, float] = {"ngrams_texts_per_s": round(baseline, 1)}
        print(f"baseline decisions (hashed n-grams):  {baseline:10.1f} texts/s", file=sys.stderr)
        if embeddings.ml_missing():
            print(f"similarity: skipped, {embeddings.ML_EXTRA_HINT}", file=sys.stderr)
        else:
            from bastion.classifiers.similarity import SimilarityClassifier

            services.add_corpus(db, texts(args.corpus, 3), category="terrorist_content", source="bench",
                                actor="bench", clock=CLOCK)
            similarity = SimilarityClassifier("terror_text", db, "terrorist_content", refresh_seconds=3600)
            start = time.perf_counter()
            similarity.corpus()
            load = time.perf_counter() - start
            one = per_second(similarity.classify, sample)
            start = time.perf_counter()
            embeddings.embed(sample)
            batched = len(sample) / (time.perf_counter() - start)
            figures.update({"similarity_texts_per_s": round(one, 1), "embed_batched_texts_per_s": round(batched, 1),
                            "similarity_vs_ngrams": round(one / baseline, 4),
                            "corpus_load_s": round(load, 2), "corpus_texts": args.corpus})
            print(f"similarity (MiniLM, one at a time):   {one:10.1f} texts/s  = {one / baseline:.3f}x baseline",
                  file=sys.stderr)
            print(f"embedding alone, batches of 64:       {batched:10.1f} texts/s  = {batched / baseline:.3f}x "
                  "baseline", file=sys.stderr)
            print(f"corpus of {args.corpus} texts embedded once in {load:.1f} s", file=sys.stderr)
        db.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
