"""The model trained on moderators' own decisions, as a classifier.

It scores with the highest stored version of its category's model (``classifier_models``), so every replica uses
the same one; a newer version is picked up within ``refresh_seconds``. Its score is named ``decisions:<category>``
unless the entry names it: a model learnt from this platform's reviews is a different signal from, say, similarity
to known propaganda (``terror_text``), with its own precision, so by default a policy rule must ask for it by name
rather than have it silently stand in for another model. Until a model is trained it gives no score.

The score is the model's probability recentred on the model's own threshold (chosen on held-out decisions when it
was trained, ``services.train``): ``sigmoid(logit(p) - logit(threshold))``. So 0.5 is always the operating point whose
held-out precision and recall the analyst reads, whatever the threshold of the version in force; a policy's
``min_score = 0.5`` keeps that balance across retrainings, a higher one trades recall for precision. Models stored
with the old fixed threshold 0.5 score exactly as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

from bastion.classifiers import services
from bastion.classifiers.features import Featuriser
from bastion.classifiers.interfaces import Accepts, Classifier, ClassifierContext, Content
from bastion.classifiers.logistic import Weights
from bastion.classifiers.models import TrainedModel
from bastion.classifiers.options import Options
from bastion.core.db import Database


class DecisionsClassifier(Classifier):
    kind = "decisions"

    def __init__(self, name: str, db: Database, category: str, *, refresh_seconds: float = 10.0) -> None:
        self.name, self.db, self.category = name, db, services.check_category(category)
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._checked: float | None = None
        self._model: tuple[TrainedModel, Featuriser, Weights] | None = None

    @classmethod
    def configure(cls, entry: Mapping[str, Any], ctx: ClassifierContext) -> Self:
        o = Options(entry)
        category = services.check_category(o.text("category"))
        built = cls(o.score_name("name", f"decisions:{category}"), ctx.db, category,
                    refresh_seconds=o.number("refresh_seconds", 10.0, low=0, high=3600))
        o.done()
        return built

    def score_names(self) -> Sequence[str]:
        return (self.name,)

    def accepts(self) -> frozenset[Accepts]:
        return frozenset({Accepts.TEXT})

    def model(self) -> tuple[TrainedModel, Featuriser, Weights] | None:
        with self._lock:
            if self._checked is None or time.monotonic() - self._checked >= self.refresh_seconds:
                with self.db.read() as session:
                    row = services.latest_model(session, self.category)
                if row is not None and (self._model is None or self._model[0].id != row.id):
                    self._model = (row, *services.weights_of(row))
                self._checked = time.monotonic()
            return self._model

    def warm(self) -> None:
        """Read the model in force and featurise one text, which loads what its features need (the embedding
        model for ``minilm``), so the first upload does not."""
        loaded = self.model()
        if loaded is not None:
            loaded[1].rows(["warm-up"])

    def classify(self, content: Content) -> dict[str, float]:
        loaded = self.model()
        if loaded is None:
            return {}
        row, features, weights = loaded
        return {self.name: float(weights.scores(features.rows([content.text]), row.threshold)[0])}

    def describe(self) -> dict[str, object]:
        loaded = self.model()
        return {**super().describe(), "category": self.category,
                "model": services.model_json(loaded[0]) if loaded else None}
