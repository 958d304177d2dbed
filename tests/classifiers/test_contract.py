"""The contract every classifier kind keeps (``bastion.testing.ClassifierContract``), run on each built-in kind: an
extension's kind gets the same checks by subclassing it (tests/test_extensions.py does so from outside)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from bastion.classifiers import embeddings, registry, services
from bastion.classifiers.features import HashedNgrams
from bastion.classifiers.interfaces import Classifier, ClassifierContext, Content, LabelledText
from bastion.classifiers.models import TrainedModel
from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.testing import ClassifierContract
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


class TestHttp(ClassifierContract):
    kind = "http"

    @pytest.fixture
    def classifier(self, db: Database, host: Host) -> Classifier:
        return _http(db, host)


class TestSimilarity(ClassifierContract):
    kind = "similarity"

    @pytest.fixture
    def classifier(self, db: Database, host: Host) -> Classifier:
        return _similarity(db, host)


class TestDecisions(ClassifierContract):
    kind = "decisions"

    @pytest.fixture
    def classifier(self, db: Database, host: Host) -> Classifier:
        return _decisions(db, host)


def test_every_registered_kind_is_checked_here() -> None:
    checked = {c.kind for c in ClassifierContract.__subclasses__() if c.__module__ == __name__}
    assert checked == set(registry.BY_KIND) == {k.kind for k in registry.BUILT_IN}


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
