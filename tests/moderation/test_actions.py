"""``actions.held_by_others``: which limits another path holds, so that a lift by the path that applied them (a
fact-checker's correction) never undoes a moderator's, an appeal's or the policy's. Pure: tested as a table."""

from __future__ import annotations

import pytest

from bastion.moderation.actions import held_by_others
from bastion.moderation.events import EventKind
from bastion.moderation.models import ModerationEvent


def _applied(actor: str, *actions: str) -> ModerationEvent:
    return ModerationEvent(kind=EventKind.ACTIONS_APPLIED.value, actor=actor,
                           data={"actions": list(actions), "status": "restricted"})


def _event(kind: EventKind, actor: str = "mod:1", **data: object) -> ModerationEvent:
    return ModerationEvent(kind=kind.value, actor=actor, data=data)


FC, MOD = "factcheck:checkers-eu", "token:7:mona"
TABLE: list[tuple[str, list[ModerationEvent], set[str]]] = [
    ("nothing applied", [], set()),
    ("the path's own limits", [_applied(FC, "label", "demote"), _applied("factcheck:other", "not_recommended")],
     set()),
    ("a moderator's limit", [_applied(MOD, "not_recommended", "strike"), _applied(FC, "label")],
     {"not_recommended", "strike"}),
    ("the policy at upload", [_applied("policy:borderline", "not_recommended")], {"not_recommended"}),
    ("reinstated: forgotten", [_applied(MOD, "remove"), _event(EventKind.REINSTATED, appeal_id=1),
                               _applied(FC, "label")], set()),
    ("appeal partly reversed: what remains stands", [
        _applied(FC, "label", "demote"),
        _event(EventKind.PARTLY_REINSTATED, appeal_id=1, lifted=["demote"], standing=["label"], status="restricted",
               restrictions=["label"])], {"label"}),
    ("appeal partly reversed: what it lifted is forgotten", [
        _applied(MOD, "remove", "not_recommended"),
        _event(EventKind.PARTLY_REINSTATED, appeal_id=1, lifted=["remove"], standing=["not_recommended"],
               status="restricted", restrictions=["not_recommended"])], {"not_recommended"}),
    ("a lift forgets what it lifted", [
        _applied(MOD, "label"),
        _event(EventKind.RESTRICTIONS_LIFTED, actor="other:x", lifted=["label"], status="published")], set()),
]


@pytest.mark.parametrize(("events", "held"), [(e, h) for _, e, h in TABLE], ids=[name for name, _, _ in TABLE])
def test_held_by_others(events: list[ModerationEvent], held: set[str]) -> None:
    assert held_by_others(events, "factcheck:") == held
