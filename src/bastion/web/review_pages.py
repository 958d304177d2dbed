"""Console pages for human review: queues, the case page, decisions, escalations, curation, reviewer settings.

Media is shown as the server-blurred, greyscale preview first; the clear preview is fetched only when a reviewer
reveals it (or has chosen to see media at once, which never applies to restricted queues). Every clear view of
media in a restricted queue is written to the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bastion.core.audit.services import AuditAction, record
from bastion.core.auth import roles
from bastion.core.auth.models import User
from bastion.core.auth.services import SessionUser
from bastion.core.context import context
from bastion.core.errors import DomainError
from bastion.matching import services as banks
from bastion.moderation import casefile, curation, decisions, queries
from bastion.moderation.api import moderation as app_moderation
from bastion.moderation.events import AppealOutcome
from bastion.moderation.kernel import may_review
from bastion.moderation.policy import Action, Category
from bastion.review import services as review
from bastion.review.models import CaseReason, CaseState
from bastion.web.console import (
    ConsoleRoute,
    CsrfField,
    PageError,
    check_csrf,
    flash,
    page,
    role_required,
)

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

Reader = Annotated[SessionUser, Depends(role_required(roles.READ_QUEUES))]
Reviewer = Annotated[SessionUser, Depends(role_required(roles.REVIEW))]
Curator = Annotated[SessionUser, Depends(role_required(roles.CURATE_FROM_CASE))]
Searcher = Annotated[SessionUser, Depends(role_required(roles.CASE_SEARCH))]
#: Case ids in paths: bounded, so an absurd id is a clear "not found", not a database overflow.
CaseId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: Outcomes the decision form posts; an appeal's "uphold" keeps the decision, "reverse" reinstates, "partly_reverse"
#: keeps the ticked actions (``standing``) and lifts the others.
_VIOLATION = {"violation": True, "uphold": True, "no_violation": False, "reverse": False, "partly_reverse": True}
#: One-key buttons of the case page and the outcome each stands for.
_QUICK = {"remove": "violation", "clear": "no_violation", "uphold": "uphold", "reverse": "reverse",
          "partly_reverse": "partly_reverse"}


def _duration(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m"


# --- queues -------------------------------------------------------------------------------------------------------


@router.get("/console/queues")
def queues_page(request: Request, user: Reader) -> Response:
    mod = app_moderation(request)
    now = mod.clock.now()
    visible = [q for q in mod.policy.queues if may_review(mod, q.name, user.principal)]
    with mod.db.read() as session:
        overview = {s.queue: s for s in review.queue_overview(session, [q.name for q in visible])}
        buckets = review.deadline_buckets(session, [q.name for q in visible], now)
    rows = []
    for spec in visible:
        status = overview[spec.name]
        rows.append({
            "name": spec.name, "sla": _duration(spec.sla_minutes * 60), "restricted": spec.restricted,
            "open": status.open, "claimed": status.claimed, "escalated": status.escalated,
            "oldest": _duration((now - status.oldest_opened_at).total_seconds()) if status.oldest_opened_at else "",
            "next_due": _duration((status.next_due_at - now).total_seconds()) if status.next_due_at else "",
            "overdue": status.next_due_at is not None and status.next_due_at < now,
        })
    return page(request, "queues.html", user, queues=rows, chart=_deadline_chart(buckets),
                 may_claim=user.principal.role in roles.REVIEW)


#: The chart's segments: label and colour, in the order of ``review.deadline_buckets``.
_SEGMENTS = (("overdue", "#b42318"), ("under 15 min", "#e8590c"), ("under 1 h", "#f59f00"),
             ("under 4 h", "#74b816"), ("later", "#adb5bd"))
_BAR_PX = 520


def _deadline_chart(buckets: dict[str, list[int]]) -> dict[str, Any]:
    """Stacked bars, one per queue, drawn server-side as SVG rectangles (no script, no inline style)."""
    widest = max((sum(c) for c in buckets.values()), default=0) or 1
    bars = []
    for queue, counts in buckets.items():
        x = 0.0
        parts = []
        for (label, colour), n in zip(_SEGMENTS, counts, strict=True):
            width = _BAR_PX * n / widest
            if n:
                parts.append({"x": round(x, 1), "width": round(width, 1), "colour": colour, "n": n, "label": label})
            x += width
        bars.append({"queue": queue, "total": sum(counts), "parts": parts})
    return {"bars": bars, "legend": _SEGMENTS, "width": _BAR_PX}


@router.post("/console/queues/{queue}/claim")
def claim_page(request: Request, queue: str, user: Reviewer, csrf_token: CsrfField = "") -> Response:
    check_csrf(user, csrf_token)
    return _take_next(request, queue, user)


def _take_next(request: Request, queue: str, user: SessionUser, done: str = "", *,
               passing: list[int] | None = None) -> Response:
    """Claim the next case of ``queue`` and go to it; ``done`` is what to tell the reviewer about the last one.

    ``passing``: the cases skipped in a row, left out, and carried on the next case's address for its skip button.
    """
    mod = app_moderation(request)
    if queue not in {q.name for q in mod.policy.queues}:
        raise PageError(404, "Not found", f"There is no queue named {queue}.", user)
    case = decisions.claim_next(mod, queue, user.principal, passing=passing or ())
    if case is None:
        response = RedirectResponse("/console/queues", status_code=303)
        waiting = f"No other case is waiting in {queue}." if passing else f"No case is waiting in {queue}."
        flash(response, request, "ok", f"{done} {waiting}".strip())
        return response
    query = f"?skipped={','.join(str(i) for i in passing)}" if passing else ""
    response = RedirectResponse(f"/console/cases/{case.id}{query}", status_code=303)
    if done:
        flash(response, request, "ok", done)
    return response


# --- the case list and an account's history ----------------------------------------------------------------------

#: States the case list filters on ("escalated": undecided and handed up).
_STATES = ("open", "claimed", "decided", "escalated")


@router.get("/console/cases")
def cases_page(request: Request, user: Searcher, content: str = "", account: str = "", queue: str = "",
               state: str = "", page_no: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1) -> Response:
    mod = app_moderation(request)
    queues = [q.name for q in mod.policy.queues if may_review(mod, q.name, user.principal)]
    wanted = casefile.CaseFilter(content=content.strip()[:200], account=account.strip()[:200],
                                 queue=queue if queue in queues else "", state=state if state in _STATES else "",
                                 page=page_no)
    with mod.db.read() as session:
        found = casefile.search(mod, session, user.principal, wanted)
    now = mod.clock.now()
    rows = [{"case": r.case, "account": r.account_id, "status": r.content_status,
             "opened": r.case.opened_at.strftime("%Y-%m-%d %H:%M"),
             "due": "" if r.case.state == CaseState.DECIDED.value else _duration((r.case.due_at - now).total_seconds())}
            for r in found.rows]
    keep = {k: v for k, v in (("content", wanted.content), ("account", wanted.account), ("queue", wanted.queue),
                              ("state", wanted.state)) if v}
    return page(request, "cases.html", user, rows=rows, wanted=wanted, queues=queues, states=_STATES,
                 previous=urlencode({**keep, "page": wanted.page - 1}) if wanted.page > 1 else "",
                 next=urlencode({**keep, "page": wanted.page + 1}) if found.has_next else "")


@router.get("/console/accounts/{account_id}")
def account_page(request: Request, account_id: Annotated[str, Path(max_length=200)], user: Searcher) -> Response:
    mod = app_moderation(request)
    with mod.db.read() as session:
        history = casefile.account_history(mod, session, account_id, user.principal)
    return page(request, "account.html", user, history=history)


# --- the case page ------------------------------------------------------------------------------------------------


#: Skipped cases remembered in a row (on the case's address): enough for a shift's run of skips, bounded.
MAX_SKIPPED = 50


def _skipped(raw: str) -> list[int]:
    """The case ids of a ``skipped`` list, junk dropped; the most recent ``MAX_SKIPPED`` kept."""
    ids = [int(p) for p in raw.split(",") if p.strip().isdigit() and 0 < int(p) < 2**63]
    return list(dict.fromkeys(ids))[-MAX_SKIPPED:]


@router.get("/console/cases/{case_id}")
def case_page(request: Request, case_id: CaseId, user: Reader, skipped: str = "") -> Response:
    mod = app_moderation(request)
    with mod.db.read() as session:
        file = casefile.load(mod, session, case_id, user.principal)
        reveal = _reveals_at_once(session, user) and not mod.restricted_queue(file.case.queue) \
            and not file.restricted
        bank_names = _curation_banks(session, user, restricted=file.restricted)
    now = mod.clock.now()
    case = file.case
    mine = casefile.is_open_for(case, user.principal) and user.principal.role in roles.REVIEW
    claim_left = _duration((case.claim_expires_at - now).total_seconds()) \
        if mine and case.claim_expires_at is not None else ""
    return page(
        request, "case.html", user, file=file, case=case, item=file.item, mine=mine, claim_left=claim_left,
        category_label=_category_label(file), may_search=user.principal.role in roles.CASE_SEARCH,
        skipped=",".join(str(i) for i in _skipped(skipped)),
        appeal=case.reason == CaseReason.APPEAL.value, decided=file.decided,
        reveal=reveal, time_left=_duration((case.due_at - now).total_seconds()), overdue=case.due_at < now,
        opened=case.opened_at.strftime("%Y-%m-%d %H:%M UTC"), categories=[c.value for c in Category],
        actions=[a.value for a in file.offered], proposed={a.value for a in file.offered[:1]},
        may_escalate=not case.escalated and user.principal.role not in roles.ESCALATIONS,
        curation_banks=bank_names, may_curate=bool(bank_names) and file.confirmed and case.state == CaseState.DECIDED,
        state_label=_state_label(case.state, case.escalated))


def _category_label(file: casefile.CaseFile) -> str:
    """A views case about content no one has classified is routed as borderline; say so rather than claim it."""
    case = file.case
    if case.reason == CaseReason.VIEWS.value and not file.item.category:
        return "not classified yet (sent back for its reach)"
    return case.category.replace("_", " ")


def _state_label(state: str, escalated: bool) -> str:
    return f"{state}, escalated" if escalated and state != CaseState.DECIDED.value else state


def _reveals_at_once(session: Any, user: SessionUser) -> bool:
    return bool(session.scalar(select(User.reveal_media).where(User.id == user.principal.id)))


def _curation_banks(session: Any, user: SessionUser, *, restricted: bool) -> list[str]:
    """Banks this reviewer may add confirmed media to: none outside the curation loop, and only restricted banks
    for suspected child sexual abuse material (``moderation.curate`` enforces the same)."""
    if user.principal.role not in roles.CURATE_FROM_CASE:
        return []
    return [s.bank.name for s in banks.list_banks(session) if banks.can_see(s.bank, user.principal)
            and s.bank.enabled and (s.bank.restricted or not restricted)]


@router.get("/console/cases/{case_id}/media")
def case_media(request: Request, case_id: CaseId, user: Reader, view: str = "blurred") -> Response:
    mod = app_moderation(request)
    clear = view == "clear"
    if clear and user.principal.role not in roles.REVIEW:
        raise PageError(403, "Forbidden", "Analysts see media blurred only.", user)
    jpeg = casefile.preview_jpeg(mod, case_id, user.principal, clear=clear)
    if jpeg is None:
        raise PageError(404, "Not found", "No preview was kept for this case.", user)
    if clear:
        _log_clear_view(request, case_id, user)
    return Response(jpeg, media_type="image/jpeg")


def _log_clear_view(request: Request, case_id: int, user: SessionUser) -> None:
    mod = app_moderation(request)
    with mod.db.write() as session:
        case = review.get_case(session, case_id)
        if mod.restricted_queue(case.queue):
            record(mod.db, session, actor=user.principal.actor, action=AuditAction.MEDIA_REVEALED,
                   subject=f"case:{case_id}", details={"content_id": case.content_id, "queue": case.queue})


# --- decisions, escalation, release, curation ---------------------------------------------------------------------


@router.post("/console/cases/{case_id}/decision")
async def decision_page(request: Request, case_id: CaseId, user: Reviewer) -> Response:
    form = await request.form(max_fields=60)
    check_csrf(user, str(form.get("csrf_token") or ""))
    quick = str(form.get("quick") or "")
    outcome = _QUICK.get(quick, str(form.get("outcome") or ""))
    chosen = [str(a) for a in form.getlist("actions")]
    if quick == "remove" and Action.REMOVE.value not in chosen:
        chosen.append(Action.REMOVE.value)
    back = RedirectResponse(f"/console/cases/{case_id}", status_code=303)
    try:
        decision = _decision(outcome, chosen, form)
    except ValueError as exc:
        flash(back, request, "error", str(exc))
        return back
    mod = app_moderation(request)
    try:
        result = await run_in_threadpool(decisions.decide, mod, case_id, decision, reviewer=user.principal)
    except DomainError as exc:  # the refusal is shown on the case page, the form kept
        flash(back, request, "error", str(exc))
        return back
    message = f"Case {case_id} decided: the content is now {result['status']}."
    bank = str(form.get("bank") or "")
    if bank and decision.violation and result.get("appeal") is None:
        message += " " + await run_in_threadpool(_curate_message, request, str(result["content_id"]), bank, user)
    queue = str(form.get("queue") or "")
    if form.get("next") and queue in {q.name for q in mod.policy.queues}:
        return await run_in_threadpool(_take_next, request, queue, user, message)
    flash(back, request, "ok", message)
    return back


def _decision(outcome: str, chosen: list[str], form: Any) -> decisions.ReviewDecision:
    if outcome not in _VIOLATION:
        raise ValueError("Choose an outcome.")
    partly = outcome == "partly_reverse"
    if partly:
        chosen = [str(a) for a in form.getlist("standing")]
    try:
        actions = [Action(a) for a in chosen] if _VIOLATION[outcome] else []
        category = Category(str(form.get("category"))) if form.get("category") else None
    except ValueError:
        raise ValueError("Unknown action or category.") from None
    territories = [t.strip().upper() for t in str(form.get("territories") or "").replace(";", ",").split(",")
                   if t.strip()]
    if any(len(t) != 2 or not t.isalpha() for t in territories):
        raise ValueError("Territories are two-letter country codes, separated by commas.")
    return decisions.ReviewDecision(violation=_VIOLATION[outcome], actions=actions, category=category,
                                     territories=territories, note=str(form.get("note") or "")[:2000],
                                     appeal_outcome=AppealOutcome.PARTLY_REVERSED if partly else None)


def _curate_message(request: Request, content_id: str, bank: str, user: SessionUser) -> str:
    if user.principal.role not in roles.CURATE_FROM_CASE:
        return "Adding to a bank needs a senior moderator, curator or child-safety role."
    try:
        done = curation.curate(app_moderation(request), content_id, bank, actor=user.principal)
    except DomainError as exc:  # said in the flash message beside the decision it follows
        return f"Not added to {bank}: {exc}."
    skipped = f" ({len(done.skipped)} skipped: {'; '.join(done.skipped)})" if done.skipped else ""
    return f"Added {len(done.added)} signal(s) to {bank}{skipped}."


@router.post("/console/cases/{case_id}/curate")
def curate_page(request: Request, case_id: CaseId, user: Curator, csrf_token: CsrfField = "",
                bank: Annotated[str, Form()] = "") -> Response:
    check_csrf(user, csrf_token)
    with app_moderation(request).db.read() as session:
        content_id = review.get_case(session, case_id).content_id
    response = RedirectResponse(f"/console/cases/{case_id}", status_code=303)
    flash(response, request, "ok", _curate_message(request, content_id, bank, user))
    return response


@router.post("/console/cases/{case_id}/escalate")
def escalate_page(request: Request, case_id: CaseId, user: Reviewer, csrf_token: CsrfField = "",
                  note: Annotated[str, Form()] = "", queue: Annotated[str, Form()] = "") -> Response:
    check_csrf(user, csrf_token)
    try:
        decisions.escalate(app_moderation(request), case_id, note, reviewer=user.principal)
    except DomainError as exc:
        response = RedirectResponse(f"/console/cases/{case_id}", status_code=303)
        flash(response, request, "error", str(exc))
        return response
    response = RedirectResponse("/console/queues", status_code=303)
    flash(response, request, "ok", f"Case {case_id} escalated to senior reviewers.")
    return response


@router.post("/console/cases/{case_id}/skip")
def skip_page(request: Request, case_id: CaseId, user: Reviewer, csrf_token: CsrfField = "",
              skipped: Annotated[str, Form()] = "") -> Response:
    """Give the case back and take another: the skipped ones are left out while the reviewer skips in a row."""
    check_csrf(user, csrf_token)
    mod = app_moderation(request)
    try:
        with mod.db.read() as session:
            queue = review.get_case(session, case_id).queue
        review.release(mod.db, case_id, reviewer=user.principal.actor, clock=mod.clock)
    except DomainError as exc:
        response = RedirectResponse(f"/console/cases/{case_id}", status_code=303)
        flash(response, request, "error", str(exc))
        return response
    passing = _skipped(f"{skipped},{case_id}")
    return _take_next(request, queue, user, f"Case {case_id} skipped: it is back in its queue.", passing=passing)


@router.post("/console/cases/{case_id}/release")
def release_page(request: Request, case_id: CaseId, user: Reviewer, csrf_token: CsrfField = "") -> Response:
    check_csrf(user, csrf_token)
    mod = app_moderation(request)
    response = RedirectResponse("/console/queues", status_code=303)
    try:
        review.release(mod.db, case_id, reviewer=user.principal.actor, clock=mod.clock)
    except DomainError as exc:
        flash(response, request, "error", str(exc))
        return response
    flash(response, request, "ok", f"Case {case_id} is back in its queue.")
    return response


# --- reviewer settings --------------------------------------------------------------------------------------------


@router.get("/console/settings")
def settings_page(request: Request, user: Reviewer) -> Response:
    with context(request).db.read() as session:
        reveal = _reveals_at_once(session, user)
    return page(request, "settings.html", user, reveal_media=reveal)


@router.post("/console/settings")
def save_settings(request: Request, user: Reviewer, csrf_token: CsrfField = "",
                  reveal_media: Annotated[str, Form()] = "") -> Response:
    check_csrf(user, csrf_token)
    ctx = context(request)
    wanted = reveal_media == "on"
    with ctx.db.write() as session:
        row = session.get(User, user.principal.id)
        if row is not None and row.reveal_media != wanted:
            row.reveal_media = wanted
            record(ctx.db, session, actor=user.principal.actor, action=AuditAction.SETTING_CHANGED,
                   subject=f"user:{user.principal.name}", details={"reveal_media": wanted})
    response = RedirectResponse("/console/settings", status_code=303)
    flash(response, request, "ok", "Media will be shown at once (never in restricted queues)." if wanted
           else "Media will be shown blurred until you reveal it.")
    return response



# --- the policy in force ------------------------------------------------------------------------------------------


@router.get("/console/policy")
def policy_page(request: Request, user: Reader) -> Response:
    mod = app_moderation(request)
    with mod.db.read() as session:
        shadow = {s.rule: s for s in queries.shadow_report(session)}
    policy = mod.policy
    rules = [{"name": r.name, "category": r.category.value, "verdict": r.verdict.value, "mode": r.mode.value,
              "severity": r.severity, "when": r.when.describe(), "actions": [a.value for a in r.actions],
              "queue": policy.queue_for(r).name, "shadow": shadow.get(r.name)}
             for r in queries.visible_rules(mod, user.principal)]
    queues = [q for q in policy.queues if may_review(mod, q.name, user.principal)]
    return page(request, "policy.html", user, policy=policy.label, rules=rules,
                 queues=queues, thresholds=policy.view_thresholds)
