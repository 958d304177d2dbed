"""Extensions activated for the length of a test, and the process put back as it was afterwards."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bastion.core import extensions


@contextmanager
def using_extensions(names: Sequence[str], *, entry_points: bool = True) -> Iterator[tuple[extensions.Loaded, ...]]:
    """Activate ``names`` (as ``BASTION_EXTENSIONS`` would) inside the block; then the set in force before it."""
    before = extensions.activated()
    try:
        yield extensions.activate(names, entry_points=entry_points)
    finally:
        if before is None:
            extensions.reset()
        else:
            extensions.activate(before[0], entry_points=before[1])
