"""Policy as data: a platform's TOML file says which signals lead to automatic action, to review, or to nothing.

A policy is a list of rules. Each rule names a category (``terrorist_content``, ``csam``, ...), a condition over the
facts known about an upload (bank matches, classifier scores, content type, the uploader's age and country, views),
a verdict (``block``: act automatically, ``review``: hold for a human, ``allow``) and the actions that follow. The file
is validated as a whole when it is loaded, with one message per problem naming the rule and the field, so a typo is an
error and never a rule that silently does nothing. Editing the file changes behaviour without a code change:
``PolicyFile`` re-reads it when it changes and keeps the last good policy if the new one does not validate.

``evaluate`` is a pure function from (policy, facts) to a ``Decision``: among the enforced rules that hold, ``block``
beats ``review`` beats ``allow``, the most severe rule of the winning verdict decides, and every rule that held is
given as a reason a moderator and a statement of reasons can show. A rule in ``shadow`` mode is evaluated and reported
in ``Decision.shadow`` so that it can be counted and compared with what moderators decide, but it never changes the
verdict: that is how a new automatic rule earns trust before it is enforced.

Two rules are Bastion's own and no file can turn them off, because safety must follow what a match is, never what a
file happens to name: a match that is child sexual abuse material (a restricted bank, or an entry whose category
says so) is always blocked, removed and sent to the restricted queue, whatever the file says (``RESTRICTED_MATERIAL``);
and a bank match no enforced rule of the file dealt with is held for review rather than let through by omission
(``UNHANDLED_MATCH``). A file that tries to allow child sexual abuse material is refused when it is loaded.

Every reason has two wordings: ``description`` (bank, rule, distance, score) for moderators allowed to see the case,
and ``public`` (what was found and how, nothing an evader could tune against) for statements of reasons and the
platform's intake answer.

Condition parts are small classes, each with ``holds(facts)`` and ``describe(facts)``; adding one is a class and a
field on ``Condition``, and nothing else changes.

Don't:
- import the matcher or the database here: facts arrive as plain values (``MatchFact.from_match`` mirrors a match);
- look a rule up by name at run time to special-case it: say it in the policy file instead;
- let a verdict depend on a shadow rule, or send child-safety material to a queue that is not restricted.
"""

from __future__ import annotations

import difflib
import enum
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from bastion.core.livefile import LiveFile
from bastion.core.validators import country_code

#: The policy shipped with Bastion: a sensible starting point for a video platform, meant to be copied and edited.
DEFAULT_POLICY_PATH = Path(__file__).with_name("policies") / "default.toml"


# --- vocabulary ------------------------------------------------------------------------------------------------------


class Category(enum.StrEnum):
    """What a rule is about. Stored with every decision and counted in transparency reports: never rename one."""

    TERRORIST_CONTENT = "terrorist_content"
    CSAM = "csam"
    VIOLENT_EXTREMISM = "violent_extremism"
    HATE_SPEECH = "hate_speech"
    DISINFORMATION = "disinformation"
    BORDERLINE = "borderline"


class Verdict(enum.StrEnum):
    """What happens to the content now: act automatically, hold for a human, or let it be."""

    BLOCK = "block"
    REVIEW = "review"
    ALLOW = "allow"

    @property
    def rank(self) -> int:
        """Precedence when several rules hold: block > review > allow."""
        return _VERDICT_RANK[self]


_VERDICT_RANK = {Verdict.ALLOW: 0, Verdict.REVIEW: 1, Verdict.BLOCK: 2}


class Mode(enum.StrEnum):
    """``shadow`` rules are evaluated and reported, never applied."""

    ENFORCE = "enforce"
    SHADOW = "shadow"


class Action(enum.StrEnum):
    """A restriction that follows a verdict, named after the DSA statement-of-reasons restriction it is reported as.

    Stored with every decision: never rename one; retire a value by keeping it reserved.
    """

    REMOVE = "remove"  # DECISION_VISIBILITY_CONTENT_REMOVED
    DISABLE_IN_TERRITORIES = "disable_in_territories"  # DECISION_VISIBILITY_CONTENT_DISABLED + territorial_scope
    AGE_RESTRICT = "age_restrict"  # DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED
    DEMOTE = "demote"  # DECISION_VISIBILITY_CONTENT_DEMOTED
    NOT_RECOMMENDED = "not_recommended"  # kept out of recommendations only: DECISION_VISIBILITY_CONTENT_DEMOTED
    LABEL = "label"  # DECISION_VISIBILITY_CONTENT_LABELLED
    STRIKE = "strike"  # no restriction by itself; strikes lead to suspension (see StrikePolicy)
    SUSPEND_TEMPORARILY = "suspend_temporarily"  # DECISION_ACCOUNT_SUSPENDED
    SUSPEND_PERMANENTLY = "suspend_permanently"  # DECISION_ACCOUNT_TERMINATED


