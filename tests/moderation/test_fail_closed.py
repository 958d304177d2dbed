"""Policy follows what a match is, never a bank's name, and fails closed; the uploader hears what was found, not how.

The findings these tests close: a restricted bank called anything but ``CSAM_KNOWN`` let its matches through
(``allow``, ``published``, no report), because the policy named the bank; and statements of reasons and intake
answers named the restricted bank, the rule and the distance to the uploader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.moderation.policy import (
    DEFAULT_POLICY_PATH,
    Action,
    Category,
    ContentType,
    Facts,
    MatchFact,
    PolicyError,
    Verdict,
    evaluate,
    load_policy,
    parse_policy,
)
from bastion.reporting.models import ReportedFile
from bastion.reporting.services import draft_pending
from bastion.web.app import create_app
from tests.factories.media import make_image
from tests.moderation.test_flow import _bank, _pdq, _upload
from tests.moderation.test_policy import MINIMAL, extra_rule

Header = Callable[[Role], dict[str, str]]
NAMES_ONLY_CSAM_KNOWN = MINIMAL  # its csam rule names the bank CSAM_KNOWN and nothing else


def _restricted(bank: str, category: str = "csam", distance: int = 0) -> MatchFact:
    return MatchFact(bank, category, distance, "pdq", restricted=True)


@pytest.mark.parametrize("category", ["csam", "csam_a1", "", "unrelated"])
def test_a_restricted_match_is_blocked_whatever_the_bank_is_called(category: str) -> None:
    policy = parse_policy(NAMES_ONLY_CSAM_KNOWN)
    decision = evaluate(policy, Facts(ContentType.IMAGE, matches=[_restricted("NCMEC_HASHES", category)]))
    assert (decision.verdict, decision.category, decision.queue, decision.restricted) == (
        Verdict.BLOCK, Category.CSAM, "child_safety", True)
    assert decision.rule == "restricted-material" and Action.REMOVE in decision.actions


def test_the_default_policy_follows_the_restricted_flag_not_the_name() -> None:
    decision = evaluate(load_policy(DEFAULT_POLICY_PATH),
                        Facts(ContentType.IMAGE, matches=[_restricted("NCMEC_HASHES")]))
    assert (decision.verdict, decision.rule, decision.queue) == (Verdict.BLOCK, "csam-known-hash", "child_safety")
    assert decision.actions == [Action.REMOVE, Action.STRIKE]


def test_a_restricted_match_decides_even_beside_a_more_severe_looking_rule() -> None:
    terror_first = NAMES_ONLY_CSAM_KNOWN.replace("[[rules]]", """[[rules]]
name = "terror"
category = "terrorist_content"
when.bank_match = {}
verdict = "block"
actions = ["remove"]
severity = 5

