"""Minors over HTTP: ages, interaction checks, account defaults and settings, family pairing, rules and cases.

The platform asks with its token (``roles.MINORS_PLATFORM``); moderators read (``roles.MINORS_READ``); grooming and
under-13 cases are for child-safety specialists (``roles.MINORS_CASES``). Domain errors are answered by the one
problem+json handler.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from typing import Annotated, Any, Literal, NotRequired

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.context import context
from bastion.core.http import RowId, require
from bastion.minors import accounts, ages, cases, family, interactions
from bastion.minors.events import CaseKind
from bastion.minors.interfaces import Action, AgeBasis, Audience, Band, Decision
from bastion.minors.models import AgeRecord, FamilyLink, MinorsCase
from bastion.minors.rules import DEFAULT_RULES_PATH, FLOOR, BandDefaults, Rule, RulesFile
from bastion.minors.services import Minors

router = APIRouter(prefix="/v1", tags=["minors"])
_ID = r"^[A-Za-z0-9._:@-]{1,200}$"
AccountId = Annotated[str, Path(pattern=_ID, description="the platform's account id")]
_LOCK = threading.Lock()


def minors(request: Request) -> Minors:
    """The app's minors service (``web/app.py`` builds it at start; an app without one builds it on first use)."""
    service = getattr(request.app.state, "minors", None)
    if service is None:
        with _LOCK:
            service = getattr(request.app.state, "minors", None)
            if service is None:
                ctx = context(request)
                service = Minors(ctx.db, ctx.clock, RulesFile(ctx.settings.minors_rules_path or DEFAULT_RULES_PATH),
                                 ctx.settings.platform_webhook_url)
                request.app.state.minors = service
    assert isinstance(service, Minors)
    return service


async def _minors_dependency(request: Request) -> Minors:
    """``minors`` as a dependency. Async, though it awaits nothing: FastAPI runs a plain function dependency in its
    thread pool, and that hop cost every minors request a thread switch for an attribute read (a bare app's first
    use reads the rules file once, on the event loop)."""
    return minors(request)


M = Annotated[Minors, Depends(_minors_dependency)]
Platform = Annotated[Principal, Depends(require(roles.MINORS_PLATFORM))]
Reader = Annotated[Principal, Depends(require(roles.MINORS_READ))]
CaseReader = Annotated[Principal, Depends(require(roles.MINORS_CASES))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- ages ----------------------------------------------------------------------------------------------------------


class AgeIn(_In):
    basis: AgeBasis = AgeBasis.DECLARED
    years: float = Field(ge=0, le=ages.MAX_YEARS, description="the age in years, as the platform knows it")
    method: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9 ._:/-]*$",
                        description="how it was estimated or verified (e.g. facial-estimation, eu-age-app)")
    confidence: float | None = Field(default=None, ge=0, le=1, description="an estimate's confidence")
    observed_at: dt.datetime | None = Field(default=None, description="when the platform learnt it (default: now)")

    def age(self) -> ages.Age:
        return ages.Age(self.basis, self.years, self.method, self.confidence, self.observed_at)


class AgeOut(BaseModel):
    account_id: str
    basis: AgeBasis
    years: float
    method: str
    confidence: float | None
    band: Band
    observed_at: dt.datetime
    recorded_at: dt.datetime

    @classmethod
    def of(cls, row: AgeRecord) -> AgeOut:
        return cls(account_id=row.account_id, basis=AgeBasis(row.basis), years=row.years, method=row.method,
                   confidence=row.confidence, band=Band(row.band), observed_at=row.observed_at,
                   recorded_at=row.recorded_at)


@router.put("/accounts/{account_id}/age", summary="Record what the platform knows of an account's age")
def put_age(account_id: AccountId, body: AgeIn, m: M, principal: Platform) -> AgeOut:
    return AgeOut.of(ages.record_age(m, account_id, body.age(), actor=principal.actor))


@router.get("/accounts/{account_id}/age", summary="An account's recorded age and its band")
def get_age(account_id: AccountId, m: M, _p: Reader) -> AgeOut:
    with m.db.read() as session:
        return AgeOut.of(ages.get_age(session, account_id))


class ContestIn(_In):
    statement: str = Field(min_length=1, max_length=2000, description="what the account holder says")