class ContentType(enum.StrEnum):
    """The kind of upload a rule may be limited to; the values are those of ``hashing.interfaces.MediaKind``."""

    IMAGE = "image"
    VIDEO = "video"
    TEXT = "text"


# --- facts -----------------------------------------------------------------------------------------------------------


class MatchLike(Protocol):
    """Anything shaped like ``matching.matcher.Match``, as far as policy cares."""

    @property
    def bank(self) -> str: ...

    @property
    def category(self) -> str: ...

    @property
    def distance(self) -> int: ...

    @property
    def signal_type(self) -> str: ...

    @property
    def restricted(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class MatchFact:
    """A bank match, reduced to what rules test. ``category`` is the bank entry's own (free text); ``restricted``
    says it is child sexual abuse material (a restricted bank, or an entry of that category): the fact policy
    follows, never the bank's name."""

    bank: str
    category: str
    distance: int
    signal_type: str
    restricted: bool = False

    @classmethod
    def from_match(cls, match: MatchLike) -> MatchFact:
        return cls(match.bank, match.category, match.distance, match.signal_type, match.restricted)


@dataclass(frozen=True)
class Facts:
    """Everything known about an upload when it is judged.

    ``user_age_years`` is the uploader's own age in years (the intake's ``account_age``), not the age of the account;
    ``None`` when unknown. ``scores`` maps a classifier's name to its score between 0 and 1.
    """

    content_type: ContentType
    user_age_years: float | None = None
    account_country: str | None = None
    views: int = 0
    matches: list[MatchFact] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)


# --- condition parts -------------------------------------------------------------------------------------------------


class ConditionPart(Protocol):
    """One test of a condition. ``describe()`` states the test; ``describe(facts)`` says what held, for reasons."""

    def holds(self, facts: Facts) -> bool: ...

    def describe(self, facts: Facts | None = None) -> str: ...


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _shaped(pattern: str, rule: str) -> AfterValidator:
    """A string check whose error says the rule in words rather than as a regular expression."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{value!r}: {rule}")
        return value

    return AfterValidator(check)


CountryCode = Annotated[str, AfterValidator(country_code)]
# The same rule as matching's bank names, repeated so that moderation does not import the matcher.
BankName = Annotated[str, _shaped(r"[A-Z][A-Z0-9_]{1,99}",
                                  "bank names are capital letters, digits and _ (e.g. CSAM_KNOWN)")]
Name = Annotated[str, _shaped(r"[a-z0-9][a-z0-9_.-]{0,63}", "names are 1-64 of a-z, 0-9, _, . and -")]
ClassifierName = Annotated[str, _shaped(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}",
                                        "classifier names are 1-64 of letters, digits, _, ., : and -")]


def _listed(values: Iterable[str]) -> str:
    return ", ".join(values)


class BankMatch(_Strict):
    """A match in the banks. Left out, ``banks``, ``categories`` and ``restricted`` mean any; ``restricted = true``
    takes only child sexual abuse material (restricted banks, or entries of that category), ``false`` only the
    rest; ``max_distance`` narrows the bank's own threshold (a match further than that is never reported at all)."""

    banks: Annotated[list[BankName], Field(min_length=1)] | None = None
    categories: Annotated[list[Category], Field(min_length=1)] | None = None
    restricted: bool | None = None
    max_distance: Annotated[int, Field(ge=0)] | None = None

    def hits(self, facts: Facts) -> list[MatchFact]:
        """The matches that satisfy this part, nearest first."""
        found = [
            m for m in facts.matches
            if (self.banks is None or m.bank in self.banks)
            and (self.categories is None or m.category in self.categories)
            and (self.restricted is None or m.restricted is self.restricted)
            and (self.max_distance is None or m.distance <= self.max_distance)
        ]
        return sorted(found, key=lambda m: (m.distance, m.bank))

    def holds(self, facts: Facts) -> bool:
        return bool(self.hits(facts))

    def describe(self, facts: Facts | None = None) -> str:
        hits = self.hits(facts) if facts is not None else []
        if hits:
            best = hits[0]
            category = f" ({best.category})" if best.category else ""
            return f"matched bank {best.bank}{category} at distance {best.distance}"
        where = f"bank {_listed(self.banks)}" if self.banks else "any bank"
        if self.restricted is not None:
            where = f"{where} ({'restricted' if self.restricted else 'not restricted'})"
        categories = f" ({_listed(self.categories)})" if self.categories else ""
        within = f" within distance {self.max_distance}" if self.max_distance is not None else ""
        return f"a match in {where}{categories}{within}"


