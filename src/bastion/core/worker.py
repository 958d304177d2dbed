"""A function run on a timer in a daemon thread: the clocks of orders, reports and the hub's housekeeping."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

class ClockWorker:
    """Runs a tick function every ``interval`` seconds on a daemon thread; an error is logged, never fatal."""

    def __init__(self, run: Callable[[], object], interval: float, name: str) -> None:
        self._run = run
        self.interval = interval
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._run()
            except Exception:
                log.exception("%s round failed", self._name)
            self._stop.wait(self.interval)
