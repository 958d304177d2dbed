"""Policy as data: loading and validating policy files, evaluating facts against them, views and strikes."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.matching.matcher import Match
from bastion.moderation.policy import (
    DEFAULT_POLICY_PATH,
    Action,
    Category,
    ContentType,
    Decision,
    Facts,
    MatchFact,
    Mode,
    Policy,
    PolicyError,
    PolicyFile,
    Routing,
    Verdict,
    evaluate,
    load_policy,
    parse_policy,
    strike_outcome,
    views_crossed,
)

ROOT = Path(__file__).resolve().parents[2]

# A small valid policy that the validation cases break one field at a time.
MINIMAL = """\
name = "test"
version = "1"
default_queue = "general"
view_thresholds = [100, 1000]

[strikes]
temporary_suspension_at = 2
temporary_suspension_days = 7
permanent_suspension_at = 4

[[queues]]
name = "child_safety"
categories = ["csam"]
sla_minutes = 60
restricted = true

[[queues]]
name = "general"
sla_minutes = 1440

[[rules]]
name = "csam-hash"
category = "csam"
when.bank_match.banks = ["CSAM_KNOWN"]
verdict = "block"
actions = ["remove", "strike"]
severity = 5
"""


def extra_rule(body: str) -> Callable[[str], str]:
    """An edit that appends a second rule (rules[1]) to the minimal policy."""
    return lambda text: text + "\n[[rules]]\n" + body


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)


def bank(name: str, category: str, distance: int = 0, signal_type: str = "pdq", *,
         restricted: bool = False) -> MatchFact:
    return MatchFact(name, category, distance, signal_type, restricted)


def video(**kwargs: object) -> Facts:
    return Facts(ContentType.VIDEO, **kwargs)  # type: ignore[arg-type]


# --- loading ---------------------------------------------------------------------------------------------------------


def test_default_policy_loads(default: Policy) -> None:
    assert default.label == "bastion-default@2025-06-01"
    assert default.view_thresholds == [10_000, 100_000, 1_000_000]
    assert default.queue("child_safety").restricted
    assert not default.queue("terrorism").restricted and default.queue("terrorism").sla_minutes == 60
    assert default.route(Category.CSAM).name == "child_safety"
    assert default.route(Category.HATE_SPEECH).name == "general"
    assert {rule.category for rule in default.rules} == set(Category)
    assert default.rule("terror-text-autoblock").mode is Mode.SHADOW


def test_default_policy_ships_with_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "moderation/policies/*.toml" in config["tool"]["setuptools"]["package-data"]["bastion"]
    assert DEFAULT_POLICY_PATH.is_file()


def test_minimal_policy_is_valid() -> None:
    policy = parse_policy(MINIMAL)
    assert [rule.name for rule in policy.rules] == ["csam-hash"]
    assert policy.rules[0].mode is Mode.ENFORCE  # the default


@pytest.mark.parametrize(("edit", "message"), [
    (replace('verdict = "block"', 'verdit = "block"'),
     'policy.toml: rules[0] ("csam-hash"): verdit: unknown field (did you mean \'verdict\'?)'),
    (replace("sla_minutes = 60", "sla_minutes = 60\ncolour = 'red'"),
     'policy.toml: queues[0] ("child_safety"): colour: unknown field'),
    (replace("when.bank_match.banks", "when.bank_match.bank"),
     'policy.toml: rules[0] ("csam-hash"): when.bank_match.bank: unknown field (did you mean \'banks\'?)'),
    (extra_rule('name = "csam-hash"\ncategory = "csam"\nwhen.min_views = 1\nverdict = "review"\nseverity = 1\n'),
     'policy.toml: rules[1] ("csam-hash"): name: duplicate rule name \'csam-hash\', first used by rules[0]'),
    (replace('actions = ["remove", "strike"]', "actions = []"),
     'policy.toml: rules[0] ("csam-hash"): verdict \'block\' needs at least one action'),
    (replace('verdict = "block"', 'verdict = "allow"'),
     'policy.toml: rules[0] ("csam-hash"): actions: verdict \'allow\' takes no actions'),
    (replace('actions = ["remove", "strike"]', 'actions = ["remove", "remove"]'),
     'policy.toml: rules[0] ("csam-hash"): actions: action \'remove\' is listed more than once'),
    (replace('actions = ["remove", "strike"]', 'actions = ["delete"]'),
     "policy.toml: rules[0] (\"csam-hash\"): actions[0]: Input should be 'remove', 'disable_in_territories', "
     "'age_restrict', 'demote', 'not_recommended', 'label', 'strike', 'suspend_temporarily' or "
     "'suspend_permanently' (got 'delete')"),
    (replace("severity = 5", "severity = 5\nqueue = \"childsafety\""),
     "policy.toml: rules[0] (\"csam-hash\"): queue: no queue named 'childsafety'; defined: child_safety, general"),
    (replace("severity = 5", "severity = 5\nqueue = \"general\""),
     "policy.toml: rules[0] (\"csam-hash\"): queue: 'csam' rules must go to a restricted queue; "
     "'general' is not restricted"),
    (replace('default_queue = "general"', 'default_queue = "main"'),
     "policy.toml: default_queue: no queue named 'main'; defined: child_safety, general"),
    (replace('default_queue = "general"', 'default_queue = "child_safety"'),
     "policy.toml: default_queue: 'child_safety' is restricted; unrouted content would be hidden from most moderators"),
    (lambda t: t.replace('categories = ["csam"]', 'categories = ["csam", "hate_speech"]', 1)
     .replace('sla_minutes = 1440', 'sla_minutes = 1440\ncategories = ["hate_speech"]', 1),
     "policy.toml: queues[1] (\"general\"): categories: category 'hate_speech' is routed to queue 'child_safety' "
     "already"),
    (replace('sla_minutes = 1440', 'sla_minutes = 1440\ncontent_types = []'),
     "policy.toml: queues[1] (\"general\"): content_types: List should have at least 1 item after validation, "
     "not 0"),
    (extra_rule('name = "geo"\ncategory = "hate_speech"\nwhen.min_views = 1\nverdict = "block"\n'
                'actions = ["disable_in_territories"]\nseverity = 2\n'),
     "policy.toml: rules[1] (\"geo\"): territories: action 'disable_in_territories' needs territories"),
    (extra_rule('name = "geo"\ncategory = "hate_speech"\nwhen.min_views = 1\nverdict = "block"\n'
                'actions = ["disable_in_territories"]\nterritories = ["DE", "de"]\nseverity = 2\n'),
     "policy.toml: rules[1] (\"geo\"): territories[1]: 'de' is not an ISO 3166-1 alpha-2 code "
     "(two capital letters, e.g. DE)"),
    (extra_rule('name = "geo"\ncategory = "hate_speech"\nwhen.account_countries = ["XX"]\nverdict = "block"\n'
                'actions = ["disable_in_territories"]\nterritories = ["DE"]\nseverity = 2\n'),
     "policy.toml: rules[1] (\"geo\"): when.account_countries[0]: 'XX' is not an ISO 3166-1 alpha-2 code "
     "(two capital letters, e.g. DE)"),
    (extra_rule('name = "geo"\ncategory = "hate_speech"\nwhen.min_views = 1\nverdict = "block"\n'
                'actions = ["disable_in_territories"]\nterritories = ["ZZ"]\nseverity = 2\n'),
     "policy.toml: rules[1] (\"geo\"): territories[0]: 'ZZ' is not an ISO 3166-1 alpha-2 code "
     "(two capital letters, e.g. DE)"),
    (extra_rule('name = "geo"\ncategory = "hate_speech"\nwhen.min_views = 1\nverdict = "block"\n'
                'actions = ["remove"]\nterritories = ["DE"]\nseverity = 2\n'),
     "policy.toml: rules[1] (\"geo\"): territories: territories are only for action 'disable_in_territories'"),
    (extra_rule('name = "lbl"\ncategory = "disinformation"\nwhen.min_views = 1\nverdict = "block"\n'
                'actions = ["label"]\nseverity = 2\n'),
     "policy.toml: rules[1] (\"lbl\"): label: action 'label' needs the label text"),
    (extra_rule('name = "soft"\ncategory = "hate_speech"\nwhen.min_views = 1\nverdict = "block"\n'
                'actions = ["remove"]\nwhile_in_review = ["demote"]\nseverity = 2\n'),
     "policy.toml: rules[1] (\"soft\"): while_in_review: only a 'review' rule can publish with limits while in review"),
    (extra_rule('name = "soft"\ncategory = "hate_speech"\nwhen.min_views = 1\nverdict = "review"\n'
                'actions = ["remove"]\nwhile_in_review = ["remove"]\nseverity = 2\n'),
     "policy.toml: rules[1] (\"soft\"): while_in_review: 'remove' is not a limit to publish under; use "
     "age_restrict, demote, not_recommended"),
    (replace("view_thresholds = [100, 1000]", "view_thresholds = [100, 1000, 1000]"),
     "policy.toml: view_thresholds[2]: 1000 does not exceed 1000: thresholds must be strictly increasing"),
    (replace("view_thresholds = [100, 1000]", "view_thresholds = [1000, 100]"),
     "policy.toml: view_thresholds[1]: 100 does not exceed 1000: thresholds must be strictly increasing"),
    (replace("view_thresholds = [100, 1000]", "view_thresholds = [0, 1000]"),
     "policy.toml: view_thresholds[0]: Input should be greater than 0 (got 0)"),
    (replace("permanent_suspension_at = 4", "permanent_suspension_at = 2"),
     "policy.toml: strikes.permanent_suspension_at: must be greater than temporary_suspension_at (2), got 2"),
    (replace("severity = 5", "severity = 6"),
     'policy.toml: rules[0] ("csam-hash"): severity: Input should be less than or equal to 5 (got 6)'),
    (replace('category = "csam"\nwhen', 'category = "child_abuse"\nwhen'),
     "policy.toml: rules[0] (\"csam-hash\"): category: Input should be 'terrorist_content', 'csam', "
     "'violent_extremism', 'hate_speech', 'disinformation' or 'borderline' (got 'child_abuse')"),
    (replace('verdict = "block"', 'verdict = "block"\nmode = "shade"'),
     "policy.toml: rules[0] (\"csam-hash\"): mode: Input should be 'enforce' or 'shadow' (got 'shade')"),
    (replace('when.bank_match.banks = ["CSAM_KNOWN"]', "when = {}"),
     'policy.toml: rules[0] ("csam-hash"): when: a condition needs at least one of: bank_match, classifier, '
     "content_types, max_user_age_years, min_views, account_countries"),
    (replace('when.bank_match.banks = ["CSAM_KNOWN"]', 'when.bank_match.banks = ["csam_known"]'),
     "policy.toml: rules[0] (\"csam-hash\"): when.bank_match.banks[0]: 'csam_known': bank names are capital "
     "letters, digits and _ (e.g. CSAM_KNOWN)"),
    (replace('when.bank_match.banks = ["CSAM_KNOWN"]', "when.classifier = { name = 'nsfw', min_score = 1.5 }"),
     'policy.toml: rules[0] ("csam-hash"): when.classifier.min_score: Input should be less than or equal to 1 '
     "(got 1.5)"),
    (replace('when.bank_match.banks = ["CSAM_KNOWN"]', 'when.content_types = ["audio"]'),
     "policy.toml: rules[0] (\"csam-hash\"): when.content_types[0]: Input should be 'image', 'video' or 'text' "
     "(got 'audio')"),
    (replace('severity = 5', ''),
     'policy.toml: rules[0] ("csam-hash"): severity: required field missing'),
    (replace('version = "1"', "version = 1"),
     "policy.toml: version: Input should be a valid string (got 1)"),
])
def test_validation_errors_name_the_rule_and_field(edit: Callable[[str], str], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(edit(MINIMAL), source="policy.toml")
    assert caught.value.problems == [message]
    assert str(caught.value) == message


def test_problems_in_different_places_are_reported_together() -> None:
    text = extra_rule('name = "geo"\ncategory = "hate_speech"\nwhen.min_views = 1\nverdict = "block"\n'
                      'severity = 2\nqueue = "nowhere"\n')(MINIMAL).replace("permanent_suspension_at = 4",
                                                                           "permanent_suspension_at = 1")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="p.toml")
    assert caught.value.problems == [
        "p.toml: rules[1] (\"geo\"): verdict 'block' needs at least one action",
        "p.toml: strikes.permanent_suspension_at: must be greater than temporary_suspension_at (2), got 1",
    ]


def test_toml_syntax_errors_give_the_line() -> None:
    text = MINIMAL.replace("severity = 5", "severity = ")
    line = text.splitlines().index("severity = ") + 1
    with pytest.raises(PolicyError, match=rf"^policy.toml: invalid TOML: .*\(at line {line}, column \d+\)$"):
        parse_policy(text, source="policy.toml")


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope.toml: cannot read the policy"):
        load_policy(tmp_path / "nope.toml")


def test_policy_models_are_frozen(default: Policy) -> None:
    with pytest.raises(ValueError, match="frozen"):
        default.rules[0].severity = 1


# --- evaluation ------------------------------------------------------------------------------------------------------

CSAM_HASH = bank("CSAM_KNOWN", "csam_known", 0, restricted=True)  # a restricted bank: policy follows the flag
TERROR_EXACT = bank("TERRORIST_CONTENT", "terrorist_content", 0)
TERROR_NEAR = bank("TERRORIST_CONTENT", "terrorist_content", 24)


@pytest.mark.parametrize(("facts", "verdict", "rule", "queue", "actions"), [
    (video(), Verdict.ALLOW, None, None, []),
    (video(matches=[CSAM_HASH]), Verdict.BLOCK, "csam-known-hash", "child_safety", [Action.REMOVE, Action.STRIKE]),
    (video(matches=[TERROR_EXACT]), Verdict.BLOCK, "terror-known-close", "terrorism", [Action.REMOVE]),
    (video(matches=[bank("TERRORIST_CONTENT", "terrorist_content", 10)]),
     Verdict.BLOCK, "terror-known-close", "terrorism", [Action.REMOVE]),  # the distance limit is inclusive
    (video(matches=[bank("TERRORIST_CONTENT", "terrorist_content", 11)]),
     Verdict.REVIEW, "terror-known-near", "terrorism", [Action.REMOVE]),
    (video(matches=[TERROR_NEAR, TERROR_EXACT]), Verdict.BLOCK, "terror-known-close", "terrorism", [Action.REMOVE]),
    (video(scores={"terror_text": 0.89}), Verdict.ALLOW, None, None, []),
    (video(scores={"terror_text": 0.9}), Verdict.REVIEW, "terror-text-review", "terrorism", [Action.REMOVE]),
    (video(scores={"terror_text": 0.99}), Verdict.REVIEW, "terror-text-review", "terrorism", [Action.REMOVE]),
    (video(scores={"terror_text": 0.7}, user_age_years=15),
     Verdict.REVIEW, "terror-text-minor-uploader", "youth", [Action.REMOVE]),
    (video(scores={"terror_text": 0.7}, user_age_years=18), Verdict.ALLOW, None, None, []),
    (video(scores={"terror_text": 0.7}), Verdict.ALLOW, None, None, []),  # unknown age: not treated as a minor
    (video(scores={"hate_speech": 0.9}), Verdict.REVIEW, "hate-speech-review", "general",
     [Action.REMOVE, Action.DEMOTE]),
    (video(scores={"violent_extremism": 0.95}), Verdict.REVIEW, "violent-extremism-review", "terrorism",
     [Action.REMOVE, Action.AGE_RESTRICT]),
    (video(scores={"borderline": 0.85}), Verdict.BLOCK, "borderline-not-recommended", "general",
     [Action.NOT_RECOMMENDED]),
    (Facts(ContentType.TEXT, scores={"borderline": 0.85}), Verdict.ALLOW, None, None, []),  # videos and images only
    (video(scores={"disinformation": 0.9}, views=9_999), Verdict.ALLOW, None, None, []),
    (video(scores={"disinformation": 0.9}, views=10_000), Verdict.REVIEW, "disinformation-viral-review", "general",
     [Action.DEMOTE, Action.LABEL]),
    (video(matches=[bank("EXTREMIST_SYMBOLS", "violent_extremism", 3)]), Verdict.BLOCK, "extremist-symbols-geo",
     "terrorism", [Action.DISABLE_IN_TERRITORIES]),
])
def test_default_policy_decisions(default: Policy, facts: Facts, verdict: Verdict, rule: str | None,
                                  queue: str | None, actions: list[Action]) -> None:
    decision = evaluate(default, facts)
    assert (decision.verdict, decision.rule, decision.queue, decision.actions) == (verdict, rule, queue, actions)
    assert decision.policy == default.label
    if rule is not None:
        assert decision.reasons[0].rule == rule and decision.category == default.rule(rule).category


def test_csam_goes_to_the_restricted_queue(default: Policy) -> None:
    decision = evaluate(default, video(matches=[CSAM_HASH]))
    assert decision.restricted and decision.queue == "child_safety"
    assert decision.category is Category.CSAM and decision.severity == 5
    assert [str(r) for r in decision.reasons] == [
        "csam-known-hash (csam): matched bank CSAM_KNOWN (csam_known) at distance 0",
    ]


def test_territories_and_label_come_with_the_decision(default: Policy) -> None:
    geo = evaluate(default, video(matches=[bank("EXTREMIST_SYMBOLS", "violent_extremism", 3)]))
    assert geo.territories == ["AT", "DE"] and geo.label is None
    labelled = evaluate(default, video(matches=[bank("FACT_CHECKS", "disinformation", 2)]))
    assert labelled.actions == [Action.NOT_RECOMMENDED, Action.LABEL]
    assert labelled.label == "Independent fact-checkers found this media to be altered or presented out of context."


PRECEDENCE = parse_policy(MINIMAL + """
[[rules]]
name = "views-allow"
category = "borderline"
when.min_views = 1
verdict = "allow"
severity = 1

