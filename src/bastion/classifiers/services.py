"""Scoring an upload with the configured classifiers, the reference corpus, and training on decisions."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.classifiers.features import Featuriser, featuriser
from bastion.classifiers.interfaces import Classifier, ClassifierError, ClassifierFailed, Content, LabelledText
from bastion.classifiers.logistic import Weights, best_threshold, fit, held_out, metrics
from bastion.classifiers.models import CorpusText, TrainedModel
from bastion.core.clock import Clock
from bastion.core.db import Database

log = logging.getLogger(__name__)

_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Largest reference text kept (a long manifesto is compared by its opening, as the model reads 256 tokens anyway).
MAX_CORPUS_TEXT = 20_000


def check_category(category: str) -> str:
    if not _CATEGORY.match(category):
        raise ClassifierError(f"{category!r} is not a category (lower-case letters, digits and _, e.g. "
                              "terrorist_content)")
    return category


# --- scoring ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    classifier: str
    reason: str

    def __str__(self) -> str:
        return f"classifier {self.classifier} gave no score: {self.reason}"


@dataclass
class Scoring:
    """What the classifiers said about one upload: scores by name, and those that could not answer, with why."""

    scores: dict[str, float] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


class FailureCounts:
    """Uploads each classifier could not score since this process started: ``/metrics`` shows them, so an outage is
    seen on a dashboard and not only in the reasons of single uploads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, classifier: str) -> None:
        with self._lock:
            self._counts[classifier] = self._counts.get(classifier, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


FAILURES = FailureCounts()


def score(classifiers: Sequence[Classifier], content: Content,
          on_failure: Callable[[Failure], None] | None = None) -> Scoring:
    """Ask every classifier that reads this content. One failing never stops the others, nor intake."""
    out = Scoring()
    for classifier in classifiers:
        if not classifier.wants(content):
            continue
        try:
            out.scores.update(classifier.classify(content))
        except (ClassifierFailed, ClassifierError) as exc:  # an outage, or a model this process cannot run
            failure = Failure(classifier.name, str(exc))
        except Exception as exc:  # a bug in one model must not refuse uploads: counted and said, like an outage
            log.exception("classifier %s raised", classifier.name)
            failure = Failure(classifier.name, f"failed ({type(exc).__name__})")
        else:
            continue
        log.warning("%s", failure)
        FAILURES.add(classifier.name)
        out.failures.append(failure)
        if on_failure is not None:
            on_failure(failure)
    return out


def warm_in_background(classifiers: Sequence[Classifier]) -> threading.Thread:
    """Warm every classifier in one daemon thread, so that neither the app's start nor an upload waits for a model
    to load; a classifier that fails to warm is logged and tries again on its first upload."""
    def run() -> None:
        for classifier in classifiers:
            try:
                classifier.warm()
            except Exception:  # logged, never raised: intake works without a warm model
                log.exception("classifier %s could not warm up", classifier.name)

    thread = threading.Thread(target=run, name="bastion-classifiers-warm", daemon=True)
    thread.start()
    return thread


def close_all(classifiers: Sequence[Classifier]) -> None:
    """Close every classifier at shutdown; one failing does not keep the others open."""
    for classifier in classifiers:
        try:
            classifier.close()
        except Exception:
            log.exception("classifier %s could not close", classifier.name)


# --- the reference corpus -----------------------------------------------------------------------------------------


def add_corpus(db: Database, texts: Iterable[str], *, category: str, source: str, actor: str,
               clock: Clock) -> tuple[int, int]:
    """Add reference texts in one transaction; returns (added, already there). Blank texts are refused."""
    check_category(category)
    with db.write() as session:
        seen = set(session.scalars(select(CorpusText.digest).where(CorpusText.category == category)))
        added = skipped = 0
        for number, raw in enumerate(texts, 1):
            text = raw.strip()[:MAX_CORPUS_TEXT]
            if not text:
                raise ClassifierError(f"text {number} is empty")
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if digest in seen:
                skipped += 1
                continue
            seen.add(digest)
            session.add(CorpusText(category=category, text=text, digest=digest, source=source[:200],
                                   added_by=actor, added_at=clock.now()))
            added += 1
        return added, skipped


def corpus_version(session: Session, category: str) -> tuple[int, int]:
    """(highest id, count) of a category's texts: changes whenever a text is added or removed."""
    row = session.execute(select(func.max(CorpusText.id), func.count(CorpusText.id))
                          .where(CorpusText.category == category)).one()
    return int(row[0] or 0), int(row[1])


def corpus_texts(session: Session, category: str) -> list[str]:
    return list(session.scalars(select(CorpusText.text).where(CorpusText.category == category)
                                .order_by(CorpusText.id)))


def corpus_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(CorpusText.category, func.count(CorpusText.id)).group_by(CorpusText.category))
    return {category: int(n) for category, n in rows}


