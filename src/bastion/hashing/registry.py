"""The one place where Bastion's signal types are declared. Checked once at import: unique, well-formed names."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from bastion.hashing.exact import Md5Signal, Sha256Signal
from bastion.hashing.interfaces import FileHasher, SignalType, TextHasher
from bastion.hashing.pdq import PdqSignal
from bastion.hashing.text import TextSignal
from bastion.hashing.url import UrlSignal
from bastion.hashing.video_pdq import VideoPdqSignal

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")

SIGNAL_TYPES: tuple[type[SignalType], ...] = (
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


def _index(types: tuple[type[SignalType], ...]) -> Mapping[str, type[SignalType]]:
    by_name: dict[str, type[SignalType]] = {}
    for t in types:
        if not _NAME.match(t.name):
            raise RuntimeError(f"signal type {t.__qualname__} has an invalid name {t.name!r}")
        if t.name in by_name:
            raise RuntimeError(f"signal type name {t.name!r} declared twice")
        by_name[t.name] = t
    return MappingProxyType(by_name)


BY_NAME = _index(SIGNAL_TYPES)


def get(name: str) -> type[SignalType]:
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownSignalType(name) from None


def file_hashers() -> Iterator[type[FileHasher]]:
    for t in SIGNAL_TYPES:
        if issubclass(t, FileHasher):
            yield t


def text_hashers() -> Iterator[type[TextHasher]]:
    for t in SIGNAL_TYPES:
        if issubclass(t, TextHasher):
            yield t