class ContestDecisionIn(_In):
    upheld: bool
    age: AgeIn | None = Field(default=None, description="the age an upheld contest establishes")
    note: str = Field(default="", max_length=2000)


class Recorded(BaseModel):
    account_id: str
    recorded: Literal[True] = True


@router.post("/accounts/{account_id}/age/contest", summary="The account holder contests the age decision")
def contest_age(account_id: AccountId, body: ContestIn, m: M, principal: Platform) -> Recorded:
    ages.contest(m, account_id, body.statement, actor=principal.actor)
    return Recorded(account_id=account_id)


@router.post("/accounts/{account_id}/age/contest/decision", summary="Record the outcome of an age contest")
def decide_contest(account_id: AccountId, body: ContestDecisionIn, m: M, principal: Platform) -> AgeOut:
    row = ages.decide_contest(m, account_id, upheld=body.upheld, new_age=body.age.age() if body.age else None,
                              note=body.note, actor=principal.actor)
    return AgeOut.of(row)


# --- interactions --------------------------------------------------------------------------------------------------


#: The inline account and the context are TypedDicts, not models: pydantic validates a dict several times faster
#: than it builds a model instance, and a batch has one of each per check (as models: 0.5 ms more for a batch of
#: 100, ``docs/benchmarks.md``). A key left out takes the default its schema documents (``to_check``).
_FALSE: dict[str, Any] = {"default": False}
_NONE: dict[str, Any] = {"default": None}


@with_config(ConfigDict(extra="forbid"))
class AccountIn(TypedDict):
    account_id: Annotated[str, Field(pattern=_ID)]
    age: NotRequired[Annotated[float | None, Field(
        ge=0, le=ages.MAX_YEARS, description="years, as the platform knows them (treated as declared)",
        json_schema_extra=_NONE)]]


@with_config(ConfigDict(extra="forbid"))
class ContextIn(TypedDict):
    follows: NotRequired[Annotated[bool, Field(description="the actor follows the target", json_schema_extra=_FALSE)]]
    followed_by: NotRequired[Annotated[bool, Field(description="the target follows the actor",
                                                   json_schema_extra=_FALSE)]]
    conversation: NotRequired[Annotated[bool, Field(description="the two have an existing conversation",
                                                    json_schema_extra=_FALSE)]]
    group_consent: NotRequired[Annotated[bool, Field(description="the target agreed to be added to the group",
                                                     json_schema_extra=_FALSE)]]
    age_restricted: NotRequired[Annotated[bool, Field(description="the content is age-restricted",
                                                      json_schema_extra=_FALSE)]]
    borderline: NotRequired[Annotated[bool, Field(description="the content is borderline", json_schema_extra=_FALSE)]]
    audience: NotRequired[Annotated[Audience | None, Field(description="the content's audience setting",
                                                           json_schema_extra=_NONE)]]
    utc_offset_minutes: NotRequired[Annotated[int | None, Field(
        ge=-720, le=840, json_schema_extra=_NONE,
        description="the account's offset from UTC now, in minutes (its local time; e.g. 60 for CET): required by "
                    "notify, whose quiet hours are the account's local hours")]]


#: An account id, or an account with its age inline. Left to right, the id first: pydantic's "smart" union tries
#: both and cost 10 µs a check (a batch of 100 spent a millisecond here); the object first built a failed model
#: validation for every plain id (a sixth of a batch's validation).
AccountRefIn = Annotated[Annotated[str, Field(pattern=_ID)] | AccountIn, Field(union_mode="left_to_right")]


#: One check: a TypedDict too (a model instance for each check of a batch cost 40 % of its validation). Its
#: docstring would be the schema's description, so it has none.
@with_config(ConfigDict(extra="forbid"))
class CheckIn(TypedDict):
    actor: AccountRefIn
    target: NotRequired[Annotated[AccountRefIn | None, Field(
        description="the account acted on; left out for actions done alone (live, live_gift)",
        json_schema_extra=_NONE)]]
    action: Action
    #: Left out: no context (nothing follows, no audience).
    context: NotRequired[Annotated[ContextIn | None, Field(json_schema_extra=_NONE)]]
    content_id: NotRequired[Annotated[str | None, Field(pattern=_ID, json_schema_extra=_NONE)]]