class Classifier(_Strict):
    """A classifier's score at or above ``min_score``; a classifier that gave no score never holds."""

    name: ClassifierName
    min_score: Annotated[float, Field(ge=0.0, le=1.0)]

    def holds(self, facts: Facts) -> bool:
        score = facts.scores.get(self.name)
        return score is not None and score >= self.min_score

    def describe(self, facts: Facts | None = None) -> str:
        score = facts.scores.get(self.name) if facts is not None else None
        if score is not None:
            return f"classifier {self.name} scored {score:.2f} (threshold {self.min_score:.2f})"
        return f"classifier {self.name} scores at least {self.min_score:.2f}"


class ContentTypes(RootModel[Annotated[list[ContentType], Field(min_length=1)]]):
    """The upload is one of these kinds."""

    model_config = ConfigDict(frozen=True)

    def holds(self, facts: Facts) -> bool:
        return facts.content_type in self.root

    def describe(self, facts: Facts | None = None) -> str:
        if facts is not None and self.holds(facts):
            return f"content type {facts.content_type}"
        return f"content type {' or '.join(self.root)}"


class MaxUserAge(RootModel[Annotated[float, Field(gt=0, le=150)]]):
    """The uploader is younger than this many years (their own age, not the account's). An unknown age never holds:
    rules for minors apply where the age is known, so they do not sweep in every account that has not said."""

    model_config = ConfigDict(frozen=True)

    def holds(self, facts: Facts) -> bool:
        return facts.user_age_years is not None and facts.user_age_years < self.root

    def describe(self, facts: Facts | None = None) -> str:
        if facts is not None and facts.user_age_years is not None:
            return f"uploader aged {facts.user_age_years:g} (under {self.root:g})"
        return f"uploader under {self.root:g}"


class MinViews(RootModel[Annotated[int, Field(ge=1)]]):
    """The content has been viewed at least this many times."""

    model_config = ConfigDict(frozen=True)

    def holds(self, facts: Facts) -> bool:
        return facts.views >= self.root

    def describe(self, facts: Facts | None = None) -> str:
        if facts is not None:
            return f"{facts.views:,} views (at least {self.root:,})"
        return f"at least {self.root:,} views"


class AccountCountries(RootModel[Annotated[list[CountryCode], Field(min_length=1)]]):
    """The uploader's account is registered in one of these countries."""

    model_config = ConfigDict(frozen=True)

    def holds(self, facts: Facts) -> bool:
        return facts.account_country is not None and facts.account_country.upper() in self.root

    def describe(self, facts: Facts | None = None) -> str:
        if facts is not None and facts.account_country is not None:
            return f"account in {facts.account_country.upper()}"
        return f"account in {_listed(self.root)}"


class Condition(_Strict):
    """Every part given must hold, and at least one part must be given. Each field is one ``ConditionPart``."""

    bank_match: BankMatch | None = None
    classifier: Classifier | None = None
    content_types: ContentTypes | None = None
    max_user_age_years: MaxUserAge | None = None
    min_views: MinViews | None = None
    account_countries: AccountCountries | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.parts():
            raise _Problems([((), f"a condition needs at least one of: {_listed(type(self).model_fields)}")])
        return self

    def parts(self) -> list[ConditionPart]:
        return [part for name in type(self).model_fields if (part := getattr(self, name)) is not None]

    def holds(self, facts: Facts) -> bool:
        return all(part.holds(facts) for part in self.parts())

    def describe(self, facts: Facts | None = None) -> str:
        return " and ".join(part.describe(facts) for part in self.parts())


# --- rules and policy ------------------------------------------------------------------------------------------------


#: Limits an upload may be published under while its review waits (nothing that takes it down or hits the account).
PENDING_LIMITS = frozenset({Action.AGE_RESTRICT, Action.DEMOTE, Action.NOT_RECOMMENDED})