[[rules]]
name = "hate-review"
category = "hate_speech"
when.classifier = { name = "hate", min_score = 0.5 }
verdict = "review"
actions = ["demote"]
severity = 3

[[rules]]
name = "hate-review-severe"
category = "hate_speech"
when.classifier = { name = "hate", min_score = 0.8 }
verdict = "review"
actions = ["remove"]
severity = 4

[[rules]]
name = "csam-classifier-review"
category = "csam"
when.classifier = { name = "csam", min_score = 0.5 }
verdict = "review"
severity = 5

[[rules]]
name = "geo-de"
category = "violent_extremism"
when.bank_match = { categories = ["violent_extremism"] }
verdict = "block"
actions = ["disable_in_territories"]
territories = ["DE"]
severity = 2

[[rules]]
name = "geo-at-fr"
category = "violent_extremism"
when.bank_match = { categories = ["violent_extremism"], max_distance = 5 }
verdict = "block"
actions = ["disable_in_territories", "label"]
territories = ["FR", "AT"]
label = "Restricted in some countries."
severity = 2

[[rules]]
name = "shadow-block"
category = "hate_speech"
mode = "shadow"
when.classifier = { name = "hate", min_score = 0.5 }
verdict = "block"
actions = ["remove", "strike"]
severity = 5
""", source="precedence")

EXTREMISM = bank("SYMBOLS", "violent_extremism", 2)


@pytest.mark.parametrize(("facts", "verdict", "rule", "severity", "actions", "held"), [
    (video(), Verdict.ALLOW, None, 0, [], []),
    (video(views=5), Verdict.ALLOW, "views-allow", 1, [], ["views-allow"]),
    (video(views=5, scores={"hate": 0.6}), Verdict.REVIEW, "hate-review", 3, [Action.DEMOTE],
     ["hate-review", "views-allow"]),
    # the more severe rule of the same verdict decides; the actions of both are offered
    (video(scores={"hate": 0.9}), Verdict.REVIEW, "hate-review-severe", 4, [Action.REMOVE, Action.DEMOTE],
     ["hate-review-severe", "hate-review"]),
    (video(scores={"hate": 0.9}, matches=[CSAM_HASH]), Verdict.BLOCK, "csam-hash", 5,
     [Action.REMOVE, Action.STRIKE], ["csam-hash", "hate-review-severe", "hate-review"]),
    # a tie on severity: the first rule in the file decides; territories and actions are gathered
    (video(matches=[EXTREMISM]), Verdict.BLOCK, "geo-de", 2, [Action.DISABLE_IN_TERRITORIES, Action.LABEL],
     ["geo-de", "geo-at-fr"]),
    (video(matches=[bank("SYMBOLS", "violent_extremism", 6)]), Verdict.BLOCK, "geo-de", 2,
     [Action.DISABLE_IN_TERRITORIES], ["geo-de"]),
])
def test_precedence_block_over_review_over_allow(facts: Facts, verdict: Verdict, rule: str | None, severity: int,
                                                 actions: list[Action], held: list[str]) -> None:
    decision = evaluate(PRECEDENCE, facts)
    assert (decision.verdict, decision.rule, decision.severity, decision.actions) == (verdict, rule, severity, actions)
    assert [r.rule for r in decision.reasons] == held
    assert decision.queue is None if verdict is Verdict.ALLOW else decision.queue is not None


def test_a_queue_taking_csam_must_be_restricted() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(MINIMAL.replace("restricted = true\n", "", 1), source="policy.toml")
    assert "policy.toml: queues[0] (\"child_safety\"): categories: queues that take 'csam' must be restricted" \
        in caught.value.problems


ROUTED = parse_policy(MINIMAL.replace('[[queues]]\nname = "general"', """[[queues]]
name = "hate-minors"
categories = ["hate_speech"]
max_user_age_years = 18
sla_minutes = 240