def to_check(c: CheckIn) -> interactions.Check:
    """The domain's check from a validated one; each key left out takes the default its schema documents."""
    ctx, target = c.get("context"), c.get("target")
    # ContextIn's keys are Context's fields (``test_the_context_schema_names_the_domain_context``)
    context = _NO_CONTEXT if ctx is None else interactions.Context(**ctx)
    return interactions.Check(_ref(c["actor"]), c["action"], _ref(target) if target else None, context,
                              c.get("content_id"))


_NO_CONTEXT = interactions.Context()


def _ref(value: str | AccountIn) -> interactions.AccountRef:
    if isinstance(value, str):
        return interactions.AccountRef(value)
    return interactions.AccountRef(value["account_id"], value.get("age"))


class CheckOut(BaseModel):
    decision: Decision
    rule: str
    explanation: str
    floor: bool = Field(description="the rule is Bastion's floor, which no rules file can change")
    actor_band: Band
    target_band: Band | None
    shadow: list[str] = Field(description="shadow rules that held and would have decided otherwise")

    @classmethod
    def of(cls, c: interactions.Checked) -> CheckOut:
        v = c.verdict
        return cls(decision=v.decision, rule=v.rule, explanation=v.explanation, floor=v.floor,
                   actor_band=c.actor_band, target_band=c.target_band, shadow=list(v.shadow))


class BatchIn(_In):
    checks: list[CheckIn] = Field(min_length=1, max_length=500)


class BatchOut(BaseModel):
    results: list[CheckOut]


@router.post("/interactions/check", summary="May the actor do this (to the target)? Decision, rule, explanation")
def check(body: Annotated[CheckIn, Body()], m: M, principal: Platform) -> CheckOut:
    return CheckOut.of(interactions.check_all(m, [to_check(body)], actor=principal.actor)[0])


@router.post("/interactions/check-batch", summary="Many checks at once (a feed, a comment thread), in order",
             response_model=BatchOut)
def check_batch(body: BatchIn, m: M, principal: Platform) -> Response:
    answers = interactions.check_all(m, [to_check(c) for c in body.checks], actor=principal.actor)
    # Written here, in CheckOut's shape (``_answer``): returned as models, FastAPI would validate the 100 answers
    # again before writing them, and building 100 models costs more than the decisions.
    return Response(f'{{"results":[{",".join([_answer(a) for a in answers])}]}}', media_type="application/json")


@functools.lru_cache(maxsize=4096)
def _answer(c: interactions.Checked) -> str:
    """``CheckOut`` as JSON (``test_a_batch_answers_like_single_checks`` holds the two together). Answers repeat,
    within a batch (a feed's are mostly one) and across batches (a rule, its sentence and two bands), so each is
    written once; a changed rules file makes new ones."""
    v = c.verdict
    return json.dumps({"decision": v.decision.value, "rule": v.rule, "explanation": v.explanation, "floor": v.floor,
                       "actor_band": c.actor_band.value,
                       "target_band": c.target_band.value if c.target_band else None, "shadow": list(v.shadow)},
                      separators=(",", ":"))


# --- defaults and settings -----------------------------------------------------------------------------------------


class DefaultsOut(BaseModel):
    account_id: str
    band: Band
    defaults: BandDefaults = Field(description="the band's defaults in the rules in force")
    settings: dict[str, Any] = Field(description="the settings in force: defaults, the account's own changes, and "
                                                 "a parent's limits")
    set_by: dict[str, str] = Field(description="for each setting: default, account, or parent:<account id>")
    restricted_mode: bool

    @classmethod
    def of(cls, e: accounts.Effective) -> DefaultsOut:
        return cls(account_id=e.account_id, band=e.band, defaults=e.defaults, settings=e.settings, set_by=e.set_by,
                   restricted_mode=e.restricted_mode)


class SettingsIn(_In):
    private_account: bool | None = None
    discoverable: bool | None = None
    downloads: bool | None = None
    duet_stitch: bool | None = None
    comments: Audience | None = None
    dm: Audience | None = None
    screen_time_prompt_minutes: int | None = Field(default=None, ge=1, le=1440)
    quiet_hours: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    live: bool | None = None
    gifts: bool | None = None


@router.get("/accounts/{account_id}/defaults", summary="An account's default settings for its band, and those in "
                                                       "force")
