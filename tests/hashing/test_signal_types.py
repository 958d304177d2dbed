"""The plug-in contract, checked for every signal type in the registry: a new type gets these for free."""

from __future__ import annotations

import itertools

import pytest

from bastion.hashing import registry
from bastion.hashing.interfaces import FileHasher, IndexHit, InvalidSignalValue, SignalIndex, SignalType

# Not a value of any signal type: empty, blank, or a control character only.
NEVER_VALID = ("", "   ", "\x00", "\t\n")


@pytest.fixture(params=registry.SIGNAL_TYPES, ids=lambda t: t.name)
def signal_type(request: pytest.FixtureRequest) -> type[SignalType]:
    t: type[SignalType] = request.param
    return t


def _keys(hits: list[IndexHit]) -> set[int]:
    return {h.key for h in hits}


def test_thresholds_are_in_range(signal_type: type[SignalType]) -> None:
    assert 0 <= signal_type.default_threshold <= signal_type.max_threshold


def test_examples_are_canonical(signal_type: type[SignalType]) -> None:
    examples = list(signal_type.examples())
    assert len(examples) >= 2
    assert len(set(examples)) == len(examples)
    for value in examples:
        assert signal_type.validate(value) == value
        assert signal_type.validate(f"  {value}\n") == value


def test_distance_to_itself_is_zero(signal_type: type[SignalType]) -> None:
    for value in signal_type.examples():
        assert signal_type.distance(value, value) == 0


def test_distinct_examples_are_apart(signal_type: type[SignalType]) -> None:
    for a, b in itertools.permutations(signal_type.examples(), 2):
        assert signal_type.distance(a, b) > 0


def test_distance_is_symmetric(signal_type: type[SignalType]) -> None:
    """Types whose distance is directional (query -> banked) declare ``symmetric_distance = False``."""
    if not signal_type.symmetric_distance:
        pytest.skip(f"{signal_type.name} measures how much of the query is in the banked value")
    for a, b in itertools.combinations(signal_type.examples(), 2):
        assert signal_type.distance(a, b) == signal_type.distance(b, a)


def test_index_finds_examples_and_forgets_removed_ones(signal_type: type[SignalType]) -> None:
    index: SignalIndex = signal_type.index_class()()
    examples = list(signal_type.examples())
    index.add_many((10 + n, value) for n, value in enumerate(examples))
    assert len(index) == len(examples)
    threshold = signal_type.default_threshold
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


def test_index_agrees_with_distance(signal_type: type[SignalType]) -> None:
    index: SignalIndex = signal_type.index_class()()
    examples = list(signal_type.examples())
    for n, value in enumerate(examples):
        index.add(n, value)
    threshold = signal_type.max_threshold
    for query in examples:
        expected = {n for n, value in enumerate(examples) if signal_type.distance(query, value) <= threshold}
        hits = index.query(query, threshold)
        assert _keys(hits) == expected
        for hit in hits:
            assert hit.distance == signal_type.distance(query, examples[hit.key])


def test_readding_a_key_replaces_its_value(signal_type: type[SignalType]) -> None:
    index: SignalIndex = signal_type.index_class()()
    first, second = list(signal_type.examples())[:2]
    index.add(7, first)
    index.add(7, second)
    assert len(index) == 1
    assert IndexHit(7, 0) in index.query(second, signal_type.default_threshold)
    if signal_type.distance(first, second) > signal_type.default_threshold:
        assert index.query(first, signal_type.default_threshold) == []


@pytest.mark.parametrize("value", NEVER_VALID, ids=repr)
def test_invalid_values_are_refused(signal_type: type[SignalType], value: str) -> None:
    with pytest.raises(InvalidSignalValue):
        signal_type.validate(value)


def test_file_hashers_say_what_they_read(signal_type: type[SignalType]) -> None:
    if not issubclass(signal_type, FileHasher):
        pytest.skip(f"{signal_type.name} does not hash files")
    from bastion.hashing.interfaces import MediaKind

    assert any(signal_type.accepts(kind) for kind in MediaKind)