[[queues]]
name = "hate-video-severe"
categories = ["hate_speech"]
content_types = ["video"]
min_severity = 4
sla_minutes = 120

[[queues]]
name = "hate"
categories = ["hate_speech"]
sla_minutes = 720

[[queues]]
name = "general\"""", 1), source="routing")


@pytest.mark.parametrize(("routing", "queue"), [
    (Routing(3, ContentType.VIDEO, 15.0), "hate-minors"),  # first match in file order wins
    (Routing(4, ContentType.VIDEO, 30.0), "hate-video-severe"),
    (Routing(3, ContentType.VIDEO, 30.0), "hate"),  # not severe enough
    (Routing(5, ContentType.IMAGE, 30.0), "hate"),  # not a video
    (Routing(5, ContentType.VIDEO, None), "hate-video-severe"),
    (Routing(2, ContentType.TEXT, None), "hate"),  # age unknown: never routed as a minor
])
def test_queues_route_by_category_severity_content_type_and_uploader_age(routing: Routing, queue: str) -> None:
    assert ROUTED.route(Category.HATE_SPEECH, routing).name == queue
    assert ROUTED.route(Category.DISINFORMATION, routing).name == "general"  # no queue takes it: the default


def test_csam_needs_a_queue_without_filters() -> None:
    filtered = MINIMAL.replace('restricted = true\n', 'restricted = true\ncontent_types = ["image", "video"]\n', 1)
    with pytest.raises(PolicyError) as caught:
        parse_policy(filtered, source="policy.toml")
    assert "policy.toml: queues: no queue takes 'csam' without filters: some reports of child sexual abuse would " \
        "reach the default queue; add a restricted queue for it" in caught.value.problems


