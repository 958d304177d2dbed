"""Upload moderation over HTTP: intake, notices, metrics, review queues, decisions, appeals, statements."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from bastion.core.auth import roles
from bastion.core.auth.roles import CHILD_SAFETY_ROLES, Role
from bastion.core.auth.services import Principal
from bastion.core.http import Problem, RowId, require
from bastion.core.uploads import spooled
from bastion.core.validators import country_code, http_url
from bastion.hashing.api import readable_media
from bastion.hashing.services import hash_path
from bastion.moderation import appeals, curation, decisions, intake, notices, queries
from bastion.moderation.events import AppealOutcome
from bastion.moderation.interfaces import StatementNotFound
from bastion.moderation.kernel import Moderation, get_item, may_see
from bastion.moderation.models import StatementOfReasons
from bastion.moderation.policy import Action, Category, ContentType
from bastion.moderation.schemas import (
    CONTENT_FORM,
    AppealAnswer,
    CaseAnswer,
    ContentAnswer,
    ContentEvent,
    ContentRecord,
    CurationAnswer,
    DecisionAnswer,
    MetricsAnswer,
    NoticeAnswer,
    PolicyAnswer,
    QueuesAnswer,
    StatementAnswer,
)
from bastion.review import services as review
from bastion.review.models import Case

router = APIRouter(prefix="/v1", tags=["moderation"])

PLATFORM = frozenset({Role.PLATFORM, Role.ADMIN})
REVIEWERS = roles.REVIEW
READERS = REVIEWERS | {Role.ANALYST, Role.PLATFORM}
_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}$")


def moderation(request: Request) -> Moderation:
    mod = request.app.state.moderation
    assert isinstance(mod, Moderation)
    return mod


async def _moderation(request: Request) -> Moderation:
    """``moderation`` as a dependency: async, since it only reads an attribute (no hop to the thread pool)."""
    return moderation(request)


#: The app's moderation services, as a dependency.
Mod = Annotated[Moderation, Depends(_moderation)]
Platform = Annotated[Principal, Depends(require(PLATFORM))]
Reader = Annotated[Principal, Depends(require(READERS))]
Reviewer = Annotated[Principal, Depends(require(REVIEWERS))]


def _field(form: Any, name: str, *, required: bool = True, pattern: re.Pattern[str] | None = None,
           max_len: int = 200) -> str:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile) or not str(value).strip():
        if required:
            raise Problem(422, "Invalid request", f"{name} is required")
        return ""
    text = str(value).strip()
    if len(text) > max_len or (pattern is not None and not pattern.match(text)):
        raise Problem(422, "Invalid request", f"{name} is not valid")
    return text


def _submission(form: Any) -> intake.Submission:
    try:
        age = float(_field(form, "account_age", max_len=10))
        content_type = ContentType(_field(form, "content_type", max_len=10))
    except ValueError:
        raise Problem(422, "Invalid request", "account_age must be a number of years and content_type one of "
                                              "image, video, text") from None
    if not 0 <= age <= 150:
        raise Problem(422, "Invalid request", "account_age must be between 0 and 150")
    live = _field(form, "live", required=False, max_len=5).lower() or "false"
    if live not in ("true", "false"):
        raise Problem(422, "Invalid request", "live must be true or false")
    return intake.Submission(
        content_id=_field(form, "content_id", pattern=_ID), account_id=_field(form, "account_id", pattern=_ID),
        uploader_age=age, account_country=_checked("account_country", country_code, _field(form, "account_country")),
        content_type=content_type, text=_field(form, "text", required=False, max_len=100_000),
        url=_checked("url", http_url, _field(form, "url", required=False, max_len=4000)),
        file_name=_field(form, "file_name", required=False, max_len=300), live=live == "true",
        language=_field(form, "language", required=False, pattern=_LANGUAGE).lower())


def _checked(name: str, check: Callable[[str], str], value: str) -> str:
    """A field through one of core's validators (an empty optional field stays empty); 422 with the reason."""
    try:
        return check(value) if value else value
    except ValueError as exc:
        raise Problem(422, "Invalid request", f"{name} is not valid: {exc}") from None


@router.post("/content", summary="Register an upload before publication and get its verdict",
             openapi_extra=CONTENT_FORM)
async def submit_content(request: Request, mod: Mod, principal: Platform) -> ContentAnswer:
    form = await request.form(max_files=1, max_fields=20)
    sub = _submission(form)
    media = form.get("media")
    if sub.content_type is not ContentType.TEXT and not isinstance(media, UploadFile):
        raise Problem(422, "Invalid request", f"a {sub.content_type.value} upload needs a file part named 'media'")
    if isinstance(media, UploadFile):
        settings = request.app.state.ctx.settings
        async with spooled(media, settings.max_upload_bytes, settings.spool_dir) as path:
            result = await run_in_threadpool(_judge_file, mod, sub, path, principal)
    else:
        result = await run_in_threadpool(intake.submit, mod, sub, None, actor=principal)
    return ContentAnswer(content_id=result.content_id, verdict=result.verdict.value, status=result.status.value,
                         reasons=result.reasons, case_id=result.case_id, statement_puid=result.statement_puid,
                         signals=result.signals, replay=result.replay)


