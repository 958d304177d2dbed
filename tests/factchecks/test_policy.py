"""The fact-check policy: the shipped file loads; every way a file could be wrong is refused when loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.factchecks import policy
from bastion.factchecks.events import Rating
from bastion.factchecks.interfaces import InvalidPolicy
from bastion.moderation.policy import Action, Category


def test_the_shipped_policy() -> None:
    loaded = policy.load()
    assert loaded.category is Category.DISINFORMATION
    assert {r: loaded.actions(r) for r in Rating} == {
        Rating.FALSE: [Action.LABEL, Action.DEMOTE, Action.NOT_RECOMMENDED],
        Rating.PARTLY_FALSE: [Action.LABEL, Action.DEMOTE], Rating.MISSING_CONTEXT: [Action.LABEL], Rating.TRUE: []}


GOOD = 'false = ["label"]\npartly_false = []\nmissing_context = []\ntrue = []\n'


@pytest.mark.parametrize(("text", "problem"), [
    ("[ratings]\n" + GOOD.replace('true = []\n', ''), "missing: true"),
    ("[ratings]\n" + GOOD + "mostly_false = []\n", "mostly_false"),
    ("[ratings]\n" + GOOD.replace('false = ["label"]', 'false = ["remove"]'), "not a reach limit"),
    ("[ratings]\n" + GOOD.replace('false = ["label"]', 'false = ["shadowban"]'), "shadowban"),
    ('category = "csam"\n[ratings]\n' + GOOD, "child sexual abuse material"),
    ('colour = "red"\n[ratings]\n' + GOOD, "colour"),
    ("[ratings\n", "policy.toml"),
])
def test_a_broken_policy_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(InvalidPolicy, match=problem):
        policy.load(path)
