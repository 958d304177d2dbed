"""Extensions: signal types and classifier kinds from outside the package, so a deployment adds a hash type or a
model without forking Bastion.

An extension is an importable module holding one manifest, ``BASTION_EXTENSION = Extension(...)``, that lists the
classes it adds. Bastion finds extensions in two places: the modules named in ``BASTION_EXTENSIONS`` (comma
separated, e.g. ``BASTION_EXTENSIONS=acme_hashes,acme_models``) and the installed packages that declare an entry
point in the group ``bastion.extensions`` (its value: the module, or ``module:BASTION_EXTENSION``)::

    # acme_hashes.py
    from bastion.core.extensions import Extension
    BASTION_EXTENSION = Extension(signal_types=(Crc32Signal,), classifier_kinds=(KeywordClassifier,))

They are loaded and checked once, at start-up (``activate``, called by the app factory and the CLI): a module that
cannot be imported, a missing or malformed manifest, a class that does not implement its interface, a malformed
name or a name already taken (by a built-in or another extension) stops the start with a message naming the
extension. Nothing is looked up by module name afterwards: the registries (``hashing/registry.py``,
``classifiers/registry.py``) hold the classes, and a lookup by signal type or classifier kind is a dictionary read.

It sits in ``core`` so that every domain may read it; it knows nothing of signal types or classifiers.
Each registry hands it a check when it is imported (``on_activate``), runs it on what ``activate`` loads (all checks
pass before anything is in force), and re-indexes when ``state().generation`` changes.

Each added class should pass the shared contract tests: subclass ``bastion.testing.SignalTypeContract`` or
``bastion.testing.ClassifierContract`` in the extension's own tests.

Don't:
- rename a class's ``name`` or ``kind`` once data uses it: it is a storage key (bank entries, classifiers files);
- do work at import time: the module is imported by every process that starts (server, CLI, workers).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from bastion.core.errors import DomainError

#: The setting naming extension modules, comma separated.
SETTING = "BASTION_EXTENSIONS"
#: The entry-point group an installed package declares its extension under.
ENTRY_POINT_GROUP = "bastion.extensions"
#: The module attribute holding an extension's manifest.
MANIFEST = "BASTION_EXTENSION"

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class ExtensionError(DomainError, ValueError):
    """An extension that cannot be used; the message names it and says what is wrong. Stops the start."""

    status = 500
    title = "Extension refused"


@dataclass(frozen=True)
class Extension:
    """What an extension adds. Each class is checked at start-up against its interface and for a free name."""

    #: Subclasses of ``bastion.hashing.interfaces.SignalType`` (with ``FileHasher``/``TextHasher`` as they can).
    signal_types: Sequence[type[Any]] = ()
    #: Subclasses of ``bastion.classifiers.interfaces.Classifier``, used by ``kind`` in the classifiers file.
    classifier_kinds: Sequence[type[Any]] = ()


@dataclass(frozen=True)
class Loaded:
    """One extension found at start-up and where it came from (said in every error about it)."""

    #: ``extension 'acme_hashes'`` (from the setting) or ``entry point 'acme' (acme_hashes:BASTION_EXTENSION)``.
    origin: str
    extension: Extension


def names_from(raw: str | None) -> tuple[str, ...]:
    """The module names of a ``BASTION_EXTENSIONS`` value: comma separated, blanks ignored, order kept."""
    return tuple(name for part in (raw or "").split(",") if (name := part.strip()))


def _manifest(origin: str, found: object) -> Extension:
    """The manifest a module (or an entry point's object) provides, checked for shape."""
    if isinstance(found, ModuleType):
        if not hasattr(found, MANIFEST):
            raise ExtensionError(f"{origin}: the module has no {MANIFEST} "
                                 "(set it to a bastion.core.extensions.Extension)")
        found = getattr(found, MANIFEST)
    if not isinstance(found, Extension):
        raise ExtensionError(f"{origin}: {MANIFEST} is a {type(found).__name__}, "
                             "not a bastion.core.extensions.Extension")
    for field_name in ("signal_types", "classifier_kinds"):
        value = getattr(found, field_name)
        if not isinstance(value, (tuple, list)) or not all(isinstance(c, type) for c in value):
            raise ExtensionError(f"{origin}: {field_name} must be a tuple of classes, got {value!r}")
    if not found.signal_types and not found.classifier_kinds:
        raise ExtensionError(f"{origin}: the manifest adds no signal type and no classifier kind")
    return found


def _from_module(name: str) -> Loaded:
    origin = f"extension {name!r}"
    if not _MODULE_NAME.match(name):
        raise ExtensionError(f"{origin}: not a module name ({SETTING} lists importable modules, comma separated)")
    try:
        module = importlib.import_module(name)
    except (Exception, SystemExit) as exc:  # an extension may fail in any way at import: said with its name
        raise ExtensionError(f"{origin}: cannot import it ({type(exc).__name__}: {exc})") from exc
    return Loaded(origin, _manifest(origin, module))


def _from_entry_points() -> list[Loaded]:
    loaded = []
    for point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        origin = f"entry point {point.name!r} ({point.value})"
        try:
            found = point.load()
        except (Exception, SystemExit) as exc:  # as above
            raise ExtensionError(f"{origin}: cannot load it ({type(exc).__name__}: {exc})") from exc
        loaded.append(Loaded(origin, _manifest(origin, found)))
    return loaded


def load(names: Sequence[str], *, entry_points: bool = True) -> tuple[Loaded, ...]:
    """Import the named modules, then the installed entry points, and read their manifests (not yet installed).

    The same manifest reached twice (named in the setting and installed with an entry point) counts once.
    """
    found = [_from_module(name) for name in names]
    if entry_points:
        found.extend(_from_entry_points())
    seen: set[int] = set()
    unique = []
    for item in found:
        if id(item.extension) not in seen:
            seen.add(id(item.extension))
            unique.append(item)
    return tuple(unique)


@dataclass(frozen=True)
class State:
    """The extensions in force, as ``activate`` left them; ``generation`` changes at each activation or reset."""

    key: tuple[tuple[str, ...], bool] | None
    loaded: tuple[Loaded, ...]
    generation: int


_lock = threading.RLock()
_state: State | None = None
_generation = 0
#: Put in force what a check accepted, with the state it belongs to.
Apply = Callable[["State"], None]
#: The registries' checks, in the order they were imported: each raises ``ExtensionError`` for what it refuses,
#: or returns how to put what it accepted in force.
_checks: list[Callable[[tuple[Loaded, ...]], Apply]] = []


def on_activate(check: Callable[[tuple[Loaded, ...]], Apply]) -> None:
    """Run ``check`` on what each ``activate`` loads, before anything is in force (a registry calls it at import)."""
    with _lock:
        _checks.append(check)


def _put(key: tuple[tuple[str, ...], bool] | None, loaded: tuple[Loaded, ...]) -> State:
    global _state, _generation
    _generation += 1
    _state = State(key, loaded, _generation)
    return _state


def activate(names: Sequence[str], *, entry_points: bool = True) -> tuple[Loaded, ...]:
    """Load the extensions, check every class they add, and put them in force: all or nothing.

    Called once at start-up (``web/app.py: create_app``, the CLI); calling it again with the same names does
    nothing, with other names replaces the extended set (tests; a process serves one configuration).
    """
    key = (tuple(names), entry_points)
    with _lock:
        if _state is not None and _state.key == key:
            return _state.loaded
        loaded = load(names, entry_points=entry_points)
        applies = [check(loaded) for check in _checks]  # raises before anything is in force
        new = _put(key, loaded)
        for apply in applies:
            apply(new)
        return loaded


def activated() -> tuple[tuple[str, ...], bool] | None:
    """The names and entry-point choice of the ``activate`` in force; ``None`` before any (or after ``reset``)."""
    with _lock:
        return None if _state is None else _state.key


def state() -> State:
    """The extensions in force; on first use without ``activate``, those the environment names (and installed)."""
    current = _state
    if current is not None and current.key is not None:
        return current
    with _lock:
        if _state is None or _state.key is None:
            activate(names_from(os.environ.get(SETTING)))
        assert _state is not None
        return _state


def reset() -> None:
    """Back to the built-in signal types and classifier kinds only; the next use activates again (for tests)."""
    with _lock:
        applies = [check(()) for check in _checks]
        new = _put(None, ())
        for apply in applies:
            apply(new)


D = TypeVar("D")
K = TypeVar("K")

#: Names of signal types and classifier kinds: 2-32 of a-z, 0-9 and _, starting with a letter (a storage key).
NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


def unique(declared: Sequence[tuple[str, K]], key: Callable[[K], str], what: str
           ) -> tuple[dict[str, K], dict[str, str]]:
    """``declared`` (origin, class) indexed by ``key``, and who declared each; a key declared twice is refused,
    naming both origins."""
    by_key: dict[str, K] = {}
    origin_of: dict[str, str] = {}
    for origin, k in declared:
        name = key(k)
        if name in by_key:
            raise ExtensionError(f"{origin}: {what} {name!r} is already declared by {origin_of[name]} "
                                 f"({getattr(by_key[name], '__qualname__', by_key[name])})")
        by_key[name], origin_of[name] = k, origin
    return by_key, origin_of


class InForce(Generic[D]):
    """What one registry has in force (its ``check`` of the built-in classes and the extensions' ones, ``D``),
    activated on first use. Each activation re-checks; ``publish`` is told what is in force (a registry's
    module-level views). Once activated, ``get`` is one attribute read: nothing is looked up per call."""

    def __init__(self, check: Callable[[Sequence[Loaded]], D], publish: Callable[[D], None]) -> None:
        self._check, self._publish = check, publish
        self._in_use: tuple[int, D] = (-1, check(()))
        #: What is in force once the extensions are activated; ``None`` until then (and after a reset).
        self.ready: D | None = None
        publish(self._in_use[1])
        on_activate(self._prepare)

    def _use(self, current: State, declared: D) -> D:
        self._in_use = (current.generation, declared)
        self._publish(declared)
        self.ready = declared if current.key is not None else None
        return declared

    def _prepare(self, loaded: tuple[Loaded, ...]) -> Apply:
        declared = self._check(loaded)

        def apply(current: State) -> None:
            self._use(current, declared)

        return apply

    def get(self) -> D:
        ready = self.ready
        if ready is not None:
            return ready
        current = state()  # activates on first use
        generation, declared = self._in_use
        if generation != current.generation:  # activated before the registry was imported
            declared = self._use(current, self._check(current.loaded))
        return declared