def test_the_review_kept_under_a_geo_block_goes_to_the_restricted_queue_when_one_rule_says_so() -> None:
    decision = evaluate(PRECEDENCE, video(matches=[EXTREMISM], scores={"hate": 0.9, "csam": 0.7}))
    assert decision.verdict is Verdict.BLOCK and decision.queue == "child_safety"
    assert decision.also_review is not None and decision.also_review_queue == "child_safety"


def test_a_review_rule_can_publish_with_limits_while_the_strictest_holds() -> None:
    soft = parse_policy(MINIMAL + """
[[rules]]
name = "hate-soft"
category = "hate_speech"
when.classifier = { name = "hate", min_score = 0.5 }
verdict = "review"
actions = ["remove"]
while_in_review = ["not_recommended", "age_restrict"]
severity = 3

[[rules]]
name = "hate-hold"
category = "hate_speech"
when.classifier = { name = "hate", min_score = 0.9 }
verdict = "review"
actions = ["remove"]
severity = 3
""", source="soft")
    assert evaluate(soft, video(scores={"hate": 0.6})).while_in_review == [Action.AGE_RESTRICT,
                                                                          Action.NOT_RECOMMENDED]
    assert evaluate(soft, video(scores={"hate": 0.95})).while_in_review == []  # one rule says hold: hold
    assert evaluate(soft, video(scores={"hate": 0.95})).verdict is Verdict.REVIEW


