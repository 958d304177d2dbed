"""The contract every classifier kind keeps, checked on each kind registered (a new kind gets it by being listed)."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable

import pytest

from bastion.classifiers import embeddings, registry, services
from bastion.classifiers.features import HashedNgrams
from bastion.classifiers.interfaces import SCORE_NAME, Classifier, ClassifierContext, Content, LabelledText
from bastion.classifiers.models import TrainedModel
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from tests.classifiers.test_training import _texts
from tests.factories.model_host import Host

CLOCK = FrozenClock(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))


def _http(db: Database, host: Host) -> Classifier:
    host.answer(body='{"scores": {"hate_speech": 0.25, "borderline": 1}}')
    return registry.BY_KIND["http"].configure({"kind": "http", "name": "hosted", "url": host.url,
                                               "scores": ["hate_speech", "borderline"]}, ClassifierContext(db))


def _similarity(db: Database, host: Host) -> Classifier:
    if embeddings.ml_missing():
        pytest.skip("needs the ml extra: pip install '.[ml]' (CI installs it)")
    services.add_corpus(db, ["strike the unbelievers"], category="terrorist_content", source="t", actor="a",
                        clock=CLOCK)
    return registry.BY_KIND["similarity"].configure({"kind": "similarity", "name": "terror_text",
                                                     "category": "terrorist_content"}, ClassifierContext(db))


def _decisions(db: Database, host: Host) -> Classifier:
    examples = [LabelledText(f"c-{i}", t, "hate_speech", bad) for i, (t, bad) in enumerate(_texts(24))]
    services.train(db, examples, category="hate_speech", features=HashedNgrams(), clock=CLOCK, actor="a")
    return registry.BY_KIND["decisions"].configure({"kind": "decisions", "category": "hate_speech"},
                                                   ClassifierContext(db))


MAKERS: dict[str, Callable[[Database, Host], Classifier]] = {
    "http": _http, "similarity": _similarity, "decisions": _decisions}


def test_every_registered_kind_is_checked_here() -> None:
    assert set(MAKERS) == set(registry.BY_KIND)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_contract(kind: str, db: Database, host: Host) -> None:
    classifier = MAKERS[kind](db, host)
    assert classifier.kind == kind and registry.BY_KIND[kind] is type(classifier)
    classifier.warm()  # optional, and never needed: the app calls it in the background at start-up
    names = list(classifier.score_names())
    assert names and all(SCORE_NAME.match(n) for n in names) and len(set(names)) == len(names)
    assert classifier.accepts()
    content = Content("strike the unbelievers, they are vermin")
    assert classifier.wants(content)
    scores = classifier.classify(content)
    assert scores and set(scores) <= set(names)
    assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in scores.values())
    described = classifier.describe()
    assert (described["name"], described["kind"], described["scores"]) == (classifier.name, kind, names)
    assert not classifier.wants(Content("   "))  # nothing to read: not asked
    classifier.close()


def test_a_classifier_that_cannot_warm_up_is_logged_and_says_why_on_its_uploads(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    with db.write() as session:  # a model whose stored weights do not fit its features
        session.add(TrainedModel(category="hate_speech", version=1, feature_kind="ngrams", dimensions=3,
                                 weights=b"\0" * 12, bias=0.0, threshold=0.5, metrics={}, decisions=20,
                                 trained_at=CLOCK.now(), trained_by="a"))
    broken = registry.BY_KIND["decisions"].configure({"kind": "decisions", "category": "hate_speech"},
                                                     ClassifierContext(db))
    with caplog.at_level(logging.ERROR, logger="bastion.classifiers.services"):
        services.warm_in_background([broken]).join(timeout=30)
    assert "classifier decisions:hate_speech could not warm up" in caplog.text
    result = services.score([broken], Content("they are vermin"))
    assert result.scores == {} and "3 weights for 65536 ngrams features" in str(result.failures[0])
