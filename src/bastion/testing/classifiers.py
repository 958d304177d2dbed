"""The contract every classifier kind keeps: Bastion's own, and an extension's that subclasses
``ClassifierContract``."""

from __future__ import annotations

import math
from typing import ClassVar

from bastion.classifiers import registry
from bastion.classifiers.interfaces import SCORE_NAME, Classifier, Content
from bastion.testing.extensions import using_extensions


class ClassifierContract:
    """Subclass as ``TestSomething``, set ``kind``, and give a pytest fixture named ``classifier`` that returns one
    configured instance (built by the class's ``configure`` from a classifiers-file entry, as the app builds it)::

        class TestKeywords(ClassifierContract):
            kind = "keywords"
            extensions = ("acme_models",)

            @pytest.fixture
            def classifier(self) -> Classifier:
                return KeywordClassifier.configure({"kind": "keywords", "name": "slurs", "words": ["vermin"]}, ctx)

    ``sample`` must be content the classifier reads and gives at least one score for.
    """

    #: The ``kind`` under test.
    kind: ClassVar[str]
    #: The extension modules that declare it (empty for Bastion's built-in kinds).
    extensions: ClassVar[tuple[str, ...]] = ()
    #: Content it reads and scores (a text by default; an image-only kind gives an image).
    sample: ClassVar[Content] = Content("strike the unbelievers, they are vermin")

    def test_contract(self, classifier: Classifier) -> None:
        kind = self.kind
        with using_extensions(self.extensions):
            assert classifier.kind == kind and registry.get(kind) is type(classifier)
        classifier.warm()  # optional, and never needed: the app calls it in the background at start-up
        names = list(classifier.score_names())
        assert names and all(SCORE_NAME.match(n) for n in names) and len(set(names)) == len(names)
        assert classifier.accepts()
        content = self.sample
        assert classifier.wants(content)
        scores = classifier.classify(content)
        assert scores and set(scores) <= set(names)
        assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in scores.values())
        described = classifier.describe()
        assert (described["name"], described["kind"], described["scores"]) == (classifier.name, kind, names)
        assert not classifier.wants(Content("   "))  # nothing to read: not asked
        classifier.close()
