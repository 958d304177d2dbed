"""Console page of minors' safety: the rules in force in plain words, "what can A do to B?", grooming cases (child-
safety specialists only) and family links (read-only for moderators).

Confirmed grooming cases are listed after the open ones (the newest ``REPORTED_CASES``) with a link to the NCMEC report
each drafted, for those who may read reports (``roles.REPORTS``, as the reports page itself).

The question form only asks: it decides with ``minors.interactions.decide`` and records nothing, so a moderator
trying accounts leaves no deny events and raises no grooming case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.minors import family, interactions
from bastion.minors.api import minors, rule_table
from bastion.minors.events import CaseKind, CaseState
from bastion.minors.interfaces import QUESTION_ACTIONS, SOLO_ACTIONS, Band, MinorsError
from bastion.minors.rules import Rule
from bastion.minors.services import Minors
from bastion.web.console import ConsoleRoute, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
#: Console users who read the minors page (the platform's token has no console).
MINORS_PAGE = roles.MINORS_READ - {roles.Role.PLATFORM}
Reader = Annotated[SessionUser, Depends(role_required(MINORS_PAGE))]
_WHEN_WORDS = {"mutual": ("they follow each other", "they do not follow each other"),
               "follows": ("the actor follows the target", "the actor does not follow the target"),
               "followed_by": ("the target follows the actor", "the target does not follow the actor"),
               "conversation": ("they have a conversation", "they have no conversation"),
               "group_consent": ("the target agreed", "the target did not agree"),
               "age_restricted": ("the content is age-restricted", "the content is not age-restricted"),
               "borderline": ("the content is borderline", "the content is not borderline")}
#: How many confirmed grooming cases the page lists under the open ones (newest first), each with its report's link.
REPORTED_CASES = 20


def _bands(bands: frozenset[Any]) -> str:
    named = [b.value for b in Band if b in bands]  # youngest first, unknown last
    return "anyone" if len(named) == len(Band) else ", ".join(named)


def _when(rule: Rule) -> str:
    parts = [_WHEN_WORDS[name][0 if value else 1] for name in _WHEN_WORDS
             if (value := getattr(rule, name)) is not None]
    if rule.audience:
        parts.append("comments open to " + " or ".join(sorted(a.value for a in rule.audience if a is not None)))
    return "; ".join(parts) or "always"


def _rule_row(rule: Rule) -> dict[str, str]:
    return {"id": rule.id, "actions": ", ".join(sorted(a.value for a in rule.actions)), "actors": _bands(rule.actors),
            "targets": _bands(rule.targets), "when": _when(rule), "decision": rule.decision.value,
            "mode": "floor" if rule.floor else "shadow" if rule.shadow else "enforce",
            "explanation": rule.explanation, "source": rule.source}


@dataclass(frozen=True)
class Question:
    a: str = ""
    b: str = ""
    a_age: float | None = None
    b_age: float | None = None
    follows: bool = False
    followed_by: bool = False


def _answers(m: Minors, q: Question) -> list[dict[str, str]]:
    actor = interactions.AccountRef(q.a, q.a_age)
    target = interactions.AccountRef(q.b, q.b_age)
    context = interactions.Context(follows=q.follows, followed_by=q.followed_by)
    checks = [interactions.Check(actor, action, None if action in SOLO_ACTIONS else target, context)
              for action in QUESTION_ACTIONS]
    with m.db.read() as session:
        answers = interactions.decide(m, session, checks)
    return [{"action": c.action.value, "decision": a.verdict.decision.value, "rule": a.verdict.rule,
             "explanation": a.verdict.explanation, "actor_band": a.actor_band.value,
             "target_band": a.target_band.value if a.target_band else "—"}
            for c, a in zip(checks, answers, strict=True)]


def _question(request: Request) -> tuple[Question, str]:
    params = request.query_params
    a, b = params.get("a", "").strip(), params.get("b", "").strip()
    try:
        a_age = float(params["a_age"]) if params.get("a_age") else None
        b_age = float(params["b_age"]) if params.get("b_age") else None
    except ValueError:
        return Question(a, b), "An age is a number of years."
    if any(age is not None and not 0 <= age <= 130 for age in (a_age, b_age)):
        return Question(a, b), "An age is between 0 and 130 years."
    return Question(a, b, a_age, b_age, params.get("follows") == "on", params.get("followed_by") == "on"), ""


@router.get("/console/minors")
async def minors_page(request: Request, user: Reader) -> Response:
    m = minors(request)
    question, error = _question(request)
    specialist = user.principal.role in roles.MINORS_CASES
    reports_reader = user.principal.role in roles.REPORTS

    def load() -> dict[str, Any]:
        answers: list[dict[str, str]] = []
        problem = error
        if question.a and question.b and not problem:
            try:
                answers = _answers(m, question)
            except MinorsError as exc:
                problem = str(exc)
        with m.db.read() as session:
            links = [{"id": link.id, "parent": link.parent_id, "teen": link.teen_id, "state": link.state,
                      "limits": link.limits, "updated": link.updated_at} for link in family.all_links(session)]
            found = interactions.cases(session) if specialist else []
            if specialist:
                found += interactions.cases(session, kind=CaseKind.GROOMING, state=CaseState.CONFIRMED,
                                            limit=REPORTED_CASES)
            details = interactions.current_details(m, session, found)
            cases = [{"id": c.id, "account": c.account_id, "kind": c.kind, "queue": c.queue, "state": c.state,
                      "reasons": d.get("reasons", [f"age {d.get('years')} ({d.get('basis')})"]),
                      "attempts": d.get("attempts", []), "opened": c.opened_at,
                      "report_id": d.get("report_id") if reports_reader else None}
                     for c in found for d in [details.get(c.id, c.detail)]]
        return {"answers": answers, "question_error": problem, "links": links, "cases": cases}

    values = await run_in_threadpool(load)
    rules = m.rules
    return page(request, "minors.html", user, rules=[_rule_row(r) for r in rule_table(m)], rules_name=rules.spec.name,
                rules_version=rules.spec.version, default=rules.default.value, rules_error=m.rules_file.error,
                question=question, specialist=specialist, **values)
