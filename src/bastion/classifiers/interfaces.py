"""The classifier plug-in interface: every model that scores content implements it.

A *classifier* reads an upload (its text, or its media file) and gives one or more *scores* between 0 and 1, each
under a name the moderation policy tests (``when.classifier = {name = "terror_text", min_score = 0.9}``). Intake,
the policy and the analyst's view only ever talk to this interface, so a new model is one class (in ``registry.py``,
or declared by an extension: ``core/extensions.py``) and an entry in the classifiers file; nothing switches on a
classifier's name.

Unlike a signal type, a classifier is configured (a URL, a corpus category, a trained model), so it is an instance
built by its class's ``configure`` from one ``[[classifiers]]`` entry. ``kind`` is the class's storage key (the
``kind = "..."`` of that entry): never rename one.

Don't:
- raise from ``classify`` for an outage: raise ``ClassifierFailed`` with a short reason, so intake goes on without
  the score and says why;
- log a token, or the text of an upload, in a failure reason;
- load a model at import time: load it on first use, once, under a lock (and in ``warm``, which the app calls in
  a background thread at start-up so that the first upload does not pay for it);
- leave a connection open: ``close`` (called at the app's shutdown) releases what the classifier holds.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from bastion.core.db import Database
from bastion.core.errors import DomainError
from bastion.hashing.interfaces import MediaKind

#: The policy's rule for classifier names (``moderation/policy.py: ClassifierName``), repeated so that this domain,
#: which sits below moderation, does not import it.
SCORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
#: How to install what the embedding classifiers need; said at start-up, in the CLI and in reasons.
ML_EXTRA_HINT = "pip install '.[ml]' (after a CPU torch: pip install torch)"


class ClassifierError(DomainError, ValueError):
    """A classifiers file or a classifier request that cannot be used; the message says what to fix."""

    status = 422
    title = "Classifier not usable"


class MissingExtra(ClassifierError):
    """The feature needs the optional ``ml`` extra (sentence-transformers, torch), which is not installed."""


class ClassifierFailed(Exception):
    """A classifier could not score this upload now (timeout, server error, bad answer): intake goes on without it."""


class Accepts(enum.StrEnum):
    """What a classifier reads: the upload's text, or its media file of one kind (values of ``MediaKind``)."""

    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True)
class Content:
    """One upload as a classifier sees it: the text (caption, post) and, when it is still on disk, the media file
    with its kind (sniffed from its bytes, never from its name)."""

    text: str = ""
    media: Path | None = None
    kind: MediaKind | None = None


@dataclass(frozen=True)
class ClassifierContext:
    """What ``configure`` may use: the database (corpus, trained models) and the bearer token for hosted models."""

    db: Database
    #: ``BASTION_CLASSIFIER_TOKEN``: sent as ``Authorization: Bearer`` to HTTP classifiers. Never logged.
    token: str = field(default="", repr=False)


@dataclass(frozen=True)
class LabelledText:
    """A moderator's decision as training data: the content's text and whether it was a violation of ``category``."""

    key: str
    text: str
    category: str
    violation: bool


class Classifier(abc.ABC):
    """A configured model that scores uploads. ``classify`` must be safe to call from many threads at once."""

    #: The ``kind`` of a classifiers-file entry that builds this class. A storage key: never rename.
    kind: ClassVar[str]
    #: The entry's own name, unique in the file (shown in reasons, logs and metrics).
    name: str

    @classmethod
    @abc.abstractmethod
    def configure(cls, entry: Mapping[str, Any], ctx: ClassifierContext) -> Self:
        """Build from one ``[[classifiers]]`` entry; raise ``ClassifierError`` naming the field that is wrong."""

    @abc.abstractmethod
    def score_names(self) -> Sequence[str]:
        """The names of the scores it gives (what the policy's ``when.classifier.name`` refers to)."""

    @abc.abstractmethod
    def accepts(self) -> frozenset[Accepts]:
        """What it reads. Intake calls it only for content it accepts."""

    @abc.abstractmethod
    def classify(self, content: Content) -> dict[str, float]:
        """Scores between 0 and 1 by name (a subset of ``score_names``); ``ClassifierFailed`` on an outage."""

    def warm(self) -> None:  # noqa: B027 - optional: a no-op unless the kind has something to load
        """Load what the first ``classify`` would otherwise load (a model, embeddings of a corpus). The app calls it
        once, in a background thread, at start-up: it must never be needed for ``classify`` to work, and a failure
        here is only logged (the first upload then tries again and says why in its reasons)."""

    def close(self) -> None:  # noqa: B027 - optional: a no-op unless the kind holds something
        """Release what the classifier holds (an HTTP connection pool); called once, at the app's shutdown."""

    def describe(self) -> dict[str, object]:
        """What the analyst's view shows about it (held-out metrics for trained models)."""
        return {"name": self.name, "kind": self.kind, "scores": list(self.score_names()),
                "accepts": sorted(a.value for a in self.accepts())}

    def wants(self, content: Content) -> bool:
        """Whether ``content`` has something this classifier reads."""
        if content.text.strip() and Accepts.TEXT in self.accepts():
            return True
        return content.media is not None and content.kind is not None and content.kind.value in {
            a.value for a in self.accepts() if a is not Accepts.TEXT}