class Rule(_Strict):
    """When ``when`` holds, ``verdict`` with ``actions`` (for ``review``: the actions a moderator is offered)."""

    name: Name
    category: Category
    mode: Mode = Mode.ENFORCE
    when: Condition
    verdict: Verdict
    actions: list[Action] = Field(default_factory=list)
    severity: Annotated[int, Field(ge=1, le=5)]
    queue: str | None = None
    territories: Annotated[list[CountryCode], Field(min_length=1)] | None = None
    label: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    #: For ``review``: publish at once with these limits while the case waits, instead of holding the upload.
    while_in_review: Annotated[list[Action], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[_Problem] = []
        if self.while_in_review is not None and self.verdict is not Verdict.REVIEW:
            problems.append((("while_in_review",), "only a 'review' rule can publish with limits while in review"))
        for action in self.while_in_review or ():
            if action not in PENDING_LIMITS:
                problems.append((("while_in_review",), f"'{action}' is not a limit to publish under; use "
                                                        f"{_listed(sorted(PENDING_LIMITS))}"))
        if self.verdict is Verdict.BLOCK and not self.actions:
            problems.append(((), "verdict 'block' needs at least one action"))
        if self.verdict is Verdict.ALLOW and self.actions:
            problems.append((("actions",), "verdict 'allow' takes no actions"))
        for action in sorted({a for a in self.actions if self.actions.count(a) > 1}):
            problems.append((("actions",), f"action '{action}' is listed more than once"))
        territorial = Action.DISABLE_IN_TERRITORIES in self.actions
        if territorial and not self.territories:
            problems.append((("territories",), "action 'disable_in_territories' needs territories"))
        if self.territories and not territorial:
            problems.append((("territories",), "territories are only for action 'disable_in_territories'"))
        if Action.LABEL in self.actions and not self.label:
            problems.append((("label",), "action 'label' needs the label text"))
        if self.label and Action.LABEL not in self.actions:
            problems.append((("label",), "label text is only for action 'label'"))
        if problems:
            raise _Problems(problems)
        return self

    def holds(self, facts: Facts) -> bool:
        return self.when.holds(facts)

    def reason(self, facts: Facts) -> Reason:
        return Reason(self.name, self.category, self.verdict, self.severity, self.when.describe(facts),
                      shadow=self.mode is Mode.SHADOW, public=public_wording(self.category, self.when))


#: How each category is named to the uploader and in statements of reasons.
CATEGORY_WORDS = {
    Category.TERRORIST_CONTENT: "terrorist content",
    Category.CSAM: "child sexual abuse material",
    Category.VIOLENT_EXTREMISM: "violent extremist content",
    Category.HATE_SPEECH: "hate speech",
    Category.DISINFORMATION: "disinformation",
    Category.BORDERLINE: "borderline content",
}


def public_wording(category: Category, when: Condition) -> str:
    """What was found and how, for the uploader: never the bank, the rule, the distance or the score, which would
    tell an evader how close they came and what to change (and would name banks shared under an exchange's terms).
    """
    words = CATEGORY_WORDS[category]
    if when.bank_match is not None:
        return f"known {words}, matched automatically"
    if when.classifier is not None:
        return f"likely {words}, found by an automated classifier"
    return f"{words}, found by an automated check of the platform's rules"


@dataclass(frozen=True)
class Routing:
    """What routes a case to a queue besides its category."""

    severity: int = 0
    content_type: ContentType | None = None
    user_age_years: float | None = None


class QueueSpec(_Strict):
    """A review queue. ``restricted`` queues are seen only by child-safety specialists.

    A case goes to the first queue, in file order, that lists its category and whose filters all hold
    (``min_severity``, ``content_types``, ``max_user_age_years``): e.g. a queue for uploads by minors placed before
    the general queue of the same category.
    """

    name: Name
    categories: list[Category] = Field(default_factory=list)
    sla_minutes: Annotated[int, Field(gt=0)]
    restricted: bool = False
    min_severity: Annotated[int, Field(ge=1, le=5)] | None = None
    content_types: Annotated[list[ContentType], Field(min_length=1)] | None = None
    max_user_age_years: Annotated[float, Field(gt=0, le=150)] | None = None

    @property
    def filtered(self) -> bool:
        return any(f is not None for f in (self.min_severity, self.content_types, self.max_user_age_years))

    def takes(self, category: Category, routing: Routing) -> bool:
        if category not in self.categories:
            return False
        if self.min_severity is not None and routing.severity < self.min_severity:
            return False
        if self.content_types is not None and routing.content_type not in self.content_types:
            return False
        age = routing.user_age_years
        return self.max_user_age_years is None or (age is not None and age < self.max_user_age_years)


class StrikePolicy(_Strict):
    """How many strikes lead to a temporary, then a permanent, suspension."""

    temporary_suspension_at: Annotated[int, Field(gt=0)]
    temporary_suspension_days: Annotated[int, Field(gt=0)]
    permanent_suspension_at: Annotated[int, Field(gt=0)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.permanent_suspension_at <= self.temporary_suspension_at:
            raise _Problems([(("permanent_suspension_at",),
                              f"must be greater than temporary_suspension_at ({self.temporary_suspension_at}), "
                              f"got {self.permanent_suspension_at}")])
        return self

    def outcome(self, strikes: int) -> Action | None:
        if strikes >= self.permanent_suspension_at:
            return Action.SUSPEND_PERMANENTLY
        if strikes >= self.temporary_suspension_at:
            return Action.SUSPEND_TEMPORARILY
        return None


class Policy(_Strict):
    """A platform's whole moderation policy, as loaded from one file."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    version: Annotated[str, Field(min_length=1, max_length=100)]
    rules: Annotated[list[Rule], Field(min_length=1)]
    view_thresholds: list[Annotated[int, Field(gt=0)]] = Field(default_factory=list)
    strikes: StrikePolicy
    queues: Annotated[list[QueueSpec], Field(min_length=1)]
    default_queue: str

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[_Problem] = []
        for i, (previous, threshold) in enumerate(zip(self.view_thresholds, self.view_thresholds[1:], strict=False)):
            if threshold <= previous:
                problems.append((("view_thresholds", i + 1),
                                 f"{threshold} does not exceed {previous}: thresholds must be strictly increasing"))
        problems += _duplicates("rules", [r.name for r in self.rules], "rule name")
        problems += _duplicates("queues", [q.name for q in self.queues], "queue name")
        routed: dict[Category, str] = {}  # categories a queue without filters takes: later queues never see them
        for i, queue in enumerate(self.queues):
            for category in queue.categories:
                if category in routed:
                    problems.append((("queues", i, "categories"),
                                     f"category '{category}' is routed to queue '{routed[category]}' already"))
                if category is Category.CSAM and not queue.restricted:
                    problems.append((("queues", i, "categories"), "queues that take 'csam' must be restricted"))
                if not queue.filtered:
                    routed.setdefault(category, queue.name)
        if Category.CSAM not in routed:
            problems.append((("queues",), "no queue takes 'csam' without filters: some reports of child sexual abuse "
                                          "would reach the default queue; add a restricted queue for it"))
        queues = {q.name: q for q in self.queues}
        defined = f"defined: {_listed(queues)}"
        default = queues.get(self.default_queue)
        if default is None:
            problems.append((("default_queue",), f"no queue named '{self.default_queue}'; {defined}"))
        elif default.restricted:
            problems.append((("default_queue",), f"'{default.name}' is restricted; unrouted content would be "
                                                 "hidden from most moderators"))
        for i, rule in enumerate(self.rules):
            problems += [(("rules", i, *where), message) for where, message in _child_safety_problems(rule)]
            if rule.queue is not None and rule.queue not in queues:
                problems.append((("rules", i, "queue"), f"no queue named '{rule.queue}'; {defined}"))
            elif rule.category is Category.CSAM and rule.verdict is not Verdict.ALLOW and default is not None:
                target = self.queue_for(rule)
                if not target.restricted:
                    problems.append((("rules", i, "queue"), f"'csam' rules must go to a restricted queue; "
                                                            f"'{target.name}' is not restricted"))
        if problems:
            raise _Problems(problems)
        return self

    @property
    def label(self) -> str:
        """``name@version``, recorded with every decision so that it can be traced to the policy that made it."""
        return f"{self.name}@{self.version}"

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

    def queue(self, name: str) -> QueueSpec:
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise KeyError(name)

    def route(self, category: Category, routing: Routing = Routing()) -> QueueSpec:
        """The first queue that takes the case, or the default queue."""
        for queue in self.queues:
            if queue.takes(category, routing):
                return queue
        return self.queue(self.default_queue)

    def queue_for(self, rule: Rule, facts: Facts | None = None) -> QueueSpec:
        """The rule's own queue if it names one, else the queue its category and the upload are routed to."""
        if rule.queue is not None:
            return self.queue(rule.queue)
        routing = Routing(rule.severity, facts.content_type, facts.user_age_years) if facts else Routing(rule.severity)
        return self.route(rule.category, routing)


def _child_safety_problems(rule: Rule) -> list[_Problem]:
    """A rule that would let child sexual abuse material through, or publish it while a case waits. The built-in
    rule blocks such material anyway; a file that says otherwise is refused, so no one believes it does."""
    problems: list[_Problem] = []
    if rule.name in BUILT_IN_RULES:
        problems.append((("name",), f"'{rule.name}' is the name of one of Bastion's own rules; choose another"))
    match = rule.when.bank_match
    takes_csam = rule.category is Category.CSAM or (match is not None and (
        match.restricted is True or Category.CSAM in (match.categories or ())))
    if not takes_csam:
        return problems
    if rule.verdict is Verdict.ALLOW:
        problems.append((("verdict",), "child sexual abuse material cannot be allowed: a match in a restricted bank "
                                       "is always blocked; remove this rule"))
    elif rule.verdict is Verdict.BLOCK and Action.REMOVE not in rule.actions:
        problems.append((("actions",), "a block of child sexual abuse material must remove it: add 'remove'"))
    if rule.while_in_review is not None:
        problems.append((("while_in_review",), "child sexual abuse material is never published while in review"))
    return problems


# --- evaluation ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """A rule that held and what made it hold, worded for moderators and statements of reasons."""

    rule: str
    category: Category
    verdict: Verdict
    severity: int
    description: str
    shadow: bool = False
    #: The same, worded for the uploader and statements of reasons: what was found and how, no bank, rule,
    #: distance or score.
    public: str = ""

    def __str__(self) -> str:
        return f"{self.rule} ({self.category}): {self.description}"


@dataclass(frozen=True)
class Decision:
    """What a policy says about one upload.

    ``rule`` and ``category`` are the deciding rule's (the most severe enforced rule of the winning verdict; the first
    in the file on a tie); ``actions``, ``territories`` and ``severity`` gather every enforced rule of that verdict.
    ``queue`` is where a block or review lands (``None`` for allow): the deciding rule's queue, except that content
    any holding rule sends to a restricted queue goes there, whatever decided the verdict. ``reasons`` lists every
    enforced rule that held, deciding rule first; ``shadow`` names the shadow rules that held and ``shadow_reasons``
    gives the verdict each would have given.
    """

    policy: str
    verdict: Verdict
    rule: str | None = None
    category: Category | None = None
    actions: list[Action] = field(default_factory=list)
    severity: int = 0
    queue: str | None = None
    restricted: bool = False
    territories: list[str] = field(default_factory=list)
    label: str | None = None
    reasons: list[Reason] = field(default_factory=list)
    shadow: list[str] = field(default_factory=list)
    shadow_reasons: list[Reason] = field(default_factory=list)
    #: For ``review``: the limits to publish under while the case waits; empty means hold the upload.
    while_in_review: list[Action] = field(default_factory=list)
    #: A block that only restricts (e.g. in some territories) while a review rule also held: the review still
    #: happens, in this queue, so a geo-block never hides content from the review another rule asked for.
    also_review: Reason | None = None
    also_review_queue: str | None = None

    @classmethod
    def allow(cls, policy: str, shadow_reasons: Iterable[Reason] = ()) -> Decision:
        """No enforced rule held."""
        held = list(shadow_reasons)
        return cls(policy, Verdict.ALLOW, shadow=[r.rule for r in held], shadow_reasons=held)

    @property
    def public_reasons(self) -> list[str]:
        """The reasons worded for the uploader and the platform, each once, deciding rule's first."""
        return list(dict.fromkeys(r.public or CATEGORY_WORDS[r.category] for r in self.reasons))

    @property
    def public_facts(self) -> str:
        """A statement of reasons' facts: what was found and how, never the bank, rule or distance."""
        text = "; ".join(self.public_reasons)
        return f"{text[:1].upper()}{text[1:]}." if text else ""


#: Bastion's own rules (``_restricted_material``, ``_unhandled_match``); files may not use their names.
RESTRICTED_MATERIAL = "restricted-material"
UNHANDLED_MATCH = "unhandled-match"
BUILT_IN_RULES = frozenset({RESTRICTED_MATERIAL, UNHANDLED_MATCH})


class _BuiltInRule(Rule):
    """One of Bastion's own rules, made for one upload: it holds for ``hits`` and says so in its reason."""

    hits: list[MatchFact] = Field(default_factory=list)
    public_text: str = ""

    def holds(self, facts: Facts) -> bool:
        return bool(self.hits)

    def reason(self, facts: Facts) -> Reason:
        best = min(self.hits, key=lambda m: (m.distance, m.bank))
        category = f" ({best.category})" if best.category else ""
        description = f"matched bank {best.bank}{category} at distance {best.distance}"
        if self.name == UNHANDLED_MATCH:
            description += ", which no rule of the policy deals with: held for review"
        return Reason(self.name, self.category, self.verdict, self.severity, description, public=self.public_text)


def _restricted_material(facts: Facts) -> _BuiltInRule | None:
    """Child sexual abuse material is blocked, removed and sent to the restricted queue, whatever the file says."""
    hits = [m for m in facts.matches if m.restricted]
    if not hits:
        return None
    return _BuiltInRule(name=RESTRICTED_MATERIAL, category=Category.CSAM,
                        when=Condition(bank_match=BankMatch(restricted=True)), verdict=Verdict.BLOCK,
                        actions=[Action.REMOVE], severity=5, hits=hits,
                        public_text=public_wording(Category.CSAM, Condition(bank_match=BankMatch())))


def _unhandled_match(policy: Policy, facts: Facts, enforced: list[Rule]) -> _BuiltInRule | None:
    """A bank match that no enforced rule held for (a category the file does not name, a bank it does not know, a
    distance past its limits) is held for review: a bank holds an entry because someone judged it harmful, and
    letting its matches through by omission would fail open."""
    handled = {(m.bank, m.category, m.distance, m.signal_type)
               for rule in enforced if rule.when.bank_match is not None
               for m in rule.when.bank_match.hits(facts)}
    hits = [m for m in facts.matches
            if not m.restricted and (m.bank, m.category, m.distance, m.signal_type) not in handled]
    if not hits:
        return None
    category = _category_of(min(hits, key=lambda m: (m.distance, m.bank)).category)
    return _BuiltInRule(name=UNHANDLED_MATCH, category=category or Category.BORDERLINE,
                        when=Condition(bank_match=BankMatch()), verdict=Verdict.REVIEW, actions=[Action.REMOVE],
                        severity=3, queue=None if category else policy.default_queue, hits=hits,
                        public_text="a match with known harmful material, held for review by a person")


def _category_of(text: str) -> Category | None:
    """A bank entry's free-text category as one of the policy's, when it is one."""
    try:
        return Category(text.strip().lower())
    except ValueError:
        return None


def evaluate(policy: Policy, facts: Facts) -> Decision:
    """Judge one upload. Pure: no I/O, no clock; the same policy and facts always give the same decision.

    Bastion's own rules join the file's: ``restricted-material`` decides whenever child sexual abuse material
    matched (unless a file rule that blocks and removes it as ``csam`` held: then that rule decides), and
    ``unhandled-match`` asks for review of any bank match no enforced rule dealt with.
    """
    enforced: list[Rule] = []
    shadow: list[Rule] = []
    for rule in policy.rules:
        if rule.holds(facts):
            (shadow if rule.mode is Mode.SHADOW else enforced).append(rule)
    shadow_reasons = [rule.reason(facts) for rule in shadow]
    unhandled = _unhandled_match(policy, facts, enforced)
    if unhandled is not None:
        enforced.append(unhandled)
    if not enforced and not any(m.restricted for m in facts.matches):
        return Decision.allow(policy.label, shadow_reasons)
    ranked = sorted(enforced, key=lambda r: (-r.verdict.rank, -r.severity))  # stable: file order breaks ties
    lead = _restricted_lead(ranked, facts)
    if lead is not None:  # child sexual abuse material decides, whatever the severities say
        ranked = [lead] + [r for r in ranked if r is not lead]
    decider = ranked[0]
    winners = [r for r in ranked if r.verdict is decider.verdict]
    queue: QueueSpec | None = None
    if decider.verdict is not Verdict.ALLOW:
        queue = policy.queue_for(decider, facts)
        if not queue.restricted:
            restricted = (policy.queue_for(r, facts) for r in ranked if r.verdict is not Verdict.ALLOW)
            queue = next((q for q in restricted if q.restricted), queue)
    reviews = [r for r in ranked if r.verdict is Verdict.REVIEW]
    also = reviews[0] if decider.verdict is Verdict.BLOCK and reviews \
        and not any(Action.REMOVE in r.actions for r in winners) else None
    return Decision(
        policy=policy.label,
        verdict=decider.verdict,
        rule=decider.name,
        category=decider.category,
        actions=[action for action in Action if any(action in r.actions for r in winners)],
        severity=decider.severity,
        queue=queue.name if queue else None,
        restricted=queue.restricted if queue else False,
        territories=sorted({t for r in winners for t in r.territories or ()}),
        label=next((r.label for r in winners if r.label), None),
        reasons=[rule.reason(facts) for rule in ranked],
        shadow=[rule.name for rule in shadow],
        shadow_reasons=shadow_reasons,
        while_in_review=_while_in_review(winners) if decider.verdict is Verdict.REVIEW else [],
        also_review=also.reason(facts) if also else None,
        also_review_queue=(queue.name if queue and queue.restricted else policy.queue_for(also, facts).name)
        if also else None,
    )


def _restricted_lead(ranked: list[Rule], facts: Facts) -> Rule | None:
    """The rule that decides when child sexual abuse material matched: the file's own rule if one held that blocks
    and removes it as ``csam``, else Bastion's; ``None`` when no such material matched."""
    if not any(m.restricted for m in facts.matches):
        return None
    for rule in ranked:
        match = rule.when.bank_match
        if rule.category is Category.CSAM and rule.verdict is Verdict.BLOCK and Action.REMOVE in rule.actions \
                and match is not None and any(m.restricted for m in match.hits(facts)):
            return rule
    return _restricted_material(facts)


def _while_in_review(winners: list[Rule]) -> list[Action]:
    """Publish with limits only when every review rule that held allows it (the strictest rule wins: hold)."""
    if any(r.while_in_review is None for r in winners):
        return []
    return [a for a in Action if any(a in (r.while_in_review or ()) for r in winners)]


def views_crossed(policy: Policy, before: int, after: int) -> list[int]:
    """The view thresholds passed by going from ``before`` to ``after`` views: each is crossed once, on the way up."""
    return [t for t in policy.view_thresholds if before < t <= after]


def strike_outcome(policy: Policy, strikes: int) -> Action | None:
    """The suspension an account with ``strikes`` strikes (the new one counted) gets, if any."""
    return policy.strikes.outcome(strikes)


# --- loading ---------------------------------------------------------------------------------------------------------


class PolicyError(ValueError):
    """A policy file that cannot be used; ``problems`` holds one message per problem, each naming where it is."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_Problem = tuple[tuple[str | int, ...], str]


class _Problems(ValueError):
    """Raised by validators that check several things at once, each with its place relative to the model."""

    def __init__(self, problems: list[_Problem]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def _duplicates(collection: str, names: list[str], what: str) -> list[_Problem]:
    first: dict[str, int] = {}
    problems: list[_Problem] = []
    for i, name in enumerate(names):
        if name in first:
            problems.append(((collection, i, "name"), f"duplicate {what} '{name}', first used by {collection}"
                                                      f"[{first[name]}]"))
        first.setdefault(name, i)
    return problems


def load_policy(path: Path | str) -> Policy:
    """Read and validate a policy file; raises ``PolicyError`` naming the file in every message."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([f"{path}: cannot read the policy: {exc}"]) from None
    return parse_policy(text, source=str(path))


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Validate a policy given as TOML text; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([f"{source}: invalid TOML: {exc}"]) from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_explain(exc, data, source)) from None


def _explain(exc: ValidationError, data: dict[str, Any], source: str) -> list[str]:
    errors = exc.errors()
    # A misspelt field is reported once, as unknown with a suggestion, not also as the right name missing.
    misspelt: set[tuple[str | int, ...]] = set()
    for error in errors:
        if error["type"] == "extra_forbidden" and (close := _suggest(str(error["loc"][-1]))):
            misspelt.add((*error["loc"][:-1], close[0]))
    messages: list[str] = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "missing" and loc in misspelt:
            continue
        found = error.get("ctx", {}).get("error")
        if isinstance(found, _Problems):
            for where, message in found.problems:
                messages.append(_format(source, loc + where, data, message))
        else:
            messages.append(_format(source, loc, data, _message(error)))
    return messages


def _format(source: str, loc: tuple[str | int, ...], data: dict[str, Any], message: str) -> str:
    """``source: rules[2] ("csam-hash"): when.classifier.min_score: message``: the named item, then the field."""
    tokens: list[str] = []
    split = 0
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            token = f"[{part}]"
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                token += f' ("{node["name"]}")'
                split = len(tokens) + 1
            tokens.append(token)
        else:
            node = node.get(part) if isinstance(node, dict) else None
            tokens.append(str(part))

    def join(parts: list[str]) -> str:
        return "".join(p if i == 0 or p.startswith("[") else f".{p}" for i, p in enumerate(parts))

    return ": ".join(x for x in (source, join(tokens[:split]), join(tokens[split:]), message) if x)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        close = _suggest(str(error["loc"][-1]))
        return "unknown field" + (f" (did you mean '{close[0]}'?)" if close else "")
    if kind == "missing":
        return "required field missing"
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float | bool):
        message += f" (got {value!r})"
    return message


def _suggest(name: str) -> list[str]:
    models: list[type[BaseModel]] = [Policy, Rule, Condition, BankMatch, Classifier, QueueSpec, StrikePolicy]
    return difflib.get_close_matches(name, sorted({f for model in models for f in model.model_fields}), n=1)


class PolicyFile(LiveFile[Policy]):
    """The policy file, re-read when it changes on disk (``core/livefile.py``); a broken edit is refused and the last
    good policy stays in force."""

    def __init__(self, path: Path | str, *, check_every: float = 1.0) -> None:
        super().__init__(path, load_policy, PolicyError, check_every=check_every)

    @property
    def policy(self) -> Policy:
        """The policy in force, re-read first if the file changed."""
        return self.current