def test_a_block_that_only_restricts_keeps_the_review_another_rule_asked_for() -> None:
    decision = evaluate(PRECEDENCE, video(matches=[EXTREMISM], scores={"hate": 0.9}))
    assert decision.verdict is Verdict.BLOCK and decision.rule == "geo-de"
    assert decision.also_review is not None and decision.also_review.rule == "hate-review-severe"
    assert decision.also_review_queue == "general"
    removing = evaluate(PRECEDENCE, video(matches=[CSAM_HASH], scores={"hate": 0.9}))
    assert removing.also_review is None  # removed at once: nothing left to review


def test_territories_are_the_union_of_the_winning_rules() -> None:
    decision = evaluate(PRECEDENCE, video(matches=[EXTREMISM]))
    assert decision.territories == ["AT", "DE", "FR"]
    assert decision.label == "Restricted in some countries."


def test_restricted_queue_wins_whatever_decides_the_verdict() -> None:
    # a block from a general-queue rule must not pull suspected child abuse material into the general queue
    decision = evaluate(PRECEDENCE, video(matches=[EXTREMISM], scores={"csam": 0.7}))
    assert decision.verdict is Verdict.BLOCK and decision.rule == "geo-de"
    assert decision.queue == "child_safety" and decision.restricted


@pytest.mark.parametrize("facts", [
    video(scores={"hate": 0.6}),
    video(scores={"hate": 0.99}, views=5),
    video(scores={"hate": 0.6}, matches=[CSAM_HASH]),
])
def test_shadow_rules_are_reported_but_never_change_the_verdict(facts: Facts) -> None:
    enforced_only = PRECEDENCE.model_copy(update={"rules": [r for r in PRECEDENCE.rules if r.mode is Mode.ENFORCE]})
    decision = evaluate(PRECEDENCE, facts)
    baseline = evaluate(enforced_only, facts)
    assert decision.shadow == ["shadow-block"]
    assert [(r.rule, r.verdict, r.shadow) for r in decision.shadow_reasons] == [("shadow-block", Verdict.BLOCK, True)]
    assert (decision.verdict, decision.rule, decision.actions, decision.queue, decision.reasons) == (
        baseline.verdict, baseline.rule, baseline.actions, baseline.queue, baseline.reasons)
    assert baseline.shadow == []


