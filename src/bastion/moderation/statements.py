"""Statements of reasons (DSA Art. 17), in the Transparency Database's own fields (Art. 24(5)).

The same facts go to the uploader and, without personal data, to the Commission's database; building them in one
place keeps the two from drifting. ``problems`` checks a statement against the database's rules before it is sent.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from bastion.moderation.policy import Action, Category

_PUID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")


@dataclass(frozen=True)
class Ground:
    """How a category is reported: illegal content (with its law) or incompatible with the terms of service."""

    statement_category: str
    keyword: str | None
    illegal_ground: str | None  # None: incompatible with the terms of service


GROUNDS: dict[Category, Ground] = {
    Category.TERRORIST_CONTENT: Ground("STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY", "KEYWORD_TERRORIST_CONTENT",
                                       "Regulation (EU) 2021/784 on terrorist content online; Directive (EU) 2017/541"),
    Category.CSAM: Ground("STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL",
                          "Directive 2011/93/EU on combating the sexual abuse of children, Art. 5"),
    Category.VIOLENT_EXTREMISM: Ground("STATEMENT_CATEGORY_VIOLENCE", None, None),
    Category.HATE_SPEECH: Ground("STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH", None, None),
    Category.DISINFORMATION: Ground("STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS", None, None),
    Category.BORDERLINE: Ground("STATEMENT_CATEGORY_OTHER_VIOLATION_TC", None, None),
}

VISIBILITY: dict[Action, str] = {
    Action.REMOVE: "DECISION_VISIBILITY_CONTENT_REMOVED",
    Action.DISABLE_IN_TERRITORIES: "DECISION_VISIBILITY_CONTENT_DISABLED",
    Action.AGE_RESTRICT: "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    Action.DEMOTE: "DECISION_VISIBILITY_CONTENT_DEMOTED",
    Action.NOT_RECOMMENDED: "DECISION_VISIBILITY_CONTENT_DEMOTED",
    Action.LABEL: "DECISION_VISIBILITY_CONTENT_LABELLED",
}
ACCOUNT: dict[Action, str] = {
    Action.SUSPEND_TEMPORARILY: "DECISION_ACCOUNT_SUSPENDED",
    Action.SUSPEND_PERMANENTLY: "DECISION_ACCOUNT_TERMINATED",
}
CONTENT_TYPES = {"image": "CONTENT_TYPE_IMAGE", "video": "CONTENT_TYPE_VIDEO", "text": "CONTENT_TYPE_TEXT"}


class Source:
    """``source_type`` values: who brought the content to the platform's attention."""

    OWN_INITIATIVE = "SOURCE_VOLUNTARY"
    NOTICE = "SOURCE_ARTICLE_16"
    TRUSTED_FLAGGER = "SOURCE_TRUSTED_FLAGGER"
    #: Neither a notice nor own initiative: an authority's order, a fact-checking partner's rating.
    OTHER_NOTIFICATION = "SOURCE_TYPE_OTHER_NOTIFICATION"


def new_puid() -> str:
    return f"sor-{uuid.uuid4().hex}"


def build(
    *,
    puid: str,
    category: Category,
    actions: Iterable[Action],
    content_type: str,
    content_date: dt.date,
    decided_at: dt.datetime,
    facts: str,
    source_type: str,
    automated_detection: bool,
    automated_decision: bool,
    territories: Iterable[str] = (),
) -> dict[str, object]:
    """One statement in the Transparency Database's fields; never holds the uploader's identity."""
    ground = GROUNDS[category]
    chosen = list(dict.fromkeys(actions))
    body: dict[str, object] = {
        "puid": puid,
        "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT" if ground.illegal_ground
        else "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "category": ground.statement_category,
        "content_type": [CONTENT_TYPES.get(content_type, "CONTENT_TYPE_OTHER")],
        "content_date": content_date.isoformat(),
        "application_date": decided_at.date().isoformat(),
        "decision_facts": facts[:5000],
        "source_type": source_type,
        "automated_detection": "Yes" if automated_detection else "No",
        "automated_decision": "AUTOMATED_DECISION_FULLY" if automated_decision
        else "AUTOMATED_DECISION_NOT_AUTOMATED",
    }
    if body["content_type"] == ["CONTENT_TYPE_OTHER"]:
        body["content_type_other"] = content_type[:500]
    visibility = sorted({VISIBILITY[a] for a in chosen if a in VISIBILITY})
    if visibility:
        body["decision_visibility"] = visibility
    account = [ACCOUNT[a] for a in chosen if a in ACCOUNT]
    if account:
        body["decision_account"] = account[-1]
    if ground.keyword:
        body["category_specification"] = [ground.keyword]
    if ground.illegal_ground:
        body["illegal_content_legal_ground"] = ground.illegal_ground[:500]
        body["illegal_content_explanation"] = facts[:2000]
    else:
        body["incompatible_content_ground"] = f"Terms of service: {category.value.replace('_', ' ')}"[:500]
        body["incompatible_content_explanation"] = facts[:2000]
    scope = sorted(set(territories))
    if scope:
        body["territorial_scope"] = scope
    return body


_REQUIRED = ("decision_ground", "category", "content_type", "content_date", "application_date", "decision_facts",
             "source_type", "automated_detection", "automated_decision", "puid")
_DECISIONS = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")


def problems(body: dict[str, object]) -> list[str]:
    """The Transparency Database's rules this statement breaks (empty when it would be accepted)."""
    found = [f"{name} is required" for name in _REQUIRED if not body.get(name)]
    if not any(body.get(name) for name in _DECISIONS):
        found.append("one of decision_visibility, decision_monetary, decision_provision, decision_account is required")
    puid = body.get("puid")
    if isinstance(puid, str) and not _PUID.match(puid):
        found.append("puid must be 1-500 characters of letters, digits, - and _")
    if len(str(body.get("decision_facts", ""))) > 5000:
        found.append("decision_facts is longer than 5000 characters")
    if body.get("decision_ground") == "DECISION_GROUND_ILLEGAL_CONTENT":
        found += [f"{n} is required for illegal content" for n in
                  ("illegal_content_legal_ground", "illegal_content_explanation") if not body.get(n)]
    elif body.get("decision_ground") == "DECISION_GROUND_INCOMPATIBLE_CONTENT":
        found += [f"{n} is required for incompatible content" for n in
                  ("incompatible_content_ground", "incompatible_content_explanation") if not body.get(n)]
    for date_field, earliest in (("content_date", "2000-01-01"), ("application_date", "2020-01-01")):
        value = body.get(date_field)
        if isinstance(value, str) and value < earliest:
            found.append(f"{date_field} must be on or after {earliest}")
    return found
