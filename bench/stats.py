"""What the bench scripts share: the nearest-rank percentile they report latencies with."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The value below which a share ``q`` (0 to 1) of ``values`` lies, nearest rank; ``values`` must not be empty."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
