"""Logistic regression in numpy, the deterministic held-out split, and the metrics an analyst reads.

Full-batch gradient descent with Adam steps and an L2 penalty, for a fixed number of steps from zero weights: the
same data gives the same model on every machine. Classes are weighted so that a rare violation counts as much as
the many clean uploads (otherwise the model learns to say "clean" to everything).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from bastion.classifiers.features import F32, Rows


@dataclass(frozen=True)
class Weights:
    w: F32
    bias: float

    def scores(self, x: Rows, threshold: float = 0.5) -> F32:
        """Probabilities, recentred so that ``threshold`` reads 0.5 (the default leaves them as they are)."""
        return sigmoid(x.dot(self.w) + np.float32(self.bias - logit(threshold)))


def logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def sigmoid(z: F32) -> F32:
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))).astype(np.float32)


def fit(x: Rows, y: npt.NDArray[np.bool_], *, dimensions: int, steps: int = 300, rate: float = 0.05,
        l2: float = 1e-4, progress: Callable[[int], None] | None = None) -> Weights:
    """Minimise the class-weighted log loss plus ``l2 * |w|^2 / 2``."""
    target = y.astype(np.float32)
    positives = max(float(target.sum()), 1.0)
    negatives = max(float(len(target) - target.sum()), 1.0)
    weight = np.where(y, len(y) / (2 * positives), len(y) / (2 * negatives)).astype(np.float32)
    w = np.zeros(dimensions, dtype=np.float32)
    b = 0.0
    m = np.zeros(dimensions + 1, dtype=np.float32)
    v = np.zeros(dimensions + 1, dtype=np.float32)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        error = (sigmoid(x.dot(w) + np.float32(b)) - target) * weight / len(target)
        grad = np.concatenate([x.tdot(error.astype(np.float32)) + l2 * w, [error.sum()]]).astype(np.float32)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        update = rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
        w = (w - update[:-1]).astype(np.float32)
        b -= float(update[-1])
        if progress is not None:
            progress(1)
    return Weights(w, b)


def held_out(key: str, *, seed: int, fraction: float) -> bool:
    """Whether a decision is in the held-out set: a hash of the seed and its key, so a decision stays on its side
    when more are added and the split does not depend on the order rows come back in."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


@dataclass(frozen=True)
class Metrics:
    """Quality at ``threshold`` on held-out decisions. ``support`` is the number of held-out violations."""

    precision: float
    recall: float
    f1: float
    support: int
    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    def to_json(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


#: A chosen threshold stays this far inside (0, 1), so that its logit is finite.
THRESHOLD_MARGIN = 1e-6


def best_threshold(labels: Sequence[bool] | npt.NDArray[np.bool_], scores: Sequence[float] | F32) -> float:
    """The threshold that maximises F1 on held-out decisions ("score >= threshold means violation").

    F1 rather than a precision target: it needs no setting, and weighs a missed violation and a wrongly removed post
    alike, which suits a model whose positives are sent to review rather than removed. Among thresholds with the same
    F1 the highest wins (fewer posts flagged); the value returned is midway between the lowest score it flags and the
    next score below, so that a new text scoring a hair under the last violation is not flipped by rounding. The
    same scores always give the same threshold."""
    truth = np.asarray(labels, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    if not truth.any():
        return 0.5
    order = np.argsort(-values, kind="stable")
    ranked, hits = values[order], truth[order]
    ends = np.append(ranked[1:] != ranked[:-1], True)  # the last of each run of equal scores
    cuts = ranked[ends]
    tp = np.cumsum(hits)[ends]
    flagged = (np.arange(len(ranked)) + 1)[ends]
    f1 = 2 * tp / (flagged + int(truth.sum()))  # 2TP / (2TP + FP + FN)
    best = int(np.argmax(f1))  # the first maximum: the highest threshold among ties
    below = cuts[best + 1] if best + 1 < len(cuts) else cuts[best]
    return float(np.clip((cuts[best] + below) / 2, THRESHOLD_MARGIN, 1 - THRESHOLD_MARGIN))


def metrics(labels: Sequence[bool] | npt.NDArray[np.bool_], scores: Sequence[float] | F32,
            threshold: float) -> Metrics:
    """Precision and recall of "score >= threshold means violation"; 0.0 where a ratio has nothing to count."""
    truth = np.asarray(labels, dtype=bool)
    said = np.asarray(scores, dtype=np.float64) >= threshold
    tp = int(np.sum(truth & said))
    fp = int(np.sum(~truth & said))
    fn = int(np.sum(truth & ~said))
    tn = int(np.sum(~truth & ~said))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Metrics(precision, recall, f1, tp + fn, threshold, tp, fp, fn, tn)
