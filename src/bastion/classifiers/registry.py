"""The one place where classifier kinds are declared, and the classifiers file that says which ones run.

The file (``BASTION_CLASSIFIERS``, TOML) is a list of entries, each naming its ``kind`` and the fields that kind
reads; it is validated as a whole at start-up: an unknown kind or field, a name used twice, or two classifiers
giving the same score is an error that stops the start, with a message naming the entry. Without the file, no
classifier runs and intake decides on bank matches alone::

    [[classifiers]]
    kind = "similarity"            # semantic similarity to the reference corpus (needs the ml extra)
    name = "terror_text"           # the score it gives, as the policy names it
    category = "terrorist_content" # which corpus texts to compare with

    [[classifiers]]
    kind = "decisions"             # the model trained on moderators' decisions (bastion classifier train)
    category = "terrorist_content" # score "decisions:terrorist_content" unless name = "..." is given

    [[classifiers]]
    kind = "http"                  # a model the platform hosts
    name = "vision"
    url = "http://127.0.0.1:9000/score"
    scores = ["violent_extremism", "hate_speech"]
    accepts = ["text", "image", "video"]
    timeout_seconds = 2.0          # token: BASTION_CLASSIFIER_TOKEN, sent as a bearer token
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from bastion.classifiers.decisions import DecisionsClassifier
from bastion.classifiers.http import HttpClassifier
from bastion.classifiers.interfaces import Classifier, ClassifierContext, ClassifierError
from bastion.classifiers.similarity import SimilarityClassifier

_KIND = re.compile(r"^[a-z][a-z0-9_]{1,31}$")

CLASSIFIER_KINDS: tuple[type[Classifier], ...] = (
    HttpClassifier,
    SimilarityClassifier,
    DecisionsClassifier,
)


def _index(kinds: tuple[type[Classifier], ...]) -> Mapping[str, type[Classifier]]:
    by_kind: dict[str, type[Classifier]] = {}
    for k in kinds:
        if not _KIND.match(k.kind):
            raise RuntimeError(f"classifier {k.__qualname__} has an invalid kind {k.kind!r}")
        if k.kind in by_kind:
            raise RuntimeError(f"classifier kind {k.kind!r} declared twice")
        by_kind[k.kind] = k
    return MappingProxyType(by_kind)


BY_KIND = _index(CLASSIFIER_KINDS)


def build(entries: object, ctx: ClassifierContext) -> tuple[Classifier, ...]:
    """Classifiers from the ``classifiers`` list of a parsed file; every entry checked, names and scores unique."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ClassifierError("classifiers must be a list of [[classifiers]] tables")
    built: list[Classifier] = []
    owner: dict[str, str] = {}
    for number, entry in enumerate(entries, 1):
        kind = entry.get("kind")
        if not isinstance(kind, str) or kind not in BY_KIND:
            known = ", ".join(BY_KIND)
            raise ClassifierError(f"classifiers[{number}]: kind {kind!r} is not one of {known}")
        try:
            classifier = BY_KIND[str(kind)].configure(entry, ctx)
        except ClassifierError as exc:
            raise type(exc)(f"classifiers[{number}]: {exc}") from None
        if any(c.name == classifier.name for c in built):
            raise ClassifierError(f"classifiers[{number}]: the name {classifier.name!r} is used twice")
        for score in classifier.score_names():
            if score in owner:
                raise ClassifierError(f"classifiers[{number}]: score {score!r} is also given by {owner[score]!r}")
            owner[score] = classifier.name
        built.append(classifier)
    return tuple(built)


def load(path: Path | None, ctx: ClassifierContext) -> tuple[Classifier, ...]:
    """The classifiers a deployment runs: none without a file; a broken file is refused with the reason."""
    if path is None:
        return ()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClassifierError(f"{path}: cannot read the classifiers file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ClassifierError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"classifiers"})
    if unknown:
        raise ClassifierError(f"{path}: unknown key {unknown[0]!r} (only [[classifiers]] entries)")
    try:
        return build(data.get("classifiers", []), ctx)
    except ClassifierError as exc:
        raise type(exc)(f"{path}: {exc}") from None