[[rules]]""", 1)
    facts = Facts(ContentType.IMAGE, matches=[_restricted("NCMEC_HASHES")])
    decision = evaluate(parse_policy(terror_first), facts)
    assert (decision.category, decision.queue) == (Category.CSAM, "child_safety")  # reported, and seen only by CS


@pytest.mark.parametrize(("match", "queue", "category"), [
    (MatchFact("OTHER_BANK", "unrelated", 0, "pdq"), "general", Category.BORDERLINE),
    (MatchFact("OTHER_BANK", "", 5, "pdq"), "general", Category.BORDERLINE),
    (MatchFact("FACT_CHECKS", "disinformation", 20, "pdq"), "general", Category.DISINFORMATION),  # past max 10
])
def test_a_match_no_rule_deals_with_is_reviewed_not_allowed(match: MatchFact, queue: str,
                                                            category: Category) -> None:
    decision = evaluate(load_policy(DEFAULT_POLICY_PATH), Facts(ContentType.IMAGE, matches=[match]))
    assert (decision.verdict, decision.rule, decision.queue, decision.category) == (
        Verdict.REVIEW, "unhandled-match", queue, category)
    assert decision.while_in_review == []  # held, not published with limits


def test_an_explicit_allow_rule_still_decides_for_an_open_bank() -> None:
    allow_list = extra_rule('name = "known-good"\ncategory = "borderline"\n'
                            'when.bank_match.banks = ["SAFE_MEMES"]\nverdict = "allow"\nseverity = 1\n')
    policy = parse_policy(allow_list(MINIMAL))
    assert evaluate(policy, Facts(ContentType.IMAGE, matches=[MatchFact("SAFE_MEMES", "", 0, "pdq")])).verdict \
        is Verdict.ALLOW
    restricted = Facts(ContentType.IMAGE, matches=[MatchFact("SAFE_MEMES", "", 0, "pdq", restricted=True)])
    assert evaluate(policy, restricted).verdict is Verdict.BLOCK  # an allow list never reaches restricted material


@pytest.mark.parametrize(("rule", "message"), [
    ('name = "let-through"\ncategory = "borderline"\nwhen.bank_match.restricted = true\nverdict = "allow"\n'
     'severity = 1\n',
     'policy.toml: rules[1] ("let-through"): verdict: child sexual abuse material cannot be allowed: a match in a '
     'restricted bank is always blocked; remove this rule'),
    ('name = "let-through"\ncategory = "csam"\nwhen.min_views = 1\nverdict = "allow"\nseverity = 1\n',
     'policy.toml: rules[1] ("let-through"): verdict: child sexual abuse material cannot be allowed: a match in a '
     'restricted bank is always blocked; remove this rule'),
    ('name = "let-through"\ncategory = "hate_speech"\nwhen.bank_match.categories = ["csam"]\nverdict = "allow"\n'
     'severity = 1\n',
     'policy.toml: rules[1] ("let-through"): verdict: child sexual abuse material cannot be allowed: a match in a '
     'restricted bank is always blocked; remove this rule'),
    ('name = "label-only"\ncategory = "csam"\nwhen.bank_match = {}\nverdict = "block"\nactions = ["demote"]\n'
     'severity = 5\n',
     'policy.toml: rules[1] ("label-only"): actions: a block of child sexual abuse material must remove it: '
     "add 'remove'"),
    ('name = "soft"\ncategory = "csam"\nwhen.min_views = 1\nverdict = "review"\nwhile_in_review = ["demote"]\n'
     'severity = 5\n',
     'policy.toml: rules[1] ("soft"): while_in_review: child sexual abuse material is never published while in '
     'review'),
    ('name = "unhandled-match"\ncategory = "hate_speech"\nwhen.min_views = 1\nverdict = "review"\nseverity = 1\n',
     "policy.toml: rules[1] (\"unhandled-match\"): name: 'unhandled-match' is the name of one of Bastion's own "
     "rules; choose another"),
])
def test_a_policy_that_would_let_child_abuse_through_is_refused(rule: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(extra_rule(rule)(MINIMAL), source="policy.toml")
    assert caught.value.problems == [message]


# --- over HTTP ------------------------------------------------------------------------------------------------------


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY_PATH.read_text())
    return path


@pytest.fixture
def app(settings: Settings, db: Database, policy_file: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(**{**settings.__dict__, "policy_path": policy_file}), db=db)) as c:
        yield c


def _ncmec_bank(app: TestClient, h: Header, image: Path) -> None:
    cs = h(Role.CHILD_SAFETY)
    assert app.post("/v1/banks", json={"name": "NCMEC_HASHES", "restricted": True}, headers=cs).status_code == 201
    r = app.post("/v1/banks/NCMEC_HASHES/entries", json={"signal_type": "pdq", "value": _pdq(image),
                                                         "category": "csam"}, headers=cs)
    assert r.status_code == 201, r.text
    app.app.state.matcher.refresh()  # type: ignore[attr-defined]


def test_an_upload_matching_a_restricted_bank_of_any_name_is_blocked_and_reported(
        app: TestClient, auth_header: Header, tmp_path: Path, db: Database) -> None:
    image = make_image(tmp_path / "standin.jpg", seed=71, size=(320, 240))
    _ncmec_bank(app, auth_header, image)
    result = _upload(app, auth_header, image, "n-1")
    assert (result["verdict"], result["status"]) == ("block", "blocked")
    draft_pending(app.app.state.reporting)  # type: ignore[attr-defined]
    with db.read() as session:
        assert session.scalars(select(ReportedFile.content_id)).all() == ["n-1"]  # a child-safety report drafted
    # what the platform and the uploader are told: what was found, not the bank, rule or distance
    assert result["reasons"] == ["known child sexual abuse material, matched automatically"]
    statement = app.get(f"/v1/statements/{result['statement_puid']}", headers=auth_header(Role.PLATFORM)).json()
    assert statement["decision_facts"] == "Known child sexual abuse material, matched automatically."
    for field in ("decision_facts", "illegal_content_explanation"):
        assert not any(leak in statement[field] for leak in ("NCMEC", "csam-known-hash", "distance"))
    replay = _upload(app, auth_header, image, "n-1")
    assert replay["replay"] and replay["reasons"] == result["reasons"]


def test_the_platform_reads_no_bank_or_rule_in_the_history(app: TestClient, auth_header: Header,
                                                          tmp_path: Path) -> None:
    image = make_image(tmp_path / "known.jpg", seed=72, size=(640, 480))
    _bank(app, auth_header, "GIFCT_SHARED", _pdq(image), "terrorist_content")
    app.app.state.matcher.refresh()  # type: ignore[attr-defined]
    assert _upload(app, auth_header, image, "t-1")["verdict"] == "block"
    platform = app.get("/v1/content/t-1", headers=auth_header(Role.PLATFORM))
    assert "GIFCT_SHARED" not in platform.text and "terror-known-close" not in platform.text
    verdict = next(e for e in platform.json()["events"] if e["kind"] == "content.verdict")
    assert verdict["data"]["public_reasons"] == ["known terrorist content, matched automatically"]
    moderator = app.get("/v1/content/t-1", headers=auth_header(Role.MODERATOR))
    assert "GIFCT_SHARED" in moderator.text  # reviewers keep the detail


def test_an_upload_matching_an_unnamed_category_is_held_for_review(app: TestClient, auth_header: Header,
                                                                   tmp_path: Path) -> None:
    image = make_image(tmp_path / "x.jpg", seed=73, size=(640, 480))
    _bank(app, auth_header, "PARTNER_LIST", _pdq(image), "scam_ring")
    app.app.state.matcher.refresh()  # type: ignore[attr-defined]
    result = _upload(app, auth_header, image, "u-1")
    assert (result["verdict"], result["status"]) == ("review", "held") and result["case_id"] is not None


def test_a_policy_edit_allowing_restricted_matches_is_refused_and_shown_on_status(
        app: TestClient, auth_header: Header, policy_file: Path, tmp_path: Path) -> None:
    edited = policy_file.read_text().replace('when.bank_match.restricted = true\nverdict = "block"\n'
                                             'actions = ["remove", "strike"]',
                                             'when.bank_match.restricted = true\nverdict = "allow"')
    assert edited != policy_file.read_text()
    policy_file.write_text(edited)
    mod = app.app.state.moderation  # type: ignore[attr-defined]
    mod.policy_source.reload(force=True)
    status: dict[str, Any] = app.get("/status", headers=auth_header(Role.ADMIN)).json()
    assert "child sexual abuse material cannot be allowed" in status["policy"]["error"]
    assert status["policy"]["in_force"] == "bastion-default@2025-06-01"  # the last good policy stays
    image = make_image(tmp_path / "standin.jpg", seed=74, size=(320, 240))
    _ncmec_bank(app, auth_header, image)
    assert _upload(app, auth_header, image, "n-2")["verdict"] == "block"