# --- models trained on decisions ----------------------------------------------------------------------------------

#: Training is refused below this many decisions of a category (each side needs at least ``MIN_PER_CLASS``).
MIN_DECISIONS = 20
MIN_PER_CLASS = 4
HELD_OUT_FRACTION = 0.25
SEED = 20260601


class NotEnoughDecisions(ClassifierError):
    """Too few decisions to train on, or to measure the model on held-out ones."""


def train(db: Database, examples: Sequence[LabelledText], *, category: str, features: Featuriser, clock: Clock,
          actor: str, min_decisions: int = MIN_DECISIONS, seed: int = SEED, steps: int = 300,
          progress: Callable[[int], None] | None = None) -> TrainedModel:
    """Train on the decisions of ``category``, choose the threshold and measure on the held-out quarter, store as the
    next version.

    The threshold is the one that maximises F1 on the held-out decisions (``logistic.best_threshold``), and the
    stored precision and recall are measured at it. Choosing and measuring on the same quarter flatters the figures
    a little; with the few hundred decisions a platform starts with, splitting it again would leave too few to do
    either well. The scorer recentres on it (``decisions.py``)."""
    check_category(category)
    mine = [e for e in examples if e.category == category and e.text.strip()]
    violations = sum(e.violation for e in mine)
    if len(mine) < min_decisions or min(violations, len(mine) - violations) < MIN_PER_CLASS:
        raise NotEnoughDecisions(
            f"{category}: {len(mine)} decisions with text ({violations} violations, {len(mine) - violations} not); "
            f"training needs at least {min_decisions}, with {MIN_PER_CLASS} of each")
    test = [e for e in mine if held_out(e.key, seed=seed, fraction=HELD_OUT_FRACTION)]
    trainset = [e for e in mine if not held_out(e.key, seed=seed, fraction=HELD_OUT_FRACTION)]
    if not any(e.violation for e in test) or all(e.violation for e in test) or len(trainset) < 2:
        raise NotEnoughDecisions(f"{category}: the held-out decisions need violations and non-violations both; "
                                 "decide more cases and train again")
    x_train = features.rows([e.text for e in trainset])
    y_train = np.asarray([e.violation for e in trainset], dtype=bool)
    weights = fit(x_train, y_train, dimensions=features.dimensions, steps=steps, progress=progress)
    labels = [e.violation for e in test]
    held_scores = weights.scores(features.rows([e.text for e in test]))
    threshold = best_threshold(labels, held_scores)
    held = metrics(labels, held_scores, threshold)
    summary = {**held.to_json(), "trained_on": float(len(trainset)), "held_out": float(len(test))}
    with db.write() as session:
        version = (session.scalar(select(func.max(TrainedModel.version))
                                  .where(TrainedModel.category == category)) or 0) + 1
        row = TrainedModel(category=category, version=version, feature_kind=features.kind,
                           dimensions=features.dimensions, weights=weights.w.astype("<f4").tobytes(),
                           bias=weights.bias, threshold=threshold, metrics=summary, decisions=len(mine),
                           trained_at=clock.now(), trained_by=actor)
        session.add(row)
        session.flush()
        return row


def latest_models(session: Session) -> list[TrainedModel]:
    """The version in force of each category (the highest)."""
    newest = (select(TrainedModel.category, func.max(TrainedModel.version).label("v"))
              .group_by(TrainedModel.category).subquery())
    return list(session.scalars(select(TrainedModel).join(
        newest, (TrainedModel.category == newest.c.category) & (TrainedModel.version == newest.c.v))
        .order_by(TrainedModel.category)))


def latest_model(session: Session, category: str) -> TrainedModel | None:
    return session.scalar(select(TrainedModel).where(TrainedModel.category == category)
                          .order_by(TrainedModel.version.desc()).limit(1))


def weights_of(row: TrainedModel) -> tuple[Featuriser, Weights]:
    """The featuriser and weights a stored model scores with."""
    features = featuriser(row.feature_kind)
    if features.dimensions != row.dimensions:
        raise ClassifierError(f"model {row.category} v{row.version}: {row.dimensions} weights for "
                              f"{features.dimensions} {row.feature_kind} features")
    return features, Weights(np.frombuffer(row.weights, dtype="<f4").astype(np.float32), row.bias)


def model_json(row: TrainedModel) -> dict[str, object]:
    return {"category": row.category, "version": row.version, "feature_kind": row.feature_kind,
            "decisions": row.decisions, "trained_at": row.trained_at.isoformat(), "trained_by": row.trained_by,
            "threshold": row.threshold, "held_out": dict(row.metrics)}
