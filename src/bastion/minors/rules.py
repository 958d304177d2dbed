"""Interaction rules as data: the file format, the built-in floor, and the evaluation.

A platform's rules file (TOML, ``rules/default.toml`` to copy) lists rules in order; for one check the first
enforced rule that holds decides, else the file's ``default``. Before any of them, Bastion's **floor** is evaluated:
built-in deny rules that no file can remove. A file with an ``allow`` rule that could hold where the floor denies is
refused at load with the reason, so a reader of the file never believes in a permission that does not exist.
``mode = "shadow"`` rules are evaluated and reported, never applied. ``RulesFile`` re-reads the file when it changes;
a broken edit is refused and the last good rules stay in force.

Evaluation is a dictionary look-up by action and a short scan of that action's rules (``RuleSet.decide``);
``bench/interactions.py`` measures it against a plain loop over the whole list.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bastion.core.livefile import LiveFile
from bastion.minors.interfaces import (
    ADULT_PLAUSIBLE,
    MINOR_BANDS,
    UNDER_16_BANDS,
    Action,
    Audience,
    Band,
    Decision,
    RulesError,
)

DEFAULT_RULES_PATH = Path(__file__).parent / "rules" / "default.toml"
_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
ALL_BANDS = frozenset(Band)


class When(BaseModel):
    """Conditions on the context; each one given must hold. ``mutual``: the two accounts follow each other."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mutual: bool | None = None
    follows: bool | None = None  # the actor follows the target
    followed_by: bool | None = None  # the target follows the actor
    conversation: bool | None = None  # an existing conversation between them
    group_consent: bool | None = None  # the target agreed to be added to the group
    age_restricted: bool | None = None  # the content is age-restricted
    borderline: bool | None = None  # the content is borderline (restricted mode hides it)
    audience: list[Audience] | None = Field(default=None, min_length=1)


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID)
    actions: list[Action] = Field(min_length=1)
    #: Bands of the acting account; left out: every band.
    actors: list[Band] | None = Field(default=None, min_length=1)
    #: Bands of the target account; left out: every band, and actions with no target.
    targets: list[Band] | None = Field(default=None, min_length=1)
    when: When = When()
    decision: Decision
    mode: Literal["enforce", "shadow"] = "enforce"
    #: A sentence the app can show the user it stops (or lets through).
    explanation: str = Field(min_length=1, max_length=300)
    #: Where the rule comes from (briefing, guidelines, common practice), for the rules table.
    source: str = Field(default="", max_length=200)


class BandDefaults(BaseModel):
    """An account's settings when it is created, by band (``GET /v1/accounts/{id}/defaults``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    private_account: bool
    discoverable: bool  # suggested to others, found in search
    downloads: bool  # others may download the account's videos
    duet_stitch: bool
    comments: Audience  # who may comment on the account's content
    dm: Audience  # who may send it direct messages
    screen_time_prompt_minutes: int | None = Field(default=None, ge=1, le=1440)
    quiet_hours: str | None = Field(default=None, description="HH:MM-HH:MM, no push notifications")
    live: bool
    gifts: bool

    @model_validator(mode="after")
    def _hours(self) -> BandDefaults:
        if self.quiet_hours is not None and not _HOURS.match(self.quiet_hours):
            raise ValueError(f"quiet_hours must be HH:MM-HH:MM, got {self.quiet_hours!r}")
        return self


class Grooming(BaseModel):
    """When an adult's attempts to reach minors raise a case in the child-safety queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Denied attempts at minors within the window.
    denied_attempts: int = Field(default=5, ge=1, le=1000)
    #: Distinct minors contacted without a mutual follow within the window.
    unconnected_minors: int = Field(default=10, ge=1, le=10_000)
    window_hours: int = Field(default=24, ge=1, le=24 * 30)
    queue: str = Field(default="child_safety", pattern=_ID)


class RulesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    version: str = Field(min_length=1, max_length=50)
    default: Decision = Decision.ALLOW
    rules: list[RuleSpec] = Field(default_factory=list)
    defaults: dict[Band, BandDefaults]
    grooming: Grooming = Grooming()


# --- the compiled form ---------------------------------------------------------------------------------------------