def test_a_shadow_rule_alone_allows(default: Policy) -> None:
    policy = default.model_copy(update={"rules": [default.rule("terror-text-autoblock")]})
    decision = evaluate(policy, video(scores={"terror_text": 0.99}))
    assert decision == Decision.allow(policy.label, decision.shadow_reasons)
    assert decision.shadow == ["terror-text-autoblock"]
    assert str(decision.shadow_reasons[0]) == (
        "terror-text-autoblock (terrorist_content): classifier terror_text scored 0.99 (threshold 0.98)")


CONDITIONS = """
[[rules]]
name = "r"
category = "hate_speech"
verdict = "review"
severity = 2
"""


@pytest.mark.parametrize(("when", "facts", "holds", "description"), [
    ('when.bank_match = {}', video(matches=[bank("ANY", "")]), True, "matched bank ANY at distance 0"),
    ('when.bank_match = {}', video(), False, "a match in any bank"),
    ('when.bank_match = { banks = ["AA", "BB"], max_distance = 3 }',
     video(matches=[bank("BB", "x", 9), bank("AA", "y", 2)]), True, "matched bank AA (y) at distance 2"),
    ('when.bank_match = { banks = ["AA", "BB"], max_distance = 3 }', video(matches=[bank("BB", "x", 4)]),
     False, "a match in bank AA, BB within distance 3"),
    ('when.bank_match = { categories = ["hate_speech"] }', video(matches=[bank("A", "csam")]),
     False, "a match in any bank (hate_speech)"),
    ('when.classifier = { name = "hate", min_score = 0.5 }', video(scores={"hate": 0.5}),
     True, "classifier hate scored 0.50 (threshold 0.50)"),
    ('when.classifier = { name = "hate", min_score = 0.5 }', video(scores={"other": 0.9}),
     False, "classifier hate scores at least 0.50"),
    ('when.content_types = ["image", "text"]', Facts(ContentType.IMAGE), True, "content type image"),
    ('when.content_types = ["image", "text"]', video(), False, "content type image or text"),
    ("when.max_user_age_years = 18", video(user_age_years=17.9), True, "uploader aged 17.9 (under 18)"),
    ("when.max_user_age_years = 18", video(user_age_years=18), False, "uploader aged 18 (under 18)"),
    ("when.max_user_age_years = 18", video(), False, "uploader under 18"),
    ("when.min_views = 10_000", video(views=12_000), True, "12,000 views (at least 10,000)"),
    ("when.min_views = 10_000", video(views=9_999), False, "9,999 views (at least 10,000)"),
    ('when.account_countries = ["DE", "AT"]', video(account_country="de"), True, "account in DE"),
    ('when.account_countries = ["DE", "AT"]', video(), False, "account in DE, AT"),
    ('when.classifier = { name = "hate", min_score = 0.5 }\nwhen.max_user_age_years = 16',
     video(scores={"hate": 0.7}, user_age_years=14), True,
     "classifier hate scored 0.70 (threshold 0.50) and uploader aged 14 (under 16)"),
    ('when.classifier = { name = "hate", min_score = 0.5 }\nwhen.max_user_age_years = 16',
     video(scores={"hate": 0.7}, user_age_years=30), False,
     "classifier hate scored 0.70 (threshold 0.50) and uploader aged 30 (under 16)"),
])
def test_condition_parts(when: str, facts: Facts, holds: bool, description: str) -> None:
    policy = parse_policy(MINIMAL + CONDITIONS + when + "\n")
    rule = policy.rule("r")
    assert rule.holds(facts) is holds
    assert rule.when.describe(facts) == description
    # a bank match the rule does not take is still reviewed (Bastion's unhandled-match rule): never let through
    assert evaluate(policy, facts).verdict is (Verdict.REVIEW if holds or facts.matches else Verdict.ALLOW)


