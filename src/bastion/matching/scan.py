"""Scan files on disk against the banks: the CLI's ``bastion scan`` and the demo share this."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bastion.hashing.services import FileSignals, hash_path, signal_json
from bastion.matching.matcher import Match, Matcher, queries_for


@dataclass
class FileResult:
    path: Path
    signals: FileSignals | None
    matches: list[Match]
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "kind": self.signals.kind.value if self.signals else None,
            "signals": [signal_json(s) for s in self.signals.signals] if self.signals else [],
            "matches": [m.to_json() for m in self.matches],
            "error": self.error,
        }


@dataclass
class ScanSummary:
    files: int = 0
    matched: int = 0
    unreadable: int = 0
    by_bank: dict[str, int] = field(default_factory=dict)

    def add(self, result: FileResult) -> None:
        self.files += 1
        if result.error is not None:
            self.unreadable += 1
        if result.matches:
            self.matched += 1
            for bank in {m.bank for m in result.matches}:
                self.by_bank[bank] = self.by_bank.get(bank, 0) + 1


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Every regular file under the paths, in a stable order; symbolic links are not followed."""
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def scan_file(path: Path, matcher: Matcher, banks: set[str] | None = None) -> FileResult:
    try:
        signals = hash_path(path, variants=matcher.wants_variants())
    except OSError as exc:
        return FileResult(path, None, [], f"{type(exc).__name__}: {exc.strerror or exc}")
    queries = queries_for(signals)
    error = "; ".join(signals.errors) if signals.errors else None
    return FileResult(path, signals, matcher.match(queries, banks), error)


def scan_files(files: Iterable[Path], matcher: Matcher, *, banks: set[str] | None = None,
               on_file: Callable[[FileResult], object] | None = None) -> ScanSummary:
    summary = ScanSummary()
    for path in files:
        result = scan_file(path, matcher, banks)
        summary.add(result)
        if on_file:
            on_file(result)
    return summary
