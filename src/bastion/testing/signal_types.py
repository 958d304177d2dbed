"""The contract every signal type keeps: Bastion's own, and an extension's that subclasses ``SignalTypeContract``."""

from __future__ import annotations

import itertools
from typing import ClassVar

from bastion.hashing import registry
from bastion.hashing.interfaces import FileHasher, IndexHit, InvalidSignalValue, MediaKind, SignalIndex, SignalType
from bastion.testing.extensions import using_extensions

#: Not a value of any signal type: empty, blank, or a control character only.
NEVER_VALID = ("", "   ", "\x00", "\t\n")


def _keys(hits: list[IndexHit]) -> set[int]:
    return {h.key for h in hits}


def _skip(reason: str) -> None:
    import pytest  # only a test run needs pytest

    pytest.skip(reason)


class SignalTypeContract:
    """Subclass as ``TestSomething`` and set ``signal_type``; each ``test_*`` below then runs on it.

    The checks use the type's own ``examples()``: give at least two distinct, canonical values, and make the
    index agree with ``distance`` up to ``max_threshold``.
    """

    #: The class under test.
    signal_type: ClassVar[type[SignalType]]
    #: The extension modules that declare it (empty for Bastion's built-in types).
    extensions: ClassVar[tuple[str, ...]] = ()

    def test_is_declared(self) -> None:
        """Once its extension is active, the registry gives this class for its name, and files/texts reach it."""
        t = self.signal_type
        with using_extensions(self.extensions):
            assert registry.get(t.name) is t
            assert t in registry.signal_types()
            hashers: set[type] = set(registry.file_hashers())
            assert (t in hashers) == issubclass(t, FileHasher)

    def test_thresholds_are_in_range(self) -> None:
        assert 0 <= self.signal_type.default_threshold <= self.signal_type.max_threshold

    def test_examples_are_canonical(self) -> None:
        examples = list(self.signal_type.examples())
        assert len(examples) >= 2
        assert len(set(examples)) == len(examples)
        for value in examples:
            assert self.signal_type.validate(value) == value
            assert self.signal_type.validate(f"  {value}\n") == value

    def test_distance_to_itself_is_zero(self) -> None:
        for value in self.signal_type.examples():
            assert self.signal_type.distance(value, value) == 0

    def test_distinct_examples_are_apart(self) -> None:
        for a, b in itertools.permutations(self.signal_type.examples(), 2):
            assert self.signal_type.distance(a, b) > 0

    def test_distance_is_symmetric(self) -> None:
        """Types whose distance is directional (query -> banked) declare ``symmetric_distance = False``."""
        t = self.signal_type
        if not t.symmetric_distance:
            _skip(f"{t.name} measures how much of the query is in the banked value")
        for a, b in itertools.combinations(t.examples(), 2):
            assert t.distance(a, b) == t.distance(b, a)

    def test_index_finds_examples_and_forgets_removed_ones(self) -> None:
        t = self.signal_type
        index: SignalIndex = t.index_class()()
        examples = list(t.examples())
        index.add_many((10 + n, value) for n, value in enumerate(examples))
        assert len(index) == len(examples)
        threshold = t.default_threshold
        for n, value in enumerate(examples):
            hits = index.query(value, threshold)
            assert IndexHit(10 + n, 0) in hits
            assert len(_keys(hits)) == len(hits)  # each key once
            assert all(h.distance <= threshold for h in hits)
        for n, value in enumerate(examples):
            index.remove(10 + n)
            assert 10 + n not in _keys(index.query(value, threshold))
        assert len(index) == 0
        index.remove(12345)  # unknown keys are ignored

    def test_index_agrees_with_distance(self) -> None:
        t = self.signal_type
        index: SignalIndex = t.index_class()()
        examples = list(t.examples())
        for n, value in enumerate(examples):
            index.add(n, value)
        threshold = t.max_threshold
        for query in examples:
            expected = {n for n, value in enumerate(examples) if t.distance(query, value) <= threshold}
            hits = index.query(query, threshold)
            assert _keys(hits) == expected
            for hit in hits:
                assert hit.distance == t.distance(query, examples[hit.key])

    def test_readding_a_key_replaces_its_value(self) -> None:
        t = self.signal_type
        index: SignalIndex = t.index_class()()
        first, second = list(t.examples())[:2]
        index.add(7, first)
        index.add(7, second)
        assert len(index) == 1
        assert IndexHit(7, 0) in index.query(second, t.default_threshold)
        if t.distance(first, second) > t.default_threshold:
            assert index.query(first, t.default_threshold) == []

    def test_invalid_values_are_refused(self) -> None:
        for value in NEVER_VALID:
            try:
                self.signal_type.validate(value)
            except InvalidSignalValue:
                continue
            raise AssertionError(f"{self.signal_type.name} accepted {value!r}: it must raise InvalidSignalValue")

    def test_hex_values_are_canonical_as_given(self) -> None:
        """A type declaring ``hex_length`` promises that such values need no ``validate`` (a bank import skips it
        for them) and that its examples are of that form; other lengths and upper case go through ``validate``."""
        t = self.signal_type
        if t.hex_length is None:
            _skip(f"{t.name} values are not plain hex")
            return
        for value in ("0" * t.hex_length, "f" * t.hex_length, ("0123456789abcdef" * t.hex_length)[:t.hex_length],
                      *t.examples()):
            assert len(value) == t.hex_length and set(value) <= set("0123456789abcdef")
            assert t.validate(value) == value
        assert t.validate("A" * t.hex_length) == "a" * t.hex_length

    def test_file_hashers_say_what_they_read(self) -> None:
        t = self.signal_type
        if not issubclass(t, FileHasher):
            _skip(f"{t.name} does not hash files")
            return
        assert any(t.accepts(kind) for kind in MediaKind)
