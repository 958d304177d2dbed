"""The one place where classifier kinds are declared (the built-in ones, then those extensions add, checked once at
start-up: ``bastion/core/extensions.py``), and the classifiers file that says which ones run.

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

import inspect
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from bastion.classifiers.decisions import DecisionsClassifier
from bastion.classifiers.http import HttpClassifier
from bastion.classifiers.interfaces import Classifier, ClassifierContext, ClassifierError
from bastion.classifiers.similarity import SimilarityClassifier
from bastion.core import extensions
from bastion.core.extensions import ExtensionError, Loaded

#: Where the built-in kinds come from, in errors about a kind an extension takes again.
BUILT_IN_ORIGIN = "bastion"

#: Bastion's own classifier kinds, always present; extensions add theirs (``bastion/core/extensions.py``).
BUILT_IN: tuple[type[Classifier], ...] = (
    HttpClassifier,
    SimilarityClassifier,
    DecisionsClassifier,
)


class Declared:
    """The classifier kinds in force, indexed once by kind, with who declared each."""

    def __init__(self, declared: Sequence[tuple[str, type[Classifier]]]) -> None:
        for origin, k in declared:
            _check_class(origin, k)
        by_kind, origin_of = extensions.unique(declared, lambda k: k.kind, "classifier kind")
        self.kinds = tuple(by_kind.values())
        self.by_kind: Mapping[str, type[Classifier]] = MappingProxyType(by_kind)
        self.origin_of: Mapping[str, str] = MappingProxyType(origin_of)


def _check_class(origin: str, k: object) -> None:
    """That ``k`` is a usable classifier kind: a concrete ``Classifier`` with a well-formed ``kind``."""
    if not (isinstance(k, type) and issubclass(k, Classifier)):
        raise ExtensionError(f"{origin}: {k!r} is not a subclass of bastion.classifiers.interfaces.Classifier")
    if inspect.isabstract(k):
        missing = ", ".join(sorted(getattr(k, "__abstractmethods__", ())))
        raise ExtensionError(f"{origin}: classifier {k.__qualname__} does not implement {missing}")
    kind = getattr(k, "kind", None)
    if not isinstance(kind, str) or not extensions.NAME.match(kind):
        raise ExtensionError(f"{origin}: classifier {k.__qualname__} has an invalid kind {kind!r} "
                             "(2-32 of a-z, 0-9 and _, starting with a letter)")


def check(loaded: Sequence[Loaded]) -> Declared:
    """The built-in kinds and those of ``loaded``, checked together; raises ``ExtensionError`` naming the culprit."""
    declared = [(BUILT_IN_ORIGIN, k) for k in BUILT_IN]
    declared += [(item.origin, k) for item in loaded for k in item.extension.classifier_kinds]
    return Declared(declared)


#: The classifier kinds in force (built-in first); read through ``kinds()``/``get``, which activate on first use.
CLASSIFIER_KINDS: tuple[type[Classifier], ...] = ()
BY_KIND: Mapping[str, type[Classifier]] = MappingProxyType({})


def _publish(declared: Declared) -> None:
    global CLASSIFIER_KINDS, BY_KIND
    CLASSIFIER_KINDS, BY_KIND = declared.kinds, declared.by_kind


_in_force = extensions.InForce(check, _publish)


def kinds() -> tuple[type[Classifier], ...]:
    """Every classifier kind in force: the built-in ones, then the extensions' in the order they were declared."""
    return _in_force.get().kinds


def origin(kind: str) -> str:
    """Who declared a kind: ``bastion`` or the extension."""
    return _in_force.get().origin_of[kind]


def get(kind: str) -> type[Classifier]:
    """The class of a kind in force; ``KeyError`` for one that is not."""
    return _in_force.get().by_kind[kind]


def build(entries: object, ctx: ClassifierContext) -> tuple[Classifier, ...]:
    """Classifiers from the ``classifiers`` list of a parsed file; every entry checked, names and scores unique."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ClassifierError("classifiers must be a list of [[classifiers]] tables")
    by_kind = _in_force.get().by_kind
    built: list[Classifier] = []
    owner: dict[str, str] = {}
    for number, entry in enumerate(entries, 1):
        kind = entry.get("kind")
        if not isinstance(kind, str) or kind not in by_kind:
            known = ", ".join(by_kind)
            raise ClassifierError(f"classifiers[{number}]: kind {kind!r} is not one of {known}")
        try:
            classifier = by_kind[kind].configure(entry, ctx)
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