class Facts(NamedTuple):
    """What one check knows: the two bands (``target`` None for an action alone) and the context.

    A named tuple, like the other values built for every check (``Verdict``, ``interactions.Check``): as immutable
    as a frozen dataclass, and built four times faster (a frozen dataclass sets each field through
    ``object.__setattr__``; six such values a check were a tenth of a batch's CPU)."""

    actor: Band
    target: Band | None
    follows: bool = False
    followed_by: bool = False
    conversation: bool = False
    group_consent: bool = False
    age_restricted: bool = False
    borderline: bool = False
    audience: Audience | None = None

    @property
    def mutual(self) -> bool:
        return self.follows and self.followed_by


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule. ``targets`` holds ``None`` when the rule also covers actions with no target."""

    id: str
    actions: frozenset[Action]
    actors: frozenset[Band]
    targets: frozenset[Band | None]
    decision: Decision
    explanation: str
    source: str = ""
    shadow: bool = False
    floor: bool = False
    mutual: bool | None = None
    follows: bool | None = None
    followed_by: bool | None = None
    conversation: bool | None = None
    group_consent: bool | None = None
    age_restricted: bool | None = None
    borderline: bool | None = None
    audience: frozenset[Audience | None] | None = None

    def matches(self, f: Facts) -> bool:
        if f.actor not in self.actors or f.target not in self.targets:
            return False
        if self.mutual is not None and (f.follows and f.followed_by) != self.mutual:
            return False
        if self.follows is not None and f.follows != self.follows:
            return False
        if self.followed_by is not None and f.followed_by != self.followed_by:
            return False
        if self.conversation is not None and f.conversation != self.conversation:
            return False
        if self.group_consent is not None and f.group_consent != self.group_consent:
            return False
        if self.age_restricted is not None and f.age_restricted != self.age_restricted:
            return False
        if self.borderline is not None and f.borderline != self.borderline:
            return False
        return self.audience is None or f.audience in self.audience

    @classmethod
    def from_spec(cls, spec: RuleSpec) -> Rule:
        w = spec.when
        return cls(id=spec.id, actions=frozenset(spec.actions),
                   actors=frozenset(spec.actors) if spec.actors else ALL_BANDS,
                   targets=frozenset(spec.targets) if spec.targets else frozenset({*ALL_BANDS, None}),
                   decision=spec.decision, explanation=spec.explanation, source=spec.source,
                   shadow=spec.mode == "shadow", mutual=w.mutual, follows=w.follows, followed_by=w.followed_by,
                   conversation=w.conversation, group_consent=w.group_consent, age_restricted=w.age_restricted,
                   borderline=w.borderline, audience=frozenset(w.audience) if w.audience else None)


#: Bastion's floor: evaluated before any file's rules, and no file may contain an allow rule that overlaps one.
FLOOR: tuple[Rule, ...] = (
    Rule(id="floor-adult-dm-unconnected-under-16", actions=frozenset({Action.DM, Action.DM_MEDIA}),
         actors=ADULT_PLAUSIBLE, targets=frozenset(UNDER_16_BANDS), mutual=False, decision=Decision.DENY, floor=True,
         explanation="Adults cannot message accounts under 16 they are not mutually connected with.",
         source="briefing; Art. 28 guidelines (no contact from strangers)"),
    Rule(id="floor-media-to-minor", actions=frozenset({Action.DM_MEDIA}), actors=ALL_BANDS,
         targets=frozenset(MINOR_BANDS), decision=Decision.DENY, floor=True,
         explanation="Images and videos cannot be sent privately to accounts under 18.",
         source="briefing (no video or image sent privately)"),
)

#: What a minor's default settings may never be, whatever the file says: (bands, setting, forbidden values).
DEFAULTS_FLOOR: tuple[tuple[frozenset[Band], str, frozenset[object]], ...] = (
    (UNDER_16_BANDS, "dm", frozenset({Audience.EVERYONE, Audience.FOLLOWERS, Audience.FRIENDS})),
    (UNDER_16_BANDS, "comments", frozenset({Audience.EVERYONE})),
    (MINOR_BANDS, "dm", frozenset({Audience.EVERYONE})),
    (MINOR_BANDS, "downloads", frozenset({True})),
    (MINOR_BANDS, "private_account", frozenset({False})),
    (MINOR_BANDS, "live", frozenset({True})),
)


class Verdict(NamedTuple):
    """A check's answer: the decision, the rule that made it, and a sentence for the user (a named tuple: ``Facts``
    says why)."""

    decision: Decision
    rule: str
    explanation: str
    floor: bool = False
    #: Shadow rules that held and would have decided otherwise (tried, never applied).
    shadow: tuple[str, ...] = ()


_DEFAULT_EXPLANATIONS = {Decision.ALLOW: "No rule limits this.",
                         Decision.DENY: "This platform does not allow it unless a rule permits it."}


@dataclass(frozen=True)
class RuleSet:
    """A validated rules file, compiled: the floor, then per action the enforced rules in file order."""

    spec: RulesSpec
    rules: tuple[Rule, ...]
    _enforced: dict[Action, tuple[Rule, ...]] = field(repr=False, compare=False)
    _shadow: dict[Action, tuple[Rule, ...]] = field(repr=False, compare=False)
    _floor: dict[Action, tuple[Rule, ...]] = field(repr=False, compare=False)

    @classmethod
    def from_spec(cls, spec: RulesSpec) -> RuleSet:
        rules = tuple(Rule.from_spec(r) for r in spec.rules)
        return cls(spec, rules,
                   _by_action(r for r in rules if not r.shadow), _by_action(r for r in rules if r.shadow),
                   _by_action(FLOOR))

    @property
    def default(self) -> Decision:
        return self.spec.default

    def defaults_for(self, band: Band) -> BandDefaults:
        return self.spec.defaults[band]

    def decide(self, action: Action, facts: Facts, extra: Sequence[Rule] = ()) -> Verdict:
        """The floor, then ``extra`` (a parent's limits: deny rules only), then the file's rules, then its default."""
        verdict = self._enforce(action, facts, extra)
        shadows = self._shadow.get(action)
        if shadows:
            differing = tuple(r.id for r in shadows if r.matches(facts) and r.decision is not verdict.decision)
            if differing:
                return Verdict(verdict.decision, verdict.rule, verdict.explanation, verdict.floor, differing)
        return verdict

    def _enforce(self, action: Action, facts: Facts, extra: Sequence[Rule]) -> Verdict:
        for rule in self._floor.get(action, ()):
            if rule.matches(facts):
                return Verdict(Decision.DENY, rule.id, rule.explanation, floor=True)
        for rule in extra:
            if action in rule.actions and rule.matches(facts):
                return Verdict(rule.decision, rule.id, rule.explanation)
        for rule in self._enforced.get(action, ()):
            if rule.matches(facts):
                return Verdict(rule.decision, rule.id, rule.explanation)
        return Verdict(self.spec.default, "default", _DEFAULT_EXPLANATIONS[self.spec.default])


def _by_action(rules: Iterable[Rule]) -> dict[Action, tuple[Rule, ...]]:
    table: dict[Action, list[Rule]] = {}
    for rule in rules:
        for action in rule.actions:
            table.setdefault(action, []).append(rule)
    return {a: tuple(rs) for a, rs in table.items()}


# --- loading and the floor check -----------------------------------------------------------------------------------


def _could_overlap(rule: Rule, floor: Rule) -> bool:
    """Whether some check could match both: the floor would deny what ``rule`` says to allow."""
    if not (rule.actions & floor.actions and rule.actors & floor.actors and rule.targets & floor.targets):
        return False
    rule_mutual = rule.mutual
    if rule_mutual is None and rule.follows is True and rule.followed_by is True:
        rule_mutual = True
    if floor.mutual is not None and rule_mutual is not None and floor.mutual != rule_mutual:
        return False
    for name in ("follows", "followed_by", "conversation", "group_consent", "age_restricted", "borderline"):
        mine, theirs = getattr(rule, name), getattr(floor, name)
        if mine is not None and theirs is not None and mine != theirs:
            return False
    if floor.mutual is False and rule.follows is True and rule.followed_by is True:
        return False
    return not (rule.audience is not None and floor.audience is not None and not rule.audience & floor.audience)


def floor_problems(spec: RulesSpec, source: str) -> list[str]:
    """One message per allow rule that overlaps the floor, and per band default below the defaults floor."""
    problems: list[str] = []
    for index, rule_spec in enumerate(spec.rules):
        if rule_spec.id.startswith("floor-"):
            problems.append(f"{source}: rules[{index}] ({rule_spec.id}): ids starting 'floor-' are Bastion's own")
        if rule_spec.decision is not Decision.ALLOW:
            continue
        rule = Rule.from_spec(rule_spec)
        for floor in FLOOR:
            if _could_overlap(rule, floor):
                problems.append(
                    f"{source}: rules[{index}] ({rule.id}) would allow what Bastion's floor forbids whatever the "
                    f"file says ({floor.id}: {floor.explanation}) - narrow its actions, actors or targets, or "
                    f"add a condition the floor excludes")
    for band in Band:
        if band not in spec.defaults:
            problems.append(f"{source}: defaults: band {band.value!r} is missing (every band needs defaults)")
    for bands, setting, forbidden in DEFAULTS_FLOOR:
        for band in sorted(bands & spec.defaults.keys()):
            value = getattr(spec.defaults[band], setting)
            if value in forbidden:
                shown = value.value if isinstance(value, Audience) else str(value).lower()
                problems.append(f"{source}: defaults.{band.value}.{setting} = {shown} is below Bastion's floor "
                                f"for this band")
    return problems


def parse_rules(text: str, source: str = "<string>") -> RuleSet:
    """Validate rules given as TOML text; raises ``RulesError`` with every problem, each naming where it is."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError([f"{source}: invalid TOML: {exc}"]) from None
    try:
        spec = RulesSpec.model_validate(data)
    except ValidationError as exc:
        raise RulesError([f"{source}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
                          for e in exc.errors()]) from None
    problems = floor_problems(spec, source)
    ids = [r.id for r in spec.rules]
    problems += [f"{source}: rule id {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if problems:
        raise RulesError(problems)
    return RuleSet.from_spec(spec)


def load_rules(path: Path | str) -> RuleSet:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([f"{path}: cannot read the rules: {exc}"]) from None
    return parse_rules(text, source=str(path))


class RulesFile(LiveFile[RuleSet]):
    """The rules file, re-read when it changes on disk (``core/livefile.py``); a broken edit is refused and the last
    good rules stay in force."""

    def __init__(self, path: Path | str, *, check_every: float = 1.0) -> None:
        super().__init__(path, load_rules, RulesError, check_every=check_every)

    @property
    def rules(self) -> RuleSet:
        return self.current

    def _differs(self, new: RuleSet, old: RuleSet) -> bool:
        return new.spec != old.spec

