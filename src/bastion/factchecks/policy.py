"""The fact-check policy: which restrictions each rating leads to, as data (``policy.toml``), validated on load.

Refused when loaded: a rating the file does not list or one Bastion does not know, an action that is not a reach
limit (removal stays a moderator's or an order's decision), and child sexual abuse material as the category.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bastion.factchecks.events import Rating
from bastion.factchecks.interfaces import InvalidPolicy
from bastion.moderation.actions import REACH_ACTIONS
from bastion.moderation.policy import Action, Category

DEFAULT_FACTCHECK_POLICY_PATH = Path(__file__).with_name("policy.toml")


class FactcheckPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: Category = Category.DISINFORMATION
    ratings: dict[Rating, list[Action]]

    @field_validator("category")
    @classmethod
    def _not_csam(cls, value: Category) -> Category:
        if value is Category.CSAM:
            raise ValueError("a fact-check rating never makes content child sexual abuse material")
        return value

    @field_validator("ratings")
    @classmethod
    def _every_rating_reach_only(cls, value: dict[Rating, list[Action]]) -> dict[Rating, list[Action]]:
        missing = sorted(r.value for r in Rating if r not in value)
        if missing:
            raise ValueError(f"every rating needs its actions (missing: {', '.join(missing)})")
        for rating, actions in value.items():
            wrong = sorted(a.value for a in actions if a not in REACH_ACTIONS)
            if wrong:
                raise ValueError(f"{rating.value}: {', '.join(wrong)} is not a reach limit "
                                 f"({', '.join(sorted(a.value for a in REACH_ACTIONS))})")
        return value

    def actions(self, rating: Rating) -> list[Action]:
        return list(self.ratings[rating])


def load(path: Path = DEFAULT_FACTCHECK_POLICY_PATH) -> FactcheckPolicy:
    """The policy in ``path``; raises ``InvalidPolicy`` with every problem, so a broken file refuses the start."""
    try:
        return FactcheckPolicy.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidPolicy(f"{path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             + (f" (got {e['input']!r})" if isinstance(e["input"], str) else "")
                             for e in exc.errors())
        raise InvalidPolicy(f"{path}: {problems}") from None
