"""The hub's order states move through one pure function, tested as a table over every (state, change) pair; every
event kind has exactly one payload model."""

from __future__ import annotations

import pytest

from bastion.hub import events
from bastion.hub.events import HubChange, HubEventKind, HubState, InvalidHubTransition, next_state

Q, D, E, U, L, N, F = (HubState.QUEUED, HubState.DELIVERED, HubState.EXECUTED, HubState.UNABLE, HubState.LINKED,
                       HubState.ENDED, HubState.FAILED)
ALL = (Q, D, E, U, L, N, F)


def _others(*states: HubState) -> list[HubState]:
    return [s for s in ALL if s not in states]


# Every (state, change) pair: the resulting state (the state itself: a repeat or a late step, nothing is done), or
# None where the change is refused (409).
TABLE: list[tuple[HubState | None, HubChange, HubState | None]] = [
    (None, HubChange.ISSUE, Q), *[(s, HubChange.ISSUE, s) for s in ALL],
    (Q, HubChange.LINK, L), *[(s, HubChange.LINK, None) for s in _others(Q)],
    (L, HubChange.UNLINK, Q), *[(s, HubChange.UNLINK, None) for s in _others(L)],
    (Q, HubChange.ACKNOWLEDGE, D), *[(s, HubChange.ACKNOWLEDGE, s) for s in _others(Q)],
    (Q, HubChange.FAIL, F), *[(s, HubChange.FAIL, s) for s in _others(Q)],
    *[(s, HubChange.FEEDBACK, E) for s in _others(N)], (N, HubChange.FEEDBACK, N),
    *[(s, HubChange.INABILITY, U) for s in _others(N, E)], (N, HubChange.INABILITY, N), (E, HubChange.INABILITY, E),
    (U, HubChange.CLARIFY, D), *[(s, HubChange.CLARIFY, None) for s in _others(U)],
    *[(s, HubChange.END, N) for s in _others(N)], (N, HubChange.END, N),
    *[(None, c, None) for c in HubChange if c is not HubChange.ISSUE],
]


@pytest.mark.parametrize(("state", "change", "expected"), TABLE)
def test_transition_table(state: HubState | None, change: HubChange, expected: HubState | None) -> None:
    if expected is None:
        with pytest.raises(InvalidHubTransition) as refused:
            next_state(state, change, reference="TCO-1")
        assert refused.value.status == 409 and "TCO-1" in str(refused.value)
    else:
        assert next_state(state, change) is expected


def test_table_is_complete() -> None:
    pairs = [(s, c) for s, c, _ in TABLE]
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == {(s, c) for s in (None, *HubState) for c in HubChange}


def test_a_clarification_is_refused_in_the_words_of_the_old_guard() -> None:
    with pytest.raises(InvalidHubTransition, match="order TCO-1 is delivered; only an unexecutable order is clarified"):
        next_state(D, HubChange.CLARIFY, reference="TCO-1")


def test_every_kind_has_one_payload_model() -> None:
    assert set(events.PAYLOADS) == set(HubEventKind)
    assert all(model.KIND is kind for kind, model in events.PAYLOADS.items())