def test_a_condition_describes_itself_without_facts(default: Policy) -> None:
    assert default.rule("terror-known-close").when.describe() == "a match in any bank (terrorist_content) within " \
                                                                 "distance 10"
    assert default.rule("disinformation-viral-review").when.describe() == (
        "classifier disinformation scores at least 0.80 and at least 10,000 views")


def test_match_facts_mirror_matcher_matches() -> None:
    match = Match("CSAM_KNOWN", 7, "pdq", "csam_known", 3, "ab" * 32, variant=True, restricted=True)
    assert MatchFact.from_match(match) == MatchFact("CSAM_KNOWN", "csam_known", 3, "pdq", restricted=True)


# --- views and strikes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("before", "after", "crossed"), [
    (0, 9_999, []),
    (0, 10_000, [10_000]),
    (9_999, 10_001, [10_000]),
    (10_000, 10_500, []),  # crossed already, on an earlier update
    (5_000, 2_000_000, [10_000, 100_000, 1_000_000]),
    (150_000, 150_000, []),
    (2_000_000, 5_000, []),  # a decrease (views recounted) crosses nothing
    (1_000_000, 99_000_000, []),
])
def test_views_crossed(default: Policy, before: int, after: int, crossed: list[int]) -> None:
    assert views_crossed(default, before, after) == crossed


