"""A readers-writer lock: many readers at once, or one writer; writers go first once they wait.

Matching holds it as a reader for a whole lookup, so lookups from several threads run together (the PDQ kernel
releases the GIL while it searches) while the change-log refresher, a writer, still never changes an index under
a reader that cannot take it. Writers are preferred so that a steady stream of lookups cannot starve refreshes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RWLock"]


class RWLock:
    """Not reentrant for writers; a reader may not upgrade to a writer."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()

    @property
    def readers(self) -> int:
        """Readers inside now (for tests and /status)."""
        with self._cond:
            return self._readers
