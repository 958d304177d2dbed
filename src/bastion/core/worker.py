"""The one background loop: the outbox, the orders' and reports' clocks, the hub's housekeeping and the matcher's
refresher all run on it, so they start, stop and fail the same way."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: How long ``stop`` waits for a round in progress to finish; one number for every worker.
STOP_TIMEOUT_SECONDS = 30.0


class Worker:
    """Runs ``run`` on a daemon thread, then waits ``interval`` seconds, until ``stop``.

    A round that returns ``True`` says more work is waiting (a full batch), so the next round starts at once. An
    exception is logged and handed to ``on_error`` (for /status), never fatal: the next round runs after the interval.
    """

    def __init__(self, run: Callable[[], object], interval: float, name: str, *,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        self._run = run
        self.interval = interval
        self.name = name
        self._on_error = on_error
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
            except Exception as exc:
                log.exception("%s round failed", self.name)
                if self._on_error is not None:
                    self._on_error(exc)
            if not more:
                self._stop.wait(self.interval)
