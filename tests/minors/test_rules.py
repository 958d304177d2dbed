"""The rules file: validated on load, refused below the floor, shadow rules, live reload; the floor as properties."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from bastion.minors.rules import DEFAULT_RULES_PATH, Facts, RuleSet, RulesFile, load_rules, parse_rules

DEFAULT_TEXT = DEFAULT_RULES_PATH.read_text()
DEFAULTS_ONLY = DEFAULT_TEXT[DEFAULT_TEXT.index("[grooming]"):]
HEAD = 'name = "t"\nversion = "1"\n'


def _rule(rid: str, actions: list[str], decision: str, **extra: object) -> str:
    lines = [f'[[rules]]\nid = "{rid}"\nactions = {actions!r}\ndecision = "{decision}"\nexplanation = "x"'.replace(
        "'", '"')]
    for key, value in extra.items():
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return f'"{value}"'


def _file(*rules: str, default: str = "allow") -> str:
    return HEAD + f'default = "{default}"\n' + "".join(rules) + DEFAULTS_ONLY


def test_the_default_rules_load_and_decide_the_briefing() -> None:
    rules = load_rules(DEFAULT_RULES_PATH)
    dm = rules.decide(Action.DM, Facts(Band.ADULT, Band.B13_15))
    assert (dm.decision, dm.rule, dm.floor) == (Decision.DENY, "floor-adult-dm-unconnected-under-16", True)
    assert rules.decide(Action.DM, Facts(Band.B13_15, Band.B13_15, True, True)).rule == "dm-under-16-off"
    assert rules.decide(Action.DM, Facts(Band.B16_17, Band.B16_17)).rule == "dm-16-17-mutual"
    assert rules.decide(Action.DM, Facts(Band.B16_17, Band.B16_17, True, True)).decision is Decision.ALLOW
    assert rules.decide(Action.DM_MEDIA, Facts(Band.B16_17, Band.B16_17, True, True)).rule == "floor-media-to-minor"
    assert rules.decide(Action.LIVE, Facts(Band.B16_17, None)).rule == "live-from-18"
    assert rules.decide(Action.LIVE, Facts(Band.ADULT, None)).decision is Decision.ALLOW
    assert rules.decide(Action.DOWNLOAD, Facts(Band.ADULT, Band.B16_17)).rule == "no-download-of-minors"
    assert rules.decide(Action.COMMENT, Facts(Band.ADULT, Band.ADULT, audience=Audience.NOBODY)).rule == \
        "comments-closed"
    assert rules.decide(Action.ADD_TO_GROUP, Facts(Band.ADULT, Band.B16_17, group_consent=True)).decision is \
        Decision.ALLOW
    assert rules.decide(Action.VIEW, Facts(Band.UNKNOWN, Band.ADULT, age_restricted=True)).rule == \
        "age-restricted-from-18"
    # every action the issue names has at least one rule about it (notify: quiet hours, from the account's settings)
    assert {a for r in rules.rules for a in r.actions} >= set(Action) - {Action.FOLLOW, Action.NOTIFY}


def test_a_shadow_rule_is_reported_never_applied() -> None:
    verdict = load_rules(DEFAULT_RULES_PATH).decide(Action.MENTION, Facts(Band.ADULT, Band.B16_17))
    assert verdict.decision is Decision.ALLOW
    assert verdict.shadow == ("adult-mentions-minor",)


def test_a_file_that_allows_adults_to_message_unconnected_under_16s_is_refused() -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules(_file(_rule("open-dms", ["dm"], "allow")), source="platform.toml")
    assert "platform.toml: rules[0] (open-dms) would allow what Bastion's floor forbids" in str(refused.value)
    assert "floor-adult-dm-unconnected-under-16" in str(refused.value)


def test_a_file_that_allows_media_to_minors_is_refused_even_between_friends() -> None:
    with pytest.raises(RulesError, match="floor-media-to-minor"):
        parse_rules(_file(_rule("media", ["dm_media"], "allow", targets=["16_17"], when={"mutual": True})))


def test_an_allow_that_the_floor_cannot_meet_loads() -> None:
    rules = parse_rules(_file(_rule("friends-dm", ["dm"], "allow", when={"mutual": True}),
                              _rule("adults", ["dm", "dm_media"], "allow", targets=["18_plus"]), default="deny"))
    assert rules.decide(Action.DM, Facts(Band.ADULT, Band.B13_15, True, True)).decision is Decision.ALLOW
    assert rules.decide(Action.DM, Facts(Band.ADULT, Band.B13_15)).floor


def test_defaults_below_the_floor_are_refused() -> None:
    text = _file().replace('[defaults.13_15]\nprivate_account = true', '[defaults.13_15]\nprivate_account = false')
    with pytest.raises(RulesError, match=r"defaults\.13_15\.private_account = false is below Bastion's floor"):
        parse_rules(text)


def test_mistakes_are_named() -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules(_file(_rule("x", ["wave"], "allow"), _rule("floor-mine", ["dm"], "deny")), source="f.toml")
    text = str(refused.value)
    assert "f.toml: rules.0.actions.0" in text
    with pytest.raises(RulesError, match="ids starting 'floor-' are Bastion's own"):
        parse_rules(_file(_rule("floor-mine", ["dm"], "deny")))
    with pytest.raises(RulesError, match="band 'unknown' is missing"):
        text = _file()
        start = text.index("[defaults.unknown]")
        parse_rules(text[:start] + text[text.index("[defaults.18_plus]"):])
    with pytest.raises(RulesError, match="invalid TOML"):
        parse_rules("name = ")


def test_the_file_is_reloaded_and_a_broken_edit_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(_file())
    live = RulesFile(path, check_every=0)
    assert live.rules.decide(Action.LIVE, Facts(Band.B16_17, None)).decision is Decision.ALLOW
    path.write_text(_file(_rule("no-live", ["live"], "deny", actors=["16_17"])))
    os.utime(path, ns=(1, 10**18))
    assert live.rules.decide(Action.LIVE, Facts(Band.B16_17, None)).rule == "no-live"
    path.write_text(_file(_rule("open", ["dm"], "allow")))
    os.utime(path, ns=(1, 2 * 10**18))
    assert live.rules.decide(Action.LIVE, Facts(Band.B16_17, None)).rule == "no-live"
    assert live.error is not None and "floor" in live.error


# --- the floor, as properties over random accounts and random rule files ------------------------------------------

bands = st.sampled_from(list(Band))
audiences = st.none() | st.sampled_from(list(Audience))
facts = st.builds(Facts, actor=bands, target=bands, follows=st.booleans(), followed_by=st.booleans(),
                  conversation=st.booleans(), group_consent=st.booleans(), age_restricted=st.booleans(),
                  borderline=st.booleans(), audience=audiences)
conditions = st.fixed_dictionaries({}, optional={
    "mutual": st.booleans(), "follows": st.booleans(), "followed_by": st.booleans(), "conversation": st.booleans(),
    "group_consent": st.booleans(), "age_restricted": st.booleans(),
    "audience": st.lists(st.sampled_from([a.value for a in Audience]), min_size=1, max_size=2, unique=True)})
band_lists = st.none() | st.lists(st.sampled_from([b.value for b in Band]), min_size=1, max_size=5, unique=True)
rule_specs = st.tuples(st.lists(st.sampled_from([a.value for a in Action]), min_size=1, max_size=4, unique=True),
                       band_lists, band_lists, conditions, st.sampled_from(["allow", "deny"]),
                       st.sampled_from(["enforce", "shadow"]))


def _random_file(specs: list[tuple[list[str], list[str] | None, list[str] | None, dict[str, object], str, str]],
                 default: str) -> str:
    rules = []
    for i, (actions, actors, targets, when, decision, mode) in enumerate(specs):
        extra: dict[str, object] = {"mode": mode}
        if actors:
            extra["actors"] = actors
        if targets:
            extra["targets"] = targets
        if when:
            extra["when"] = when
        rules.append(_rule(f"r{i}", actions, decision, **extra))
    return _file(*rules, default=default)


def _load(text: str) -> RuleSet | None:
    try:
        return parse_rules(text)
    except RulesError as exc:
        assert all("floor" in p for p in exc.problems), exc.problems  # refused only for the floor
        return None


def _floor_denies(action: Action, f: Facts) -> bool:
    adult_to_unconnected_child = (action in {Action.DM, Action.DM_MEDIA} and f.actor in ADULT_PLAUSIBLE
                                  and f.target in UNDER_16_BANDS and not f.mutual)
    media_to_minor = action is Action.DM_MEDIA and f.target in MINOR_BANDS
    return adult_to_unconnected_child or media_to_minor


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(rule_specs, max_size=6), default=st.sampled_from(["allow", "deny"]),
       checks=st.lists(st.tuples(st.sampled_from(list(Action)), facts), min_size=1, max_size=20))
def test_no_rule_file_goes_below_the_floor(specs: list[tuple[list[str], list[str] | None, list[str] | None,
                                                             dict[str, object], str, str]],
                                           default: str, checks: list[tuple[Action, Facts]]) -> None:
    """Whatever a file says, if it loads, an adult never messages an unconnected under-16 and no minor gets media."""
    rules = _load(_random_file(specs, default))
    if rules is None:
        return
    for action, f in checks:
        if _floor_denies(action, f):
            verdict = rules.decide(action, f)
            assert verdict.decision is Decision.DENY and verdict.floor, (action, f, verdict)


#: Checks the floor denies: an adult (or unknown) messaging an unconnected under-16, or media to any minor.
floor_cases = st.one_of(
    st.tuples(st.sampled_from([Action.DM, Action.DM_MEDIA]),
              st.builds(Facts, actor=st.sampled_from(sorted(ADULT_PLAUSIBLE)),
                        target=st.sampled_from(sorted(UNDER_16_BANDS)),
                        follows=st.booleans(), followed_by=st.just(False), conversation=st.booleans(),
                        group_consent=st.booleans(), age_restricted=st.booleans(), borderline=st.booleans(),
                        audience=audiences)),
    st.tuples(st.just(Action.DM_MEDIA), facts.filter(lambda f: f.target in MINOR_BANDS)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=rule_specs, case=floor_cases)
def test_a_file_is_refused_when_one_of_its_allow_rules_meets_the_floor(
        spec: tuple[list[str], list[str] | None, list[str] | None, dict[str, object], str, str],
        case: tuple[Action, Facts]) -> None:
    """If an allow rule would hold for a check the floor denies, the file does not load: nobody reads a permission
    that does not exist."""
    action, f = case
    assert _floor_denies(action, f)
    rules = _load(_random_file([spec], "allow"))
    if rules is None:
        return
    (rule,) = rules.rules
    assert not (rule.decision is Decision.ALLOW and action in rule.actions and rule.matches(f)), (rule, f)


def test_docs_list_every_default_rule() -> None:
    """docs/minors.md's table is the reader's view of the defaults: a rule added to the file must appear there."""
    docs = (Path(__file__).parents[2] / "docs" / "minors.md").read_text()
    rules = load_rules(DEFAULT_RULES_PATH)
    assert [r.id for r in rules.rules if f"`{r.id}`" not in docs] == []
