from __future__ import annotations

import datetime as dt

import pytest

from bastion.moderation import statements
from bastion.moderation.events import (
    Change,
    ContentStatus,
    InvalidTransition,
    change_after_partial_reversal,
    change_for_actions,
    next_status,
)
from bastion.moderation.policy import Action, Category

P, H, B, R, X = (ContentStatus.PUBLISHED, ContentStatus.HELD, ContentStatus.BLOCKED, ContentStatus.REMOVED,
                 ContentStatus.RESTRICTED)
# Every (status, change) pair: the resulting status, or None where the change is refused.
TABLE: list[tuple[ContentStatus | None, Change, ContentStatus | None]] = [
    (None, Change.ALLOW, P), (None, Change.HOLD, H), (None, Change.BLOCK, B), (None, Change.PUBLISH_LIMITED, X),
    *[(None, c, None) for c in (Change.REMOVE, Change.RESTRICT, Change.CLEAR, Change.REINSTATE,
                                Change.REINSTATE_LIMITED, Change.LIFT)],
    *[(s, Change.REMOVE, R) for s in (P, H, X)], *[(s, Change.REMOVE, None) for s in (B, R)],
    *[(s, Change.RESTRICT, X) for s in (P, H, X)], *[(s, Change.RESTRICT, None) for s in (B, R)],
    *[(s, Change.CLEAR, P) for s in (P, H, X)], *[(s, Change.CLEAR, None) for s in (B, R)],
    *[(s, Change.REINSTATE, P) for s in (B, R, X)], *[(s, Change.REINSTATE, None) for s in (P, H)],
    *[(s, Change.REINSTATE_LIMITED, X) for s in (B, R, X)], *[(s, Change.REINSTATE_LIMITED, None) for s in (P, H)],
    (X, Change.LIFT, P), *[(s, Change.LIFT, None) for s in (P, H, B, R)],  # a lift never publishes held content
    *[(s, c, None) for s in (P, H, B, R, X)
      for c in (Change.ALLOW, Change.HOLD, Change.BLOCK, Change.PUBLISH_LIMITED)],
]


@pytest.mark.parametrize(("status", "change", "expected"), TABLE)
def test_transition_table(status: ContentStatus | None, change: Change, expected: ContentStatus | None) -> None:
    if expected is None:
        with pytest.raises(InvalidTransition):
            next_status(status, change)
    else:
        assert next_status(status, change) is expected


def test_table_is_complete() -> None:
    assert {(s, c) for s, c, _ in TABLE} == {(s, c) for s in (None, *ContentStatus) for c in Change}


@pytest.mark.parametrize(("actions", "change"), [
    ([Action.REMOVE, Action.LABEL], Change.REMOVE),
    ([Action.AGE_RESTRICT], Change.RESTRICT),
    ([Action.DISABLE_IN_TERRITORIES, Action.STRIKE], Change.RESTRICT),
    ([Action.STRIKE], None),  # account-only: the content is left as it is
    ([Action.SUSPEND_TEMPORARILY, Action.STRIKE], None),
])
def test_change_for_actions(actions: list[Action], change: Change | None) -> None:
    assert change_for_actions(actions) is change


@pytest.mark.parametrize(("standing", "change"), [
    ([Action.REMOVE], None),  # a removal stands: the content stays down (a limit or account action was lifted)
    ([Action.REMOVE, Action.STRIKE], None),
    ([Action.NOT_RECOMMENDED], Change.REINSTATE_LIMITED),  # the removal lifted, kept out of recommendations
    ([Action.AGE_RESTRICT, Action.STRIKE], Change.REINSTATE_LIMITED),
    ([Action.STRIKE], Change.REINSTATE),  # only the account's strike stands: the content back whole
])
def test_change_after_partial_reversal(standing: list[Action], change: Change | None) -> None:
    assert change_after_partial_reversal(standing) is change


@pytest.mark.parametrize("category", list(Category))
def test_every_category_makes_a_valid_statement(category: Category) -> None:
    body = statements.build(puid=statements.new_puid(), category=category, actions=[Action.REMOVE],
                            content_type="video", content_date=dt.date(2026, 1, 2),
                            decided_at=dt.datetime(2026, 1, 3, tzinfo=dt.UTC), facts="matched a known hash",
                            source_type=statements.Source.OWN_INITIATIVE, automated_detection=True,
                            automated_decision=True)
    assert statements.problems(body) == []


def test_statement_problems_are_named() -> None:
    body = statements.build(puid="bad puid!", category=Category.HATE_SPEECH, actions=[Action.STRIKE],
                            content_type="video", content_date=dt.date(1999, 1, 1),
                            decided_at=dt.datetime(2026, 1, 3, tzinfo=dt.UTC), facts="x",
                            source_type=statements.Source.NOTICE, automated_detection=False,
                            automated_decision=False)
    assert statements.problems(body) == [
        "one of decision_visibility, decision_monetary, decision_provision, decision_account is required",
        "puid must be 1-500 characters of letters, digits, - and _",
        "content_date must be on or after 2000-01-01",
    ]
