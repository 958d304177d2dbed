"""A lookup budget per credential: how many bank lookups one token or console user may make per minute.

Matching answers with a distance, so a caller who can ask without limit can walk a query towards a banked hash one
bit at a time and recover the bank (a leaked bank lets offenders test their material before uploading it). The
budget does not make that impossible for banks a caller may see, but it makes it slow and loud: every lookup is
audited as well, so a burst from one credential stands out.

A token bucket per credential: ``per_minute`` lookups in a burst, refilled evenly over the minute. It lives in the
process, so with several replicas behind a balancer each gives the full budget (size it per replica); 0 turns the
budget off.

Don't: key the bucket on anything the caller chooses (a header, an address behind a proxy); the credential is the
one thing they cannot vary for free.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Spent:
    """A refused lookup: the budget is spent until ``retry_after`` seconds (a whole number, at least 1) from now."""

    retry_after: int


class LookupBudget:
    """Thread-safe token buckets, one per credential (``Principal.actor``)."""

    #: Buckets untouched this long are full again and forgotten, so memory follows active credentials only.
    _IDLE_SECONDS = 120.0

    def __init__(self, per_minute: int, *, now: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 0:
            raise ValueError(f"BASTION_MATCH_RATE_PER_MINUTE must be 0 (no limit) or more, got {per_minute}")
        self.per_minute = per_minute
        self._now = now
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # actor -> (tokens left, when last counted)

    def take(self, actor: str) -> Spent | None:
        """Spend one lookup for ``actor``; ``None`` when allowed, else how long until the next one is."""
        if self.per_minute == 0:
            return None
        rate = self.per_minute / 60.0
        with self._lock:
            now = self._now()
            tokens, then = self._buckets.get(actor, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - then) * rate)
            if tokens >= 1.0:
                self._buckets[actor] = (tokens - 1.0, now)
                self._forget_idle(now)
                return None
            self._buckets[actor] = (tokens, now)
            return Spent(max(1, math.ceil((1.0 - tokens) / rate)))

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) > 1024:
            self._buckets = {a: b for a, b in self._buckets.items() if now - b[1] < self._IDLE_SECONDS}
