"""Ages as the platform knows them, the band each gives, contests, and under-13 accounts flagged for removal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.minors import bands
from bastion.minors.events import (
    AgeContestDecided,
    AgeContested,
    AgeRecorded,
    CaseKind,
    CaseOpened,
    CaseState,
    EventKind,
)
from bastion.minors.interfaces import AgeBasis, AgeNotRecorded, Band, InvalidAge
from bastion.minors.models import AgeRecord, MinorsCase
from bastion.minors.services import Minors, log
from bastion.moderation import statements

UNDER_13_QUEUE = "under_13"
MAX_YEARS = 130.0


@dataclass(frozen=True)
class Age:
    """What the platform knows: ``years`` on some ``basis`` (an estimate with its method and confidence)."""

    basis: AgeBasis
    years: float
    method: str = ""
    confidence: float | None = None
    observed_at: dt.datetime | None = None

    def check(self) -> None:
        if not 0 <= self.years <= MAX_YEARS:
            raise InvalidAge(f"age must be between 0 and {MAX_YEARS:g} years, got {self.years:g}")
        if self.basis is AgeBasis.ESTIMATED and self.confidence is None:
            raise InvalidAge("an estimated age needs its confidence (0 to 1)")
        if self.confidence is not None and not 0 <= self.confidence <= 1:
            raise InvalidAge("confidence must be between 0 and 1")
        if self.basis is not AgeBasis.DECLARED and not self.method:
            raise InvalidAge(f"a {self.basis.value} age needs its method (e.g. facial-estimation, eu-age-app)")

    @property
    def band(self) -> Band:
        return bands.band_for(self.basis, self.years, self.confidence)


def record_age(m: Minors, account_id: str, age: Age, *, actor: str) -> AgeRecord:
    """Record what the platform knows now; an under-13 band opens (or keeps) a removal case with its statement."""
    age.check()
    with m.db.write() as session:
        return _record(m, session, account_id, age, actor)


def _record(m: Minors, session: Session, account_id: str, age: Age, actor: str) -> AgeRecord:
    now = m.clock.now()
    observed = age.observed_at or now
    row = session.get(AgeRecord, account_id)
    if row is None:
        row = AgeRecord(account_id=account_id)
        session.add(row)
    row.basis, row.years, row.method, row.confidence = age.basis.value, age.years, age.method, age.confidence
    row.band, row.observed_at, row.recorded_at = age.band.value, observed, now
    log(m, session, account_id, EventKind.AGE_RECORDED, actor,
        AgeRecorded(basis=row.basis, years=row.years, method=row.method, confidence=row.confidence,
                    band=row.band, observed_at=observed.isoformat()))
    if age.band is Band.UNDER_13:
        _flag_under_13(m, session, row)
    return row


def get_age(session: Session, account_id: str) -> AgeRecord:
    row = session.get(AgeRecord, account_id)
    if row is None:
        raise AgeNotRecorded(f"no age has been recorded for account {account_id!r}")
    return row


def contest(m: Minors, account_id: str, statement: str, *, actor: str) -> None:
    """The account holder contests the band (through the platform): recorded, to be decided by ``decide_contest``."""
    with m.db.write() as session:
        row = get_age(session, account_id)
        log(m, session, account_id, EventKind.AGE_CONTESTED, actor, AgeContested(statement=statement, band=row.band))


def decide_contest(m: Minors, account_id: str, *, upheld: bool, new_age: Age | None, note: str, actor: str
                   ) -> AgeRecord:
    """The outcome of a contest is an event; an upheld contest records the new age (e.g. verified) with it."""
    if upheld and new_age is None:
        raise InvalidAge("an upheld contest needs the age it establishes")
    if new_age is not None:
        new_age.check()
    with m.db.write() as session:
        before = get_age(session, account_id).band
        current = _record(m, session, account_id, new_age, actor) if upheld and new_age is not None \
            else get_age(session, account_id)
        log(m, session, account_id, EventKind.AGE_CONTEST_DECIDED, actor,
            AgeContestDecided(upheld=upheld, band_before=before, band_after=current.band, note=note))
        return current


def _flag_under_13(m: Minors, session: Session, row: AgeRecord) -> MinorsCase:
    existing = session.scalar(select(MinorsCase).where(
        MinorsCase.account_id == row.account_id, MinorsCase.kind == CaseKind.UNDER_13.value,
        MinorsCase.state == CaseState.OPEN.value))
    detail = {"basis": row.basis, "years": row.years, "method": row.method, "confidence": row.confidence}
    now = m.clock.now()
    if existing is not None:
        existing.detail, existing.updated_at = detail, now
        return existing
    case = MinorsCase(account_id=row.account_id, kind=CaseKind.UNDER_13.value, queue=UNDER_13_QUEUE,
                      state=CaseState.OPEN.value, detail=detail, statement=under_13_statement(row, now),
                      opened_at=now, updated_at=now)
    session.add(case)
    session.flush()
    log(m, session, row.account_id, EventKind.CASE_OPENED, "system",
        CaseOpened(case_id=case.id, kind=case.kind, queue=case.queue, reason="age band under 13"))
    return case


def under_13_facts(basis: str, method: str | None) -> str:
    """The statement's facts: how the age was recorded, never the age itself (this goes to the public database)."""
    return (f"The account holder's age, as recorded ({basis}{', ' + method if method else ''}), is below the minimum "
            "age of 13 in the terms of service.")


def under_13_statement(row: AgeRecord, now: dt.datetime) -> dict[str, object]:
    """The statement of reasons (DSA Art. 17) drafted for the removal, checked against the Transparency Database's
    rules; a moderator confirms the removal, so the decision is not automated. It is sent to the database as it is
    (less the account id, ``sor_client.scrub``), so it names no age, date of birth or account."""
    facts = under_13_facts(row.basis, row.method)
    body: dict[str, object] = {
        "puid": statements.new_puid(), "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "category": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        "category_specification": ["KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS"],
        "content_type": ["CONTENT_TYPE_OTHER"], "content_type_other": "account",
        "content_date": now.date().isoformat(), "application_date": now.date().isoformat(),
        "decision_account": "DECISION_ACCOUNT_TERMINATED", "decision_facts": facts,
        "incompatible_content_ground": "Terms of service: minimum age of 13",
        "incompatible_content_explanation": facts, "source_type": statements.Source.OWN_INITIATIVE,
        "automated_detection": "Yes", "automated_decision": "AUTOMATED_DECISION_NOT_AUTOMATED",
    }
    found = statements.problems(body)
    assert not found, found  # built here from fixed fields: a problem is a bug, not bad input
    return body