def _judge_file(mod: Moderation, sub: intake.Submission, path: Path, principal: Principal) -> intake.IntakeResult:
    """Hash and judge in one worker thread: one hop off the event loop per upload, not two."""
    signals = readable_media(hash_path(path, variants=mod.matcher.wants_variants(),
                                       picture_px=intake.picture_px(mod)))
    if signals.kind.value != sub.content_type.value:
        raise Problem(422, "Invalid request",
                      f"content_type says {sub.content_type.value} but the file is {signals.kind.value}")
    return intake.submit(mod, sub, signals, actor=principal, media_path=path)


@router.get("/content/{content_id}", summary="An upload's status and its moderation history")
def get_content(content_id: str, mod: Mod, principal: Reader) -> ContentRecord:
    with mod.db.read() as session:
        item = get_item(session, content_id)
        record = ContentRecord(content_id=item.content_id, account_id=item.account_id, status=item.status,
                               verdict=item.verdict, restrictions=item.restrictions, category=item.category,
                               territories=item.territories if Action.DISABLE_IN_TERRITORIES.value
                               in item.restrictions else [],
                               views=item.views, events=[])
        if not may_see(mod, session, item, principal):
            if principal.role is not Role.PLATFORM:
                raise Problem(403, "Forbidden", "this content is restricted to child-safety specialists")
            return record  # the platform that uploaded it learns its status, not which bank or rule found it
        record.events = [ContentEvent(id=e.id, kind=e.kind, actor=e.actor, at=e.at.isoformat(),
                                      data=_platform_view(e.data) if principal.role is Role.PLATFORM else e.data)
                         for e in queries.history(session, content_id)]
        return record


#: What of an event's data the platform is told: the outcome it acts on, never which bank, rule, distance or score
#: found it (the uploader would learn how close they came, and banks shared under an exchange's terms would leak).
_PLATFORM_FIELDS = frozenset({"verdict", "public_reasons", "actions", "territories", "status", "puid", "views",
                              "shares", "account_id", "content_type", "until", "strikes"})


def _platform_view(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in _PLATFORM_FIELDS}


class NoticeBody(BaseModel):
    content_id: str
    category: Category
    explanation: str = Field(min_length=1, max_length=5000)
    notifier: str = Field(min_length=1, max_length=200)
    trusted_flagger: bool = False


@router.post("/notices", status_code=201, summary="A report by a user or trusted flagger (DSA Art. 16)")
def post_notice(body: NoticeBody, mod: Mod, principal: Platform) -> NoticeAnswer:
    case_id = notices.record_notice(mod, body.content_id, category=body.category, explanation=body.explanation,
                                    trusted_flagger=body.trusted_flagger, notifier=body.notifier, actor=principal)
    return NoticeAnswer(content_id=body.content_id, case_id=case_id)


class MetricsBody(BaseModel):
    views: int = Field(ge=0)
    shares: int = Field(default=0, ge=0)


@router.post("/content/{content_id}/metrics", summary="Views and shares; crossing a view threshold re-opens review")
def post_metrics(content_id: str, body: MetricsBody, mod: Mod, principal: Platform) -> MetricsAnswer:
    crossed = notices.record_metrics(mod, content_id, views=body.views, shares=body.shares, actor=principal)
    return MetricsAnswer(content_id=content_id, thresholds_crossed=crossed)


class AppealBody(BaseModel):
    statement_puid: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=5000)


@router.post("/appeals", status_code=201, summary="The uploader contests a decision (DSA Art. 20)")
def post_appeal(body: AppealBody, mod: Mod, principal: Platform) -> AppealAnswer:
    appeal = appeals.file_appeal(mod, body.statement_puid, body.text, actor=principal)
    return AppealAnswer(appeal_id=appeal.id, case_id=appeal.case_id, state=appeal.state)


@router.get("/statements/{puid}", summary="A statement of reasons, in the Transparency Database's fields",
            response_model=StatementAnswer, response_model_exclude_unset=True)
def get_statement(puid: str, mod: Mod, principal: Reader) -> dict[str, Any]:
    with mod.db.read() as session:
        statement = session.get(StatementOfReasons, puid)
        if statement is None:
            raise StatementNotFound(f"no statement {puid!r}")
        return dict(statement.body)


# --- review -------------------------------------------------------------------------------------------------------


def _visible_queues(mod: Moderation, principal: Principal) -> list[str]:
    return [q.name for q in mod.policy.queues if not q.restricted or principal.role in CHILD_SAFETY_ROLES]