def get_defaults(account_id: AccountId, m: M, _p: Reader) -> DefaultsOut:
    with m.db.read() as session:
        return DefaultsOut.of(accounts.effective(m, session, account_id))


@router.patch("/accounts/{account_id}/settings", summary="Record the account holder's change of settings")
def patch_settings(account_id: AccountId, body: SettingsIn, m: M, principal: Platform) -> DefaultsOut:
    changes = body.model_dump(mode="json", exclude_none=True)
    return DefaultsOut.of(accounts.change_settings(m, account_id, changes, actor=principal.actor))


class ScreenTimeOut(BaseModel):
    account_id: str
    band: Band
    used_minutes: int
    limit_minutes: int | None = Field(description="today's limit in force (the smallest of the band's prompt, the "
                                                  "account's own and a parent's), none for most adults")
    remaining_minutes: int | None
    set_by: str = Field(description="who set the limit in force: default, account, or parent:<account id>")
    action: Literal["none", "prompt", "stop"] = Field(
        description="what the app does now: nothing; prompt (a reminder the user may dismiss: the band's or the "
                    "account's own limit); stop (a parent's limit: end use until the account's next local day)")
    local_time: dt.datetime = Field(description="now, at the account's offset")
    quiet_hours: list[dict[str, str]] = Field(description="each window in force (hours, set_by): notifications wait")
    in_quiet_hours: bool

    @classmethod
    def of(cls, s: accounts.ScreenTime) -> ScreenTimeOut:
        return cls(account_id=s.account_id, band=s.band, used_minutes=s.used_minutes, limit_minutes=s.limit_minutes,
                   remaining_minutes=s.remaining_minutes, set_by=s.set_by, action=s.action, local_time=s.local_time,
                   quiet_hours=[{"hours": h, "set_by": who} for who, h in s.quiet_hours],
                   in_quiet_hours=s.in_quiet_hours)


@router.get("/accounts/{account_id}/screen-time", summary="Has the account reached today's screen time? Is it in "
                                                          "quiet hours?")
def get_screen_time(account_id: AccountId, m: M, _p: Platform,
                    used_minutes: Annotated[int, Query(ge=0, le=1440, description="minutes of use today, as the "
                                                                                   "platform counts them")],
                    utc_offset_minutes: Annotated[int, Query(ge=-720, le=840, description="the account's offset "
                                                                                           "from UTC now")] = 0,
                    ) -> ScreenTimeOut:
    with m.db.read() as session:
        return ScreenTimeOut.of(accounts.screen_time(m, session, account_id, used_minutes, utc_offset_minutes))


# --- family pairing ------------------------------------------------------------------------------------------------


class OfferIn(_In):
    parent_id: str = Field(pattern=_ID)


class OfferOut(BaseModel):
    link_id: int
    code: str = Field(description="show on the parent's account; enter on the teen's (shown once)")
    expires_at: dt.datetime


class ConfirmIn(_In):
    code: str = Field(min_length=1, max_length=20)
    teen_id: str = Field(pattern=_ID)


class LimitsIn(_In):
    parent_id: str = Field(pattern=_ID)
    limits: family.Limits


class UnlinkIn(_In):
    account_id: str = Field(pattern=_ID, description="the parent's or the teen's account")


class LinkOut(BaseModel):
    link_id: int
    parent_id: str
    teen_id: str | None
    state: str
    limits: dict[str, Any] = Field(description="what the parent set (set by parent_id)")
    updated_at: dt.datetime

    @classmethod
    def of(cls, link: FamilyLink) -> LinkOut:
        return cls(link_id=link.id, parent_id=link.parent_id, teen_id=link.teen_id, state=link.state,
                   limits=link.limits, updated_at=link.updated_at)


@router.post("/family/offers", summary="A pairing code for the parent's account")
def offer(body: OfferIn, m: M, principal: Platform) -> OfferOut:
    link, code = family.offer(m, body.parent_id, actor=principal.actor)
    return OfferOut(link_id=link.id, code=code, expires_at=link.code_expires_at)


@router.post("/family/links", summary="The code entered on the teen's account: link the two")
def confirm(body: ConfirmIn, m: M, principal: Platform) -> LinkOut:
    return LinkOut.of(family.confirm(m, body.code, body.teen_id, actor=principal.actor))


