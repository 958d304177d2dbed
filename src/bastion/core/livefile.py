"""A configuration file re-read when it changes on disk (the moderation policy, the minors' rules), so edits take
effect without a restart.

An edit that does not load is refused: the last good value stays in force and ``error`` says why, so a typo never
leaves the platform without its rules. The first load must succeed (it raises the loader's error).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class LiveFile(Generic[T]):
    """``load(path)`` once now, then again whenever the file's size or modification time changes (looked at once per
    ``check_every`` seconds at most: callers read it on every request, the disk need not be)."""

    def __init__(self, path: Path | str, load: Callable[[Path], T], refused: type[Exception], *,
                 check_every: float = 1.0) -> None:
        self.path = Path(path)
        self.error: str | None = None
        self.check_every = check_every
        self._load, self._refused = load, refused
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._checked = time.monotonic()
        self._value = load(self.path)

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    @property
    def current(self) -> T:
        """The value in force, re-read first if the file changed."""
        if time.monotonic() - self._checked >= self.check_every:
            self.reload()
        return self._value

    def reload(self, force: bool = False) -> bool:
        """Re-read the file if it changed (or ``force``); True when a different value took effect."""
        stamp = self._stat()
        self._checked = time.monotonic()
        with self._lock:
            if stamp == self._stamp and not force:
                return False
            self._stamp = stamp
            try:
                value = self._load(self.path)
            except self._refused as exc:
                self.error = str(exc)
                return False
            self.error = None
            changed = self._differs(value, self._value)
            self._value = value
            return changed

    def _differs(self, new: T, old: T) -> bool:
        return new != old
