"""The one place where Bastion's signal types are declared: the built-in ones, then those extensions add
(``bastion/core/extensions.py``), checked once at start-up: well-formed classes, unique, well-formed names.

Read the set in force through ``signal_types()``, ``get``, ``file_hashers`` and ``text_hashers``: on first use
they activate the extensions the environment names, if the start-up has not already done so. A lookup is then a
dictionary read: nothing is imported or searched for by name while content is hashed or matched.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType

from bastion.core import extensions
from bastion.core.extensions import ExtensionError, Loaded
from bastion.hashing.exact import Md5Signal, Sha256Signal
from bastion.hashing.interfaces import FileHasher, SignalType, TextHasher
from bastion.hashing.pdq import PdqSignal
from bastion.hashing.text import TextSignal
from bastion.hashing.url import UrlSignal
from bastion.hashing.video_pdq import VideoPdqSignal

#: Where the built-in types come from, in errors about a name an extension takes again.
BUILT_IN_ORIGIN = "bastion"

#: Bastion's own signal types, always present.
BUILT_IN: tuple[type[SignalType], ...] = (
    PdqSignal,
    VideoPdqSignal,
    Md5Signal,
    Sha256Signal,
    TextSignal,
    UrlSignal,
)


class UnknownSignalType(KeyError):
    def __str__(self) -> str:
        known = ", ".join(sorted(BY_NAME))
        return f"unknown signal type {self.args[0]!r} (known: {known})"


class Declared:
    """The signal types in force, indexed once: by name, and which of them hash files and texts."""

    def __init__(self, declared: Sequence[tuple[str, type[SignalType]]]) -> None:
        for origin, t in declared:
            _check_class(origin, t)
        by_name, origin_of = extensions.unique(declared, lambda t: t.name, "signal type name")
        self.types = tuple(by_name.values())
        self.by_name: Mapping[str, type[SignalType]] = MappingProxyType(by_name)
        self.origin_of: Mapping[str, str] = MappingProxyType(origin_of)
        self.file_hashers = tuple(t for t in self.types if issubclass(t, FileHasher))
        self.text_hashers = tuple(t for t in self.types if issubclass(t, TextHasher))


def _check_class(origin: str, t: object) -> None:
    """That ``t`` is a usable signal type: a concrete ``SignalType`` with a well-formed name and thresholds."""
    if not (isinstance(t, type) and issubclass(t, SignalType)):
        raise ExtensionError(f"{origin}: {t!r} is not a subclass of bastion.hashing.interfaces.SignalType")
    if inspect.isabstract(t):
        missing = ", ".join(sorted(getattr(t, "__abstractmethods__", ())))
        raise ExtensionError(f"{origin}: signal type {t.__qualname__} does not implement {missing}")
    name = getattr(t, "name", None)
    if not isinstance(name, str) or not extensions.NAME.match(name):
        raise ExtensionError(f"{origin}: signal type {t.__qualname__} has an invalid name {name!r} "
                             "(2-32 of a-z, 0-9 and _, starting with a letter)")
    low, high = t.default_threshold, t.max_threshold
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or not 0 <= low <= high:
        raise ExtensionError(f"{origin}: signal type {name!r} needs 0 <= default_threshold <= max_threshold "
                             f"(integers), got {low!r} and {high!r}")


def check(loaded: Sequence[Loaded]) -> Declared:
    """The built-in types and those of ``loaded``, checked together; raises ``ExtensionError`` naming the culprit."""
    declared = [(BUILT_IN_ORIGIN, t) for t in BUILT_IN]
    declared += [(item.origin, t) for item in loaded for t in item.extension.signal_types]
    return Declared(declared)


#: The signal types in force (built-in first); read through ``signal_types()``, which activates on first use.
SIGNAL_TYPES: tuple[type[SignalType], ...] = ()
BY_NAME: Mapping[str, type[SignalType]] = MappingProxyType({})


def _publish(declared: Declared) -> None:
    global SIGNAL_TYPES, BY_NAME
    SIGNAL_TYPES, BY_NAME = declared.types, declared.by_name


_in_force = extensions.InForce(check, _publish)


def signal_types() -> tuple[type[SignalType], ...]:
    """Every signal type in force: the built-in ones, then the extensions' in the order they were declared."""
    return _in_force.get().types


def origin(name: str) -> str:
    """Who declared a signal type: ``bastion`` or the extension (for ``bastion extensions`` and errors)."""
    return _in_force.get().origin_of[get(name).name]


def get(name: str) -> type[SignalType]:
    try:
        return (_in_force.ready or _in_force.get()).by_name[name]  # called per query: no call once activated
    except KeyError:
        raise UnknownSignalType(name) from None


def file_hashers() -> Iterator[type[FileHasher]]:
    return iter(_in_force.get().file_hashers)


def text_hashers() -> Iterator[type[TextHasher]]:
    return iter(_in_force.get().text_hashers)