@router.put("/family/links/{link_id}/limits", summary="The parent's limits (they can only tighten)")
def put_limits(link_id: RowId, body: LimitsIn, m: M, principal: Platform) -> LinkOut:
    with m.db.read() as session:
        link = family._link(session, link_id)
        defaults = accounts.effective(m, session, link.teen_id).defaults if link.teen_id else None
    if defaults is None:
        defaults = m.rules.defaults_for(Band.UNKNOWN)
    return LinkOut.of(family.set_limits(m, link_id, body.parent_id, body.limits, actor=principal.actor,
                                        defaults=defaults))


@router.post("/family/links/{link_id}/unlink", summary="Unlink (either account); both are notified")
def unlink(link_id: RowId, body: UnlinkIn, m: M, principal: Platform) -> LinkOut:
    return LinkOut.of(family.unlink(m, link_id, body.account_id, actor=principal.actor))


@router.get("/accounts/{account_id}/family", summary="An account's family links: what is set, and by whom")
def account_family(account_id: AccountId, m: M, _p: Reader) -> list[LinkOut]:
    with m.db.read() as session:
        return [LinkOut.of(link) for link in family.links_of(session, account_id)]


# --- rules and cases -----------------------------------------------------------------------------------------------


class RuleOut(BaseModel):
    id: str
    actions: list[Action]
    actors: list[Band]
    targets: list[Band]
    decision: Decision
    mode: Literal["floor", "enforce", "shadow"]
    explanation: str
    source: str


class RulesOut(BaseModel):
    name: str
    version: str
    default: Decision
    error: str | None = Field(description="why the last edit of the file was refused (the previous rules hold)")
    rules: list[RuleOut]


@router.get("/minors/rules", summary="The interaction rules in force: the floor, then the platform's rules")
def get_rules(m: M, _p: Reader) -> RulesOut:
    return RulesOut(name=m.rules.spec.name, version=m.rules.spec.version, default=m.rules.default,
                    error=m.rules_file.error, rules=[_rule_out(r) for r in rule_table(m)])


def rule_table(m: Minors) -> list[Rule]:
    """The floor first, then the file's rules in order: the order in which a check reads them."""
    return [*FLOOR, *m.rules.rules]


def _rule_out(rule: Rule) -> RuleOut:
    return RuleOut(id=rule.id, actions=sorted(rule.actions), actors=sorted(rule.actors),
                   targets=sorted(b for b in rule.targets if b is not None), decision=rule.decision,
                   mode="floor" if rule.floor else "shadow" if rule.shadow else "enforce",
                   explanation=rule.explanation, source=rule.source)


class CaseOut(BaseModel):
    id: int
    account_id: str
    kind: CaseKind
    queue: str
    state: str
    detail: dict[str, Any]
    statement: dict[str, Any] | None
    opened_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, c: MinorsCase, detail: dict[str, Any] | None = None) -> CaseOut:
        return cls(id=c.id, account_id=c.account_id, kind=CaseKind(c.kind), queue=c.queue, state=c.state,
                   detail=c.detail if detail is None else detail, statement=c.statement, opened_at=c.opened_at,
                   updated_at=c.updated_at)


@router.get("/minors/cases", summary="Open under-13 and grooming cases, newest first (child-safety specialists)")
def list_cases(m: M, _p: CaseReader, kind: CaseKind | None = None) -> list[CaseOut]:
    with m.db.read() as session:
        found = interactions.cases(session, kind=kind)
        details = interactions.current_details(m, session, found)
        return [CaseOut.of(c, details.get(c.id)) for c in found]


class CaseDecisionIn(_In):
    confirmed: bool = Field(description="under 13: remove the account; grooming: the signals are real")
    note: str = Field(default="", max_length=2000)
    report: bool = Field(default=True, description="grooming, confirmed: draft a report to NCMEC of online "
                                                   "enticement of a child (its id in detail.report_id)")


@router.post("/minors/cases/{case_id}/decision", summary="Confirm or dismiss a minors case (once)")
def decide_case(case_id: RowId, body: CaseDecisionIn, m: M, principal: CaseReader) -> CaseOut:
    return CaseOut.of(cases.decide(m, case_id, confirmed=body.confirmed, note=body.note, actor=principal.actor,
                                   report=body.report))