@pytest.mark.parametrize(("strikes", "outcome"), [
    (0, None),
    (2, None),
    (3, Action.SUSPEND_TEMPORARILY),
    (4, Action.SUSPEND_TEMPORARILY),
    (5, Action.SUSPEND_PERMANENTLY),
    (9, Action.SUSPEND_PERMANENTLY),
])
def test_strike_outcome(default: Policy, strikes: int, outcome: Action | None) -> None:
    assert strike_outcome(default, strikes) is outcome
    assert default.strikes.temporary_suspension_days == 14


# --- reloading -------------------------------------------------------------------------------------------------------


def test_policy_file_reloads_on_change_and_keeps_the_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(MINIMAL)
    source = PolicyFile(path, check_every=0)  # look at the file on every read
    assert source.policy.version == "1" and source.reload() is False

    path.write_text(MINIMAL.replace('version = "1"', 'version = "2"') + "\n# a longer file\n")
    assert source.policy.version == "2" and source.error is None

    path.write_text(MINIMAL.replace('version = "1"', 'version = "3"').replace("severity = 5", "severity = 9") + "\n\n")
    assert source.reload() is False
    assert source.policy.version == "2"
    assert source.error is not None and "severity: Input should be less than or equal to 5 (got 9)" in source.error

    path.write_text(MINIMAL.replace('version = "1"', 'version = "4"'))
    assert source.reload(force=True) is True
    assert source.policy.version == "4" and source.error is None


def test_policy_file_is_looked_at_once_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(MINIMAL)
    source = PolicyFile(path, check_every=3600)
    path.write_text(MINIMAL.replace('version = "1"', 'version = "2"') + "\n# a longer file\n")
    assert source.policy.version == "1"  # not looked at again within the interval
    assert source.reload() is True and source.policy.version == "2"


def test_policy_file_needs_a_valid_first_load(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("name = ")
    with pytest.raises(PolicyError, match="invalid TOML"):
        PolicyFile(path)
