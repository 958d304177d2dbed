"""Parents' limits only tighten: the check against the band's defaults, as a table, and the link's transitions."""

from __future__ import annotations

import pytest

from bastion.minors.events import InvalidLinkTransition, LinkChange, LinkState, next_link_state
from bastion.minors.family import Limits, loosening
from bastion.minors.interfaces import Audience, Band
from bastion.minors.rules import DEFAULT_RULES_PATH, load_rules

TEEN_16 = load_rules(DEFAULT_RULES_PATH).defaults_for(Band.B16_17)  # dm friends, comments followers, 60 min, 22-08


@pytest.mark.parametrize(("limits", "refused"), [
    (Limits(dm=Audience.NOBODY, comments=Audience.FRIENDS), []),
    (Limits(dm=Audience.EVERYONE), ["dm = everyone is looser than the teen's default (friends)"]),
    (Limits(comments=Audience.EVERYONE), ["comments = everyone is looser than the teen's default (followers)"]),
    (Limits(screen_time_minutes=30), []),
    (Limits(screen_time_minutes=90), ["screen_time_minutes = 90 is more than the default (60)"]),
    (Limits(quiet_hours="20:00-09:00"), []),
    (Limits(quiet_hours="23:00-07:00"), ["quiet_hours = 23:00-07:00 does not cover the default (22:00-08:00)"]),
    (Limits(discoverable=True), ["discoverable = true is looser than the teen's default (not discoverable)"]),
    (Limits(restricted_mode=True, search=False), []),
])
def test_limits_only_tighten(limits: Limits, refused: list[str]) -> None:
    assert loosening(limits, TEEN_16) == refused


@pytest.mark.parametrize(("state", "change", "result"), [
    (LinkState.PENDING, LinkChange.CONFIRM, LinkState.LINKED),
    (LinkState.LINKED, LinkChange.SET_LIMITS, LinkState.LINKED),
    (LinkState.LINKED, LinkChange.UNLINK, LinkState.UNLINKED),
    (LinkState.PENDING, LinkChange.UNLINK, LinkState.UNLINKED),
    (LinkState.PENDING, LinkChange.SET_LIMITS, None),
    (LinkState.UNLINKED, LinkChange.CONFIRM, None),
    (LinkState.UNLINKED, LinkChange.UNLINK, None),
])
def test_link_transitions(state: LinkState, change: LinkChange, result: LinkState | None) -> None:
    if result is None:
        with pytest.raises(InvalidLinkTransition):
            next_link_state(state, change)
    else:
        assert next_link_state(state, change) is result
