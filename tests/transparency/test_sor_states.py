"""The submission's one transition function, as a table: every state against every step."""

from __future__ import annotations

import pytest

from bastion.transparency.sor_states import InvalidStep, Step, SubmissionState, next_state

Q, S, A, R = SubmissionState.QUEUED, SubmissionState.SENDING, SubmissionState.ACCEPTED, SubmissionState.REJECTED
TABLE: dict[tuple[SubmissionState, Step], SubmissionState | None] = {
    (Q, Step.CLAIM): S, (S, Step.CLAIM): S, (A, Step.CLAIM): None, (R, Step.CLAIM): None,
    # an acceptance is a fact: written even when the lease passed on and the statement is queued again
    (Q, Step.ACCEPTED): A, (S, Step.ACCEPTED): A, (A, Step.ACCEPTED): None, (R, Step.ACCEPTED): None,
    (Q, Step.EXISTING): A, (S, Step.EXISTING): A, (A, Step.EXISTING): None, (R, Step.EXISTING): None,
    (Q, Step.REJECTED): None, (S, Step.REJECTED): R, (A, Step.REJECTED): None, (R, Step.REJECTED): None,
    (Q, Step.FAILED): None, (S, Step.FAILED): Q, (A, Step.FAILED): None, (R, Step.FAILED): None,
    (Q, Step.REQUEUE): None, (S, Step.REQUEUE): Q, (A, Step.REQUEUE): None, (R, Step.REQUEUE): None,
}


def test_the_table_covers_every_state_and_step() -> None:
    assert set(TABLE) == {(state, step) for state in SubmissionState for step in Step}


@pytest.mark.parametrize(("state", "step"), sorted(TABLE))
def test_transition(state: SubmissionState, step: Step) -> None:
    expected = TABLE[(state, step)]
    if expected is None:
        with pytest.raises(InvalidStep):
            next_state(state, step)
    else:
        assert next_state(state, step) is expected
