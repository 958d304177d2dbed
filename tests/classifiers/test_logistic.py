"""Logistic regression, the held-out split and the metrics, on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bastion.classifiers.features import DenseRows, HashedNgrams
from bastion.classifiers.logistic import Weights, best_threshold, fit, held_out, metrics


def test_metrics_on_a_hand_checked_case() -> None:
    # truth:  V  V  V  V  .  .  .  .  .  .      scores >= 0.5 flag positions 0, 1, 4 and 5
    labels = [True, True, True, True, False, False, False, False, False, False]
    scores = [0.9, 0.7, 0.4, 0.1, 0.8, 0.5, 0.3, 0.2, 0.1, 0.0]
    m = metrics(labels, scores, 0.5)
    # tp = 2 (0, 1), fp = 2 (4, 5), fn = 2 (2, 3), tn = 4
    assert (m.true_positives, m.false_positives, m.false_negatives, m.true_negatives) == (2, 2, 2, 4)
    assert (m.precision, m.recall, m.f1, m.support) == (0.5, 0.5, 0.5, 4)
    stricter = metrics(labels, scores, 0.75)  # flags 0 and 4: tp 1, fp 1, fn 3
    assert (stricter.precision, stricter.recall) == (0.5, 0.25)
    assert stricter.f1 == pytest.approx(2 * 0.5 * 0.25 / 0.75)


def test_metrics_with_nothing_flagged_are_zero_not_an_error() -> None:
    m = metrics([True, False], [0.1, 0.2], 0.5)
    assert (m.precision, m.recall, m.f1, m.support) == (0.0, 0.0, 0.0, 1)


def test_the_split_is_seeded_stable_and_about_the_fraction() -> None:
    keys = [f"content-{i}" for i in range(2000)]
    first = [held_out(k, seed=7, fraction=0.25) for k in keys]
    assert first == [held_out(k, seed=7, fraction=0.25) for k in reversed(keys)][::-1]  # order does not matter
    assert 0.21 < sum(first) / len(keys) < 0.29
    assert first != [held_out(k, seed=8, fraction=0.25) for k in keys]  # another seed, another split


def test_fit_separates_a_separable_set_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = x[:, 0] + 0.5 * x[:, 1] > 0.3
    model = fit(DenseRows(x), y, dimensions=5, steps=400)
    again = fit(DenseRows(x), y, dimensions=5, steps=400)
    assert np.array_equal(model.w, again.w) and model.bias == again.bias
    m = metrics(y, model.scores(DenseRows(x)), 0.5)
    assert m.precision > 0.95 and m.recall > 0.95
    assert model.w[0] > abs(model.w[2]) and model.w[1] > abs(model.w[3])


def test_hashed_ngrams_are_unit_rows_and_sparse_products_match_dense() -> None:
    f = HashedNgrams()
    rows = f.rows(["Join the fight now", "", "holiday at the beach, join us"])
    dense = np.zeros((3, f.dimensions), dtype=np.float32)
    for i in range(3):
        dense[i, rows.cols[rows.start[i]:rows.start[i + 1]]] += rows.vals[rows.start[i]:rows.start[i + 1]]
    assert np.allclose(np.linalg.norm(dense[[0, 2]], axis=1), 1.0) and not dense[1].any()
    w = np.random.default_rng(2).normal(size=f.dimensions).astype(np.float32)
    g = np.asarray([0.5, -1.0, 2.0], dtype=np.float32)
    assert np.allclose(rows.dot(w), dense @ w, atol=1e-4)
    assert np.allclose(rows.tdot(g), dense.T @ g, atol=1e-5)
    picked = rows.take(np.asarray([2, 0]))
    assert np.allclose(picked.dot(w), (dense @ w)[[2, 0]], atol=1e-4)
    assert f.grams("Join the fight")[:5] == ["w:join", "w:the", "w:fight", "b:join the", "b:the fight"]


def test_the_threshold_maximises_f1_on_a_hand_checked_case() -> None:
    # The case above, ranked: .9 V  .8 .  .7 V  .5 .  .4 V  .3 .  .2 .  .1 V  .1 .  0 .
    # F1 by lowest flagged score: .9 → 2/5, .7 → 4/7, .4 → 6/9 (the best: tp 3, fp 2, fn 1), .1 → 8/13.
    labels = [True, True, True, True, False, False, False, False, False, False]
    scores = [0.9, 0.7, 0.4, 0.1, 0.8, 0.5, 0.3, 0.2, 0.1, 0.0]
    t = best_threshold(labels, scores)
    assert t == pytest.approx(0.35)  # midway between 0.4 (flagged) and 0.3 (the next below)
    m = metrics(labels, scores, t)
    assert (m.true_positives, m.false_positives, m.false_negatives) == (3, 2, 1)
    assert m.f1 == pytest.approx(2 / 3) and m.f1 > metrics(labels, scores, 0.5).f1
    assert best_threshold(labels, scores) == t  # the same scores, the same threshold


def test_among_equal_f1_the_highest_threshold_wins() -> None:
    # Flagging only .9 (tp 1, fp 0, fn 1) and flagging down to .6 (tp 2, fp 2) both give F1 2/3: fewer flags win.
    labels = [True, False, False, True, False]
    scores = [0.9, 0.8, 0.7, 0.6, 0.1]
    assert best_threshold(labels, scores) == pytest.approx(0.85)
    assert best_threshold([True, True, False, False], [0.9, 0.8, 0.3, 0.1]) == pytest.approx(0.55)
    assert best_threshold([False, False], [0.9, 0.1]) == 0.5  # nothing to find: the neutral threshold
    assert 0.0 < best_threshold([True, True], [1.0, 1.0]) < 1.0  # kept inside (0, 1): its logit is finite


def test_scores_recentred_on_a_threshold_cross_one_half_where_the_raw_ones_cross_it() -> None:
    x = DenseRows(np.asarray([[-2.0], [-0.6], [-0.4], [0.0], [1.5]], dtype=np.float32))
    weights = Weights(np.asarray([1.0], dtype=np.float32), 0.0)
    raw = weights.scores(x)
    threshold = float(raw[1] + raw[2]) / 2  # between the second and third rows
    centred = weights.scores(x, threshold)
    assert list(centred >= 0.5) == list(raw >= threshold) == [False, False, True, True, True]
    assert list(np.argsort(centred)) == list(np.argsort(raw))  # the order, hence the ranking, is kept
    assert np.array_equal(weights.scores(x, 0.5), raw)  # models stored at 0.5 score as before
