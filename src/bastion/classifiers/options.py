"""Reading one ``[[classifiers]]`` entry: typed look-ups whose errors name the entry and the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bastion.classifiers.interfaces import SCORE_NAME, Accepts, ClassifierError


class Options:
    """The fields of one entry. ``done()`` refuses the fields nobody read, so a typo is an error, not a no-op."""

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.entry = entry
        name = entry.get("name")
        self.label = f"classifier {name!r}" if isinstance(name, str) else f"a {entry.get('kind')} classifier"
        self._read = {"kind", "name"}

    def error(self, key: str, message: str) -> ClassifierError:
        return ClassifierError(f"{self.label}: {key}: {message}")

    def _get(self, key: str) -> Any:
        self._read.add(key)
        return self.entry.get(key)

    def text(self, key: str, default: str | None = None) -> str:
        value = self._get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "a non-empty string is required")
        return value.strip()

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise self.error(key, f"a number between {low:g} and {high:g} is required")
        return float(value)

    def score_name(self, key: str, default: str | None = None) -> str:
        value = self.text(key, default)
        if not SCORE_NAME.match(value):
            raise self.error(key, f"{value!r}: score names are 1-64 of letters, digits, _, ., : and -")
        return value

    def score_names(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(key, "a non-empty list of score names is required")
        bad = [v for v in value if not SCORE_NAME.match(v)]
        if bad:
            raise self.error(key, f"{bad[0]!r}: score names are 1-64 of letters, digits, _, ., : and -")
        if len(set(value)) != len(value):
            raise self.error(key, "a score name is listed twice")
        return tuple(value)

    def accepts(self, key: str, default: Sequence[Accepts]) -> frozenset[Accepts]:
        value = self._get(key)
        if value is None:
            return frozenset(default)
        known = ", ".join(a.value for a in Accepts)
        if not isinstance(value, list) or not value:
            raise self.error(key, f"a non-empty list of {known} is required")
        try:
            return frozenset(Accepts(v) for v in value)
        except ValueError:
            raise self.error(key, f"{value!r}: each must be one of {known}") from None

    def done(self) -> None:
        unknown = sorted(set(self.entry) - self._read)
        if unknown:
            raise ClassifierError(f"{self.label}: unknown field {unknown[0]!r}")
