"""A message's delivery as data: what a deliverer holds (``Claim``), what a send achieved (``SendResult``), and the
one pure function that moves a message's state (``next_delivery``), tested as a table.

The outbox's queries (``claim_due``, ``record_outcome``, the release of an unsent claim) ask ``next_delivery`` where a
step leaves a message and guard their update with ``sources``, so the rules live here and nowhere else:

    pending ──claim──▶ delivering ──delivered──▶ delivered
       ▲                  │ │ └──refused, or failed on the last attempt──▶ dead
       └──failed, release─┘ └──(lease expired) claim on the last attempt──▶ dead
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from bastion.core.outbox.models import DeliveryState

#: 4xx answers that mean "try again later" rather than "this request is wrong".
RETRYABLE_4XX = frozenset({408, 425, 429})
MAX_ERROR_CHARS = 200


def is_permanent_status(status: int | None) -> bool:
    """A 4xx other than 408/425/429: sending the same request again cannot succeed."""
    return status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX


def short_error(text: str) -> str:
    """One line, at most ``MAX_ERROR_CHARS``: ``last_error`` is a hint for operators, not a log."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class Claim:
    """A leased message, detached from any session so it can travel to a sender with no transaction open."""

    id: int
    kind: str
    destination: str
    payload: dict[str, Any]
    idempotency_key: str
    #: The number of this attempt (1 for the first); also the fencing token ``record_outcome`` checks.
    attempts: int
    locked_until: dt.datetime


@dataclass(frozen=True)
class SendResult:
    """What a sender saw. ``permanent`` means retrying the same request cannot help."""

    ok: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False

    @classmethod
    def delivered(cls, status: int | None = None) -> SendResult:
        return cls(ok=True, status=status)

    @classmethod
    def retry(cls, error: str, status: int | None = None) -> SendResult:
        return cls(ok=False, status=status, error=error)

    @classmethod
    def give_up(cls, error: str, status: int | None = None) -> SendResult:
        return cls(ok=False, status=status, error=error, permanent=True)


class Step(enum.StrEnum):
    """What can happen to a message."""

    CLAIM = "claim"  # a deliverer leases it: pending and due, or delivering with its deliverer's lease expired
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # a failure worth retrying (network, 5xx, 408/425/429, a sender's exception)
    REFUSED = "refused"  # a failure no retry mends (another 4xx, a bad URL, a sender's give_up)
    RELEASE = "release"  # handed back unsent: its lease was nearly over


class InvalidDelivery(ValueError):
    """A step that cannot happen to a message in that state (a stale deliverer's write, say)."""


_PENDING, _DELIVERING = DeliveryState.PENDING, DeliveryState.DELIVERING
#: The states each step may start from. A success is a fact and is written even when the lease has passed to another
#: deliverer (the message is still pending or delivering); a failure only while this deliverer holds the message.
_SOURCES: dict[Step, frozenset[DeliveryState]] = {
    Step.CLAIM: frozenset({_PENDING, _DELIVERING}),
    Step.DELIVERED: frozenset({_PENDING, _DELIVERING}),
    Step.FAILED: frozenset({_DELIVERING}),
    Step.REFUSED: frozenset({_DELIVERING}),
    Step.RELEASE: frozenset({_DELIVERING}),
}


def sources(step: Step) -> frozenset[DeliveryState]:
    """The states ``step`` may start from, for the guard of the update that writes it."""
    return _SOURCES[step]


def next_delivery(state: DeliveryState, step: Step, *, attempts: int, max_attempts: int) -> DeliveryState:
    """Where ``step`` leaves a message in ``state`` that has made ``attempts`` attempts (counting the one in hand).

    Attempts are counted at the claim, so a message that kills its deliverer every time still runs out: a claim
    finding ``max_attempts`` already made ends it instead of starting another.
    """
    if state not in _SOURCES[step]:
        raise InvalidDelivery(f"cannot {step.value} a message that is {state.value}")
    out_of_attempts = attempts >= max_attempts
    if step is Step.CLAIM:
        return DeliveryState.DEAD if out_of_attempts else DeliveryState.DELIVERING
    if step is Step.DELIVERED:
        return DeliveryState.DELIVERED
    if step is Step.FAILED:
        return DeliveryState.DEAD if out_of_attempts else DeliveryState.PENDING
    if step is Step.REFUSED:
        return DeliveryState.DEAD
    return DeliveryState.PENDING  # Step.RELEASE


def step_for(result: SendResult) -> Step:
    """The step a send's result is: delivered, refused (no retry can help) or failed (worth another try)."""
    if result.ok:
        return Step.DELIVERED
    if result.permanent or is_permanent_status(result.status):
        return Step.REFUSED
    return Step.FAILED