def case_json(case: Case, mod: Moderation) -> CaseAnswer:
    now = mod.clock.now()
    return CaseAnswer(
        id=case.id, content_id=case.content_id, queue=case.queue, category=case.category, reason=case.reason,
        severity=case.severity, reach=case.reach, state=case.state, opened_at=case.opened_at.isoformat(),
        due_at=case.due_at.isoformat(), seconds_left=int((case.due_at - now).total_seconds()),
        claimed_by=case.claimed_by,
        claim_expires_at=case.claim_expires_at.isoformat() if case.claim_expires_at else None,
        escalated=case.escalated, escalation_note=case.escalation_note)


@router.get("/queues", tags=["review"], summary="Queues with counts, oldest case and next deadline")
def get_queues(mod: Mod, principal: Annotated[Principal, Depends(require(REVIEWERS | {Role.ANALYST}))]
               ) -> QueuesAnswer:
    visible = _visible_queues(mod, principal)
    with mod.db.read() as session:
        overview = review.queue_overview(session, visible)
    return QueuesAnswer.model_validate({"queues": [
        {"name": q.queue, "open": q.open, "claimed": q.claimed, "escalated": q.escalated,
         "sla_minutes": mod.sla_minutes(q.queue),
         "oldest_opened_at": q.oldest_opened_at.isoformat() if q.oldest_opened_at else None,
         "next_due_at": q.next_due_at.isoformat() if q.next_due_at else None}
        for q in overview if q.queue in visible]})


@router.post("/queues/{queue}/claim", tags=["review"], summary="Claim the most urgent case of a queue")
def claim(queue: str, mod: Mod, principal: Reviewer) -> CaseAnswer:
    if queue not in [q.name for q in mod.policy.queues]:
        raise Problem(404, "Queue not found", f"no queue {queue!r}")
    case = decisions.claim_next(mod, queue, principal)
    if case is None:
        raise Problem(404, "Queue empty", f"no case to claim in {queue}")
    return case_json(case, mod)


@router.post("/cases/{case_id}/release", tags=["review"], status_code=204, summary="Give a claimed case back")
def release(case_id: RowId, mod: Mod, principal: Reviewer) -> None:
    review.release(mod.db, case_id, reviewer=principal.actor, clock=mod.clock)


class DecisionBody(BaseModel):
    violation: bool
    actions: list[Action] = Field(default_factory=list, description="the actions taken; on an appeal partly "
                                                                     "reversed, the contested actions that stand")
    category: Category | None = None
    territories: list[str] = Field(default_factory=list)
    note: str = Field(default="", max_length=2000)
    appeal_outcome: AppealOutcome | None = Field(default=None, description="an appeal case's outcome; when not given, "
                                                 "violation means upheld and no violation reversed")


@router.post("/cases/{case_id}/decision", tags=["review"], summary="Decide a claimed case (or an appeal)",
             response_model=DecisionAnswer, response_model_exclude_unset=True)
def post_decision(case_id: RowId, body: DecisionBody, mod: Mod, principal: Reviewer) -> dict[str, object]:
    decision = decisions.ReviewDecision(violation=body.violation, actions=body.actions, category=body.category,
                                        territories=body.territories, note=body.note,
                                        appeal_outcome=body.appeal_outcome)
    return decisions.decide(mod, case_id, decision, reviewer=principal)


class EscalationBody(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


@router.post("/cases/{case_id}/escalate", tags=["review"], summary="Hand a claimed case up to senior reviewers")
def post_escalation(case_id: RowId, body: EscalationBody, mod: Mod, principal: Reviewer) -> CaseAnswer:
    return case_json(decisions.escalate(mod, case_id, body.note, reviewer=principal), mod)


class CurationBody(BaseModel):
    bank: str = Field(min_length=1, max_length=64)


@router.post("/content/{content_id}/curate", tags=["review"],
             summary="Add a human-confirmed violation's media to a bank (the curation loop)")
def post_curation(content_id: str, body: CurationBody, mod: Mod,
                  principal: Annotated[Principal, Depends(require(roles.CURATE_FROM_CASE))]) -> CurationAnswer:
    done = curation.curate(mod, content_id, body.bank, actor=principal)
    return CurationAnswer(content_id=content_id, bank=done.bank, added=done.added, skipped=done.skipped)


@router.get("/policy", tags=["moderation"], summary="The policy in force, and how each shadow rule would have done")
def get_policy(mod: Mod, principal: Annotated[Principal, Depends(require(roles.READ_QUEUES))]) -> PolicyAnswer:
    with mod.db.read() as session:
        report = queries.shadow_report(session)
    rules = queries.visible_rules(mod, principal)
    names = {r.name for r in rules}
    return PolicyAnswer.model_validate({
        "policy": mod.policy.label,
        "rules": [{"name": r.name, "category": r.category.value, "verdict": r.verdict.value, "mode": r.mode.value,
                   "severity": r.severity} for r in rules],
        "shadow": [{"rule": s.rule, "would_be": s.would_be, "held": s.held, "reviewed": s.reviewed,
                    "agreed": s.agreed, "agreement": s.agreement} for s in report if s.rule in names],
    })
