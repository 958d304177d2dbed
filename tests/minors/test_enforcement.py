"""What the checks enforce beyond bands and rules, over HTTP: quiet hours and screen time at the account's local
time, the account's own settings, and the report to NCMEC of online enticement a confirmed grooming case drafts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import deliver_due
from bastion.minors import interactions
from bastion.minors.accounts import in_hours, setting_rules
from bastion.minors.interfaces import Action, Audience, Decision
from bastion.minors.rules import DEFAULT_RULES_PATH, Facts, load_rules
from bastion.reporting import ncmec
from bastion.reporting import services as reports
from bastion.reporting.tasks import ReportSender
from bastion.web.app import create_app
from tests.factories.ncmec import PASSWORD, USERNAME, XSD, FakeNcmec
from tests.factories.ncmec import fake_ncmec as fake_ncmec
from tests.minors.test_rules import facts

Header = Callable[[Role], dict[str, str]]
#: 22:30 UTC: inside a 13-15's default quiet hours (21:00-08:00) at UTC, outside them at UTC-3.
LATE = dt.datetime(2026, 12, 1, 22, 30, tzinfo=dt.UTC)
SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(LATE)


@pytest.fixture
def api(settings: Settings, db: Database, clock: FrozenClock, fake_ncmec: FakeNcmec) -> Iterator[TestClient]:
    wired = dataclasses.replace(
        settings, platform_webhook_url="http://127.0.0.1:9/hook", webhook_secret=b"k" * 32,
        ncmec_url=fake_ncmec.url, ncmec_username=USERNAME, ncmec_password=PASSWORD, ncmec_xsd=XSD,
        orders_provider="Example Video Platform")
    with TestClient(create_app(wired, db=db, clock=clock, refresh=False)) as client:
        yield client


@pytest.fixture
def platform(auth_header: Header) -> dict[str, str]:
    return auth_header(Role.PLATFORM)


def _age(api: TestClient, h: dict[str, str], account: str, years: float) -> None:
    assert api.put(f"/v1/accounts/{account}/age", json={"years": years}, headers=h).status_code == 200


def _check(api: TestClient, h: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = api.post("/v1/interactions/check", json=body, headers=h)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _settings(api: TestClient, h: dict[str, str], account: str, **changes: Any) -> Any:
    return api.patch(f"/v1/accounts/{account}/settings", json=changes, headers=h)


def _pair(api: TestClient, h: dict[str, str], parent: str, teen: str) -> int:
    offer = api.post("/v1/family/offers", json={"parent_id": parent}, headers=h).json()
    linked = api.post("/v1/family/links", json={"code": offer["code"], "teen_id": teen}, headers=h).json()
    link_id: int = linked["link_id"]
    return link_id


# --- quiet hours and screen time -----------------------------------------------------------------------------------


def test_notifications_wait_for_the_end_of_quiet_hours_at_the_accounts_local_time(
        api: TestClient, platform: dict[str, str]) -> None:
    _age(api, platform, "teen", 14)
    _age(api, platform, "adult", 30)
    held = _check(api, platform, actor="teen", action="notify", context={"utc_offset_minutes": 0})
    assert (held["decision"], held["rule"]) == ("deny", "quiet-hours") and "21:00-08:00" in held["explanation"]
    evening = _check(api, platform, actor="teen", action="notify", context={"utc_offset_minutes": -180})
    assert evening["decision"] == "allow"  # 19:30 where the teen is
    assert _check(api, platform, actor="adult", action="notify", context={"utc_offset_minutes": 0})["decision"] == \
        "allow"  # adults have no default quiet hours
    # an adult's own quiet hours hold for that adult
    assert _settings(api, platform, "adult", quiet_hours="22:00-07:00").status_code == 200
    own = _check(api, platform, actor="adult", action="notify", context={"utc_offset_minutes": 0})
    assert (own["decision"], own["rule"]) == ("deny", "setting-quiet-hours")
    # the account's local time is needed: without it the check is refused
    missing = api.post("/v1/interactions/check", json={"actor": "teen", "action": "notify"}, headers=platform)
    assert missing.status_code == 422 and "utc_offset_minutes" in missing.json()["detail"]
    assert api.post("/v1/interactions/check", headers=platform, json={
        "actor": "teen", "action": "notify", "context": {"utc_offset_minutes": 900}}).status_code == 422


def test_a_parents_quiet_hours_hold_the_teens_notifications(api: TestClient, platform: dict[str, str]) -> None:
    _age(api, platform, "mum", 45)
    _age(api, platform, "teen", 16)  # default quiet hours 22:00-08:00
    link = _pair(api, platform, "mum", "teen")
    assert api.put(f"/v1/family/links/{link}/limits", headers=platform, json={
        "parent_id": "mum", "limits": {"quiet_hours": "20:00-08:00"}}).status_code == 200
    at_2030 = _check(api, platform, actor="teen", action="notify", context={"utc_offset_minutes": -120})
    assert (at_2030["decision"], at_2030["rule"]) == ("deny", "family-quiet-hours")
    assert _check(api, platform, actor="teen", action="notify",
                  context={"utc_offset_minutes": -180})["decision"] == "allow"  # 19:30


def test_screen_time_says_when_the_days_limit_is_reached_and_who_set_it(api: TestClient,
                                                                          platform: dict[str, str]) -> None:
    _age(api, platform, "teen", 14)
    _age(api, platform, "adult", 30)

    def ask(account: str, used: int, offset: int = 0) -> dict[str, Any]:
        answer = api.get(f"/v1/accounts/{account}/screen-time",
                         params={"used_minutes": used, "utc_offset_minutes": offset}, headers=platform)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    early = ask("teen", 30, offset=-180)
    assert (early["limit_minutes"], early["remaining_minutes"], early["action"], early["set_by"]) == (
        60, 30, "none", "default")
    assert early["in_quiet_hours"] is False and early["local_time"].startswith("2026-12-01T19:30:00-03:00")
    reached = ask("teen", 60)
    assert (reached["action"], reached["remaining_minutes"], reached["in_quiet_hours"]) == ("prompt", 0, True)
    assert reached["quiet_hours"] == [{"hours": "21:00-08:00", "set_by": "default"}]
    assert ask("adult", 600)["action"] == "none" and ask("adult", 600)["limit_minutes"] is None
    # a minor may lower the prompt, never raise it; a parent's limit stops
    refused = _settings(api, platform, "teen", screen_time_prompt_minutes=90)
    assert refused.status_code == 422 and "may only lower it" in refused.json()["detail"]
    assert _settings(api, platform, "teen", screen_time_prompt_minutes=40).status_code == 200
    assert (ask("teen", 45)["action"], ask("teen", 45)["set_by"]) == ("prompt", "account")
    _age(api, platform, "mum", 45)
    link = _pair(api, platform, "mum", "teen")
    assert api.put(f"/v1/family/links/{link}/limits", headers=platform, json={
        "parent_id": "mum", "limits": {"screen_time_minutes": 30}}).status_code == 200
    stopped = ask("teen", 31)
    assert (stopped["action"], stopped["set_by"], stopped["limit_minutes"]) == ("stop", "parent:mum", 30)
    bad = api.get("/v1/accounts/teen/screen-time", params={"used_minutes": -1}, headers=platform)
    assert bad.status_code == 422


def test_a_minors_quiet_hours_only_grow(api: TestClient, platform: dict[str, str]) -> None:
    _age(api, platform, "teen", 14)
    narrower = _settings(api, platform, "teen", quiet_hours="23:00-07:00")
    assert narrower.status_code == 422 and "may only widen them" in narrower.json()["detail"]
    assert _settings(api, platform, "teen", quiet_hours="20:00-09:00").status_code == 200


@pytest.mark.parametrize("hours, minute, inside", [
    ("21:00-08:00", 21 * 60, True), ("21:00-08:00", 8 * 60, False), ("21:00-08:00", 3 * 60, True),
    ("21:00-08:00", 12 * 60, False), ("09:00-17:00", 9 * 60, True), ("09:00-17:00", 17 * 60, False),
    ("09:00-09:00", 0, True)])
def test_quiet_hours_may_run_past_midnight(hours: str, minute: int, inside: bool) -> None:
    assert in_hours(hours, minute) is inside


# --- the account's own settings ------------------------------------------------------------------------------------


def test_an_accounts_own_settings_change_the_checks(api: TestClient, platform: dict[str, str]) -> None:
    _age(api, platform, "adult", 30)
    _age(api, platform, "other", 40)
    _age(api, platform, "teen", 16)

    def decide(actor: str, target: str, action: str, **context: Any) -> tuple[str, str]:
        answer = _check(api, platform, actor=actor, target=target, action=action, context=context)
        return answer["decision"], answer["rule"]

    assert decide("other", "adult", "dm") == ("allow", "default")
    assert _settings(api, platform, "adult", dm="nobody", downloads=False, duet_stitch=False,
                     discoverable=False).status_code == 200
    assert decide("other", "adult", "dm") == ("deny", "setting-dm-nobody")
    assert decide("other", "adult", "download") == ("deny", "setting-downloads-off")
    assert decide("other", "adult", "stitch") == ("deny", "setting-duet-stitch-off")
    assert decide("other", "adult", "suggest") == ("deny", "setting-not-discoverable")
    assert decide("adult", "other", "dm") == ("allow", "default")  # the adult's settings protect the adult only
    assert _settings(api, platform, "other", private_account=True, comments="friends").status_code == 200
    assert decide("adult", "other", "comment") == ("deny", "setting-private-account")
    assert decide("adult", "other", "comment", follows=True) == ("deny", "setting-comments-friends")
    assert decide("adult", "other", "comment", follows=True, followed_by=True) == ("allow", "default")
    # a 16-year-old tightens: DMs from nobody, even friends
    assert decide("adult", "teen", "dm", follows=True, followed_by=True)[0] == "allow"
    assert _settings(api, platform, "teen", dm="nobody").status_code == 200
    assert decide("adult", "teen", "dm", follows=True, followed_by=True) == ("deny", "setting-dm-nobody")
    # and can never loosen below the floor: refused, and the check is unchanged
    assert _settings(api, platform, "teen", dm="everyone").status_code == 422
    assert decide("other", "teen", "download") == ("deny", "no-download-of-minors")


setting_values = st.fixed_dictionaries({}, optional={
    "dm": st.sampled_from([a.value for a in Audience]), "comments": st.sampled_from([a.value for a in Audience]),
    "private_account": st.booleans(), "downloads": st.booleans(), "duet_stitch": st.booleans(),
    "discoverable": st.booleans(), "live": st.booleans(), "gifts": st.booleans()})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=setting_values, actor=setting_values, action=st.sampled_from(list(Action)), f=facts)
def test_settings_never_loosen_a_check(target: dict[str, Any], actor: dict[str, Any], action: Action,
                                       f: Facts) -> None:
    """Whatever an account records, its settings only add denies: what the rules and the floor deny stays denied
    (with the same floor rule), and an allow can only become a deny."""
    rules = load_rules(DEFAULT_RULES_PATH)
    extra = [*setting_rules(target, side="target"), *setting_rules(actor, side="actor")]
    without, with_settings = rules.decide(action, f), rules.decide(action, f, extra)
    if without.decision is Decision.DENY:
        assert with_settings.decision is Decision.DENY
    if without.floor:
        assert with_settings.rule == without.rule


# --- the report to NCMEC of online enticement ----------------------------------------------------------------------


def _groom(api: TestClient, platform: dict[str, str], child_safety: dict[str, str]) -> dict[str, Any]:
    _age(api, platform, "predator", 41)
    checks = [{"actor": "predator", "target": {"account_id": f"kid{i}", "age": 13}, "action": "dm"}
              for i in range(5)]
    api.post("/v1/interactions/check-batch", headers=platform, json={"checks": checks})
    interactions.watch_grooming(api.app.state.minors)  # type: ignore[attr-defined]  # the app's worker, not run here
    (case,) = api.get("/v1/minors/cases?kind=grooming", headers=child_safety).json()
    return dict(case)


def test_a_confirmed_grooming_case_drafts_a_report_of_online_enticement_sent_to_ncmec(
        api: TestClient, platform: dict[str, str], auth_header: Header, db: Database, clock: FrozenClock,
        fake_ncmec: FakeNcmec) -> None:
    specialist = auth_header(Role.CHILD_SAFETY)
    case = _groom(api, platform, specialist)
    assert len(case["detail"]["attempts"]) == 5
    # the open case lists the attempts made since it opened when it is read, and the report those up to the decision
    clock.advance(minutes=5)
    _check(api, platform, actor="predator", target={"account_id": "kid5", "age": 12}, action="dm")
    (case,) = api.get("/v1/minors/cases?kind=grooming", headers=specialist).json()
    assert [a["target"] for a in case["detail"]["attempts"]] == [f"kid{i}" for i in range(6)]
    assert case["detail"]["denied_attempts"] == 6
    for role in (Role.MODERATOR, Role.PLATFORM, Role.ANALYST):  # restricted: child-safety roles only
        assert api.post(f"/v1/minors/cases/{case['id']}/decision", json={"confirmed": True},
                        headers=auth_header(role)).status_code == 403
    decided = api.post(f"/v1/minors/cases/{case['id']}/decision", headers=specialist,
                       json={"confirmed": True, "note": "five attempts at 13-year-olds in a minute"})
    assert decided.status_code == 200, decided.text
    report_id = decided.json()["detail"]["report_id"]
    report = api.get(f"/v1/reports/{report_id}", headers=specialist).json()
    assert (report["account_id"], report["incident_type"], report["state"], report["trigger"]) == (
        "predator", ncmec.ENTICEMENT_INCIDENT, "draft", "grooming_case")
    assert report["files"] == [] and report["removed"] is False
    assert api.get(f"/v1/reports/{report_id}", headers=platform).status_code == 403
    # the XML names the adult as the reported user, the children as victims (ids only), the attempts; and validates
    with db.read() as session:
        document = reports.ncmec_document(session, api.app.state.reporting,  # type: ignore[attr-defined]
                                          reports.get_report(session, report_id))
    tree = etree.fromstring(document)
    assert SCHEMA.validate(tree), SCHEMA.error_log
    assert tree.findtext("incidentSummary/incidentType") == "Online Enticement of Children for Sexual Acts"
    assert tree.findtext("personOrUserReported/espIdentifier") == "predator"
    assert [v.findtext("espIdentifier") for v in tree.iter("victim")] == [f"kid{i}" for i in range(6)]
    info = tree.findtext("additionalInfo")
    assert "2026-12-01T22:30:00Z dm to kid0 (stopped)" in info and "22:35:00Z dm to kid5" in info
    assert "13_15" not in info and "under_13" not in info
    # sent like any draft: validated, queued, delivered to NCMEC (no files to upload)
    assert api.post(f"/v1/reports/{report_id}/send", headers=specialist).status_code == 202
    deliver_due(db, ReportSender(api.app.state.reporting), clock=clock)  # type: ignore[attr-defined]
    (received,) = fake_ncmec.reports.values()
    assert received.finished and b"Online Enticement" in received.xml
    # the platform hears the account and the outcome, never the report or the children
    with db.read() as session:
        hooks = [m.payload for m in session.scalars(select(OutboxMessage)) if m.kind == "minors.case.decided"]
    assert [(h["account_id"], h["state"]) for h in hooks] == [("predator", "confirmed")]
    assert "report_id" not in hooks[0] and "kid0" not in str(hooks[0])


def test_a_confirmed_case_drafts_one_report_and_a_dismissed_one_none(api: TestClient, platform: dict[str, str],
                                                                      auth_header: Header, db: Database) -> None:
    specialist = auth_header(Role.CHILD_SAFETY)
    case = _groom(api, platform, specialist)
    no_report = api.post(f"/v1/minors/cases/{case['id']}/decision", headers=specialist,
                         json={"confirmed": False, "note": "a teacher's class account"})
    assert no_report.status_code == 200 and "report_id" not in no_report.json()["detail"]
    again = api.post(f"/v1/minors/cases/{case['id']}/decision", headers=specialist, json={"confirmed": True})
    assert again.status_code == 409
    assert api.get("/v1/reports", headers=specialist).json() == {"reports": []}
    # the same source drafts the same report, once
    request = reports.EnticementRequest("predator", "minors-case:1", [
        reports.EnticementAttempt(LATE, "dm", "kid0", "deny")])
    rep = api.app.state.reporting  # type: ignore[attr-defined]
    with db.write() as session:
        first = reports.draft_enticement(rep, session, request, actor="t")
        assert reports.draft_enticement(rep, session, request, actor="t") == first
    with db.write() as session, pytest.raises(reports.InvalidReport):
        reports.draft_enticement(rep, session, dataclasses.replace(request, attempts=[]), actor="t")


def test_a_batch_answers_like_single_checks(api: TestClient, platform: dict[str, str]) -> None:
    """The batch writes its answers itself (no model per answer): the same fields and values as the single check."""
    _age(api, platform, "teen", 16)
    checks: list[dict[str, Any]] = [
        {"actor": {"account_id": "a1", "age": 30}, "target": "teen", "action": "mention"},  # a shadow rule holds
        {"actor": "teen", "action": "live"}, {"actor": "teen", "target": "a1", "action": "dm_media"},
        {"actor": "a1", "target": "teen", "action": "comment", "context": {"follows": True}}]
    batch = api.post("/v1/interactions/check-batch", json={"checks": checks}, headers=platform).json()["results"]
    assert batch == [_check(api, platform, **c) for c in checks]
    assert batch[0]["shadow"] == ["adult-mentions-minor"] and batch[2]["floor"] is True


def test_the_context_schema_names_the_domain_context() -> None:
    """The API's context is handed to the domain's ``Context`` by name: every key the schema admits is one of its
    fields, and each value reaches the field of its name."""
    from bastion.minors import api as minors_api

    assert list(minors_api.ContextIn.__annotations__) == list(interactions.Context._fields)
    given_context: dict[str, Any] = {"follows": True, "followed_by": False, "conversation": True,
                                     "group_consent": True, "age_restricted": False, "borderline": True,
                                     "audience": Audience.FRIENDS, "utc_offset_minutes": 60}
    check = minors_api.to_check({"actor": "a", "target": "b", "action": Action.NOTIFY,
                                 "context": given_context})  # type: ignore[typeddict-item]
    assert check.context._asdict() == given_context
    assert minors_api.to_check({"actor": "a", "action": Action.LIVE, "context": {"borderline": True}}).context == \
        interactions.Context(borderline=True)


def test_a_changed_sentence_is_written_anew() -> None:
    """Answers are written once and kept (``_answer``), by everything they say: a rule whose sentence changed (a
    rules file reloaded) is answered with the new sentence, not the one kept."""
    from bastion.minors import api as minors_api
    from bastion.minors.interfaces import Band
    from bastion.minors.rules import Verdict

    before = interactions.Checked(Verdict(Decision.DENY, "r", "Not now."), Band.ADULT, Band.B13_15)
    after = before._replace(verdict=before.verdict._replace(explanation="Not yet."))
    assert '"explanation":"Not now."' in minors_api._answer(before)
    assert '"explanation":"Not yet."' in minors_api._answer(after)


def test_one_batch_reads_ages_limits_and_own_settings_together(api: TestClient, platform: dict[str, str]) -> None:
    """A batch reads what is recorded of all its accounts in one statement: a verified age beats an inline one, a
    parent's limits and an account's own settings each decide the checks aimed at their account, and an account
    named with neither falls to the rules."""
    for account, years in (("mum", 40), ("teen", 16), ("adult", 30)):
        _age(api, platform, account, years)
    verified = {"basis": "verified", "years": 15, "method": "eu-age-app"}
    assert api.put("/v1/accounts/kid/age", json=verified, headers=platform).status_code == 200
    link = _pair(api, platform, "mum", "teen")
    assert api.put(f"/v1/family/links/{link}/limits", headers=platform,
                   json={"parent_id": "mum", "limits": {"comments": "nobody"}}).status_code == 200
    assert _settings(api, platform, "adult", duet_stitch=False).status_code == 200
    checks: list[dict[str, Any]] = [
        {"actor": "adult", "target": "teen", "action": "comment", "context": {"follows": True, "followed_by": True}},
        {"actor": "teen", "target": "adult", "action": "stitch"},
        {"actor": {"account_id": "kid", "age": 30}, "action": "live"},
        {"actor": "adult", "target": "mum", "action": "stitch"}]
    results = api.post("/v1/interactions/check-batch", json={"checks": checks}, headers=platform).json()["results"]
    assert [(r["decision"], r["rule"]) for r in results[:2]] == [
        ("deny", "family-comments-nobody"), ("deny", "setting-duet-stitch-off")]
    assert results[2]["actor_band"] == "13_15" and results[2]["decision"] == "deny"
    assert results[3]["decision"] == "allow" and results[3]["rule"] == "default"
