"""A statement's submission as data: its states, the steps that move it, and the one pure function that moves it.

    queued ──claim──▶ sending ──accepted / existing──▶ accepted
      ▲                 │ └──refused (its own errors)──▶ rejected
      └──failed, requeue┘   (an expired lease is claimed again)

``existing`` (the database already holds the ``puid``) is an acceptance: a statement sent, then lost to a crash
before its answer was written, is recognised on the next try and never doubled. A batch refused only because of
other statements' errors puts the rest back without counting an attempt (``requeue``).
"""

from __future__ import annotations

import enum

from pydantic import BaseModel


class SubmissionState(enum.StrEnum):
    """Values are storage keys: never rename them."""

    QUEUED = "queued"  # waiting for next_attempt_at
    SENDING = "sending"  # leased by a deliverer until locked_until; claimable again after that (it crashed)
    ACCEPTED = "accepted"  # the database holds it (answered 201, or ``existing``)
    REJECTED = "rejected"  # the database (or the same rules checked here) refused it; errors kept, a person looks


class Step(enum.StrEnum):
    CLAIM = "claim"
    ACCEPTED = "accepted"
    EXISTING = "existing"
    REJECTED = "rejected"
    FAILED = "failed"  # network, 5xx, 429, auth: the same request may succeed later
    REQUEUE = "requeue"  # handed back unsent or refused for another statement's errors: due again at once


class InvalidStep(ValueError):
    """A step that cannot happen to a statement in that state (a stale deliverer's write, say)."""


_Q, _S = SubmissionState.QUEUED, SubmissionState.SENDING
#: The states each step may start from. An acceptance is a fact and is written even after the lease has passed on.
_SOURCES: dict[Step, frozenset[SubmissionState]] = {
    Step.CLAIM: frozenset({_Q, _S}),
    Step.ACCEPTED: frozenset({_Q, _S}),
    Step.EXISTING: frozenset({_Q, _S}),
    Step.REJECTED: frozenset({_S}),
    Step.FAILED: frozenset({_S}),
    Step.REQUEUE: frozenset({_S}),
}
_TARGET: dict[Step, SubmissionState] = {
    Step.CLAIM: _S, Step.ACCEPTED: SubmissionState.ACCEPTED, Step.EXISTING: SubmissionState.ACCEPTED,
    Step.REJECTED: SubmissionState.REJECTED, Step.FAILED: _Q, Step.REQUEUE: _Q,
}


def sources(step: Step) -> frozenset[SubmissionState]:
    """The states ``step`` may start from, for the guard of the update that writes it."""
    return _SOURCES[step]


def next_state(state: SubmissionState, step: Step) -> SubmissionState:
    """Where ``step`` leaves a statement in ``state``; refuses a step that cannot happen there."""
    if state not in _SOURCES[step]:
        raise InvalidStep(f"cannot {step.value} a statement that is {state.value}")
    return _TARGET[step]


class SorEventKind(enum.StrEnum):
    """Kinds of ``sor_events``: values are storage keys, never renamed; retired ones stay reserved."""

    QUEUED = "sor.queued"
    ACCEPTED = "sor.accepted"
    EXISTING = "sor.existing"
    REJECTED = "sor.rejected"


class Queued(BaseModel):
    """Written by the backfill only: a statement queued with its decision has moderation's ``statement.issued``."""

    #: ``backfill``.
    via: str


class Accepted(BaseModel):
    uuid: str


class Rejected(BaseModel):
    errors: dict[str, list[str]]
