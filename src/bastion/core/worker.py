"""The one background loop: the outbox, the orders' and reports' clocks, the hub's housekeeping and the matcher's
refresher all run on it, so they start, stop and fail the same way, and say the same way on ``/status`` how their
rounds go (``Rounds``)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger(__name__)

#: How long ``stop`` waits for a round in progress to finish; one number for every worker.
STOP_TIMEOUT_SECONDS = 30.0
#: A worker whose rounds have all failed for this long (two rounds at least) is failing, and ``/status`` says the
#: app is degraded. Counted in time, not rounds: the matcher's refresher runs four rounds a second and the previews'
#: pruning one an hour. A database restarting fails a few seconds of rounds and is mended by the next good one.
FAILING_SECONDS = 30.0


@dataclass(frozen=True)
class Rounds:
    """How a worker's rounds have gone since it was built: for ``/status``, where a removal-order clock or the
    grooming watch that fails every round would otherwise show only in the server's log. ``last_error`` is the
    exception's type alone: its message may hold an address, a statement's parameters or a secret."""

    name: str
    failures: int = 0
    failures_in_a_row: int = 0
    last_error: str = ""
    #: When the first of the failures in a row came (``None`` while the last round was good).
    failing_since: float | None = None
    last_failed_at: float | None = None
    last_ok_at: float | None = None

    @property
    def failing(self) -> bool:
        return (self.failing_since is not None and self.failures_in_a_row >= 2
                and time.time() - self.failing_since >= FAILING_SECONDS)

    def ok(self) -> Rounds:
        return replace(self, failures_in_a_row=0, failing_since=None, last_ok_at=time.time())

    def failed(self, exc: Exception) -> Rounds:
        now = time.time()
        return replace(self, failures=self.failures + 1, failures_in_a_row=self.failures_in_a_row + 1,
                       last_error=type(exc).__name__, failing_since=self.failing_since or now, last_failed_at=now)

    def as_status(self) -> dict[str, Any]:
        """The fields ``/status`` shows admins (times in UTC, ISO 8601; ``None``: not yet)."""
        return {"failing": self.failing, "failures": self.failures, "failures_in_a_row": self.failures_in_a_row,
                "last_error": self.last_error or None, "failing_since": _iso(self.failing_since),
                "last_failed_at": _iso(self.last_failed_at), "last_ok_at": _iso(self.last_ok_at)}


def _iso(when: float | None) -> str | None:
    return None if when is None else dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")


class Worker:
    """Runs ``run`` on a daemon thread, then waits ``interval`` seconds, until ``stop``.

    A round that returns ``True`` says more work is waiting (a full batch), so the next round starts at once. An
    exception is logged, counted in ``rounds`` and handed to ``on_error``, never fatal: the next round runs after
    the interval.
    """

    def __init__(self, run: Callable[[], object], interval: float, name: str, *,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        self._run = run
        self.interval = interval
        self.name = name
        self._on_error = on_error
        #: Replaced whole after each round (one assignment), so a reader on another thread never sees half of one.
        self.rounds = Rounds(name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = STOP_TIMEOUT_SECONDS) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            more = False
            try:
                more = self._run() is True
                self.rounds = self.rounds.ok()
            except Exception as exc:
                log.exception("%s round failed", self.name)
                self.rounds = self.rounds.failed(exc)
                if self._on_error is not None:
                    self._on_error(exc)
            if not more:
                self._stop.wait(self.interval)
