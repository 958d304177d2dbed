"""Minors cases decided by child-safety specialists: an under-13 account confirmed for removal (the platform is sent
the statement of reasons to act on, and the statement is issued: queued for the DSA Transparency Database like every
restriction's), or grooming signals confirmed or dismissed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.minors import ages
from bastion.minors.events import CaseDecided, CaseKind, CaseState, EventKind, InvalidCaseTransition, next_case_state
from bastion.minors.interactions import current_details
from bastion.minors.interfaces import (
    CaseAlreadyDecided,
    CaseNotFound,
    ContactAttempt,
    EnticementCase,
    ReportingUnavailable,
)
from bastion.minors.models import MinorsCase
from bastion.minors.services import Minors, log, notify
from bastion.moderation.queries import StatementForSubmission


def get_case(session: Session, case_id: int) -> MinorsCase:
    case = session.get(MinorsCase, case_id)
    if case is None:
        raise CaseNotFound(f"no minors case {case_id}")
    return case


def decide(m: Minors, case_id: int, *, confirmed: bool, note: str, actor: str, report: bool = True) -> MinorsCase:
    """Decide a case once. The platform learns the outcome by webhook: for a confirmed under-13 account, with the
    statement of reasons; for grooming, the account and the outcome only (never which children it tried to reach).

    A confirmed grooming case drafts, in the same transaction, a report to NCMEC of online enticement of a child
    (unless ``report`` is false); its id goes in the case's ``detail.report_id``. Where no reporting is wired, the
    decision is refused rather than taken without the report asked for (fail closed).
    """
    with m.db.write() as session:
        case = get_case(session, case_id)
        try:
            state = next_case_state(CaseState(case.state), confirmed)
        except InvalidCaseTransition as exc:
            raise CaseAlreadyDecided(str(exc)) from None
        if case.kind == CaseKind.GROOMING.value:  # the attempts up to the decision are what it decided on
            case.detail = current_details(m, session, [case]).get(case.id, case.detail)
        case.state, case.updated_at = state.value, m.clock.now()
        report_id = None
        if state is CaseState.CONFIRMED and case.kind == CaseKind.GROOMING.value and report:
            if m.enticement is None:
                raise ReportingUnavailable("this app drafts no reports to NCMEC: decide with report = false, or "
                                           "decide on the platform app")
            report_id = m.enticement(session, enticement_case(case), actor=actor)
            case.detail = {**case.detail, "report_id": report_id}
        event = log(m, session, case.account_id, EventKind.CASE_DECIDED, actor,
                    CaseDecided(case_id=case.id, kind=case.kind, state=state.value, note=note, report_id=report_id))
        session.flush()
        body: dict[str, object] = {"case_id": case.id, "account_id": case.account_id, "case_kind": case.kind,
                                   "state": state.value}
        if state is CaseState.CONFIRMED and case.kind == CaseKind.UNDER_13.value and case.statement is not None:
            _issue_statement(m, session, case)
            body["statement"] = case.statement
        notify(m, session, EventKind.CASE_DECIDED, f"case:{case.id}:{event.id}", body)
        return case


def _issue_statement(m: Minors, session: Session, case: MinorsCase) -> None:
    """The removal is decided now: the drafted statement takes today's date, is marked issued (``statement_puid``)
    and is queued for the Transparency Database (Art. 24(5)) in this transaction. Drafting alone queues nothing: a
    dismissed case restricted no one."""
    statement = dict(case.statement or {})
    statement["application_date"] = m.clock.now().date().isoformat()
    # the facts written again from how the age was recorded: a statement drafted before the wording named no age
    # said the years, and this one goes to the public database
    facts = ages.under_13_facts(str(case.detail.get("basis", "")), case.detail.get("method") or None)
    statement["decision_facts"] = statement["incompatible_content_explanation"] = facts
    case.statement, case.statement_puid = statement, str(statement["puid"])
    session.flush()
    if m.on_statement is not None:
        m.on_statement(session, case.statement_puid)


def issued_statements(session: Session, puids: Sequence[str]) -> dict[str, StatementForSubmission]:
    """Issued under-13 statements by ``puid`` (unknown ones absent), for the Transparency Database's submission."""
    found: dict[str, StatementForSubmission] = {}
    for start in range(0, len(puids), 500):
        for case in session.scalars(select(MinorsCase).where(MinorsCase.statement_puid.in_(puids[start:start + 500]))):
            assert case.statement_puid is not None and case.statement is not None
            found[case.statement_puid] = StatementForSubmission(case.statement_puid, dict(case.statement),
                                                                case.account_id, case.updated_at)
    return found


def issued_statement_puids(session: Session, *, after: str = "", limit: int = 1000) -> list[str]:
    """Every issued under-13 statement's ``puid`` in order, a page at a time (the submission backfill's walk)."""
    return list(session.scalars(select(MinorsCase.statement_puid).where(
        MinorsCase.statement_puid.is_not(None), MinorsCase.statement_puid > after)
        .order_by(MinorsCase.statement_puid).limit(limit)).all())  # type: ignore[arg-type]


def enticement_case(case: MinorsCase) -> EnticementCase:
    """The grooming case's listed attempts, as the report needs them (time, action, target, decision)."""
    attempts = [ContactAttempt(dt.datetime.fromisoformat(a["at"]), str(a["action"]), str(a["target"]),
                               str(a["decision"])) for a in case.detail.get("attempts", [])]
    return EnticementCase(case.account_id, case.id, attempts)
