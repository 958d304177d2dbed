"""Drafting, sending, preserving and exporting child-safety reports.

Drafts come from moderation's event log: content a child-safety specialist confirmed as child sexual abuse
material, and uploads blocked by a match in a restricted bank of known material. One report per offending
account, with all its unreported files. A specialist reviews the draft and sends it; sending validates the NCMEC
XML against the schema and writes the deliveries and the outbox message in one transaction, so a crash loses
nothing and the outbox carries it (``reporting/tasks.py``).

Bastion does not keep uploads (only sealed previews), so the report's file bytes come from the platform, which
holds the original: ``supply_material`` checks them against the hashes taken at upload before sealing them.
A file with no bytes is reported by its hashes alone (named in ``additionalInfo``), never silently dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from bastion.core.audit.services import AuditAction, record
from bastion.core.auth.roles import CHILD_SAFETY_ROLES
from bastion.core.auth.services import Principal
from bastion.core.clock import Clock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.events import record as record_event
from bastion.core.outbox.kinds import MessageKind
from bastion.core.outbox.models import DeliveryState as OutboxState
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import enqueue
from bastion.core.outbox.webhooks import canonical_body
from bastion.core.sealing import Sealer
from bastion.core.signing import SigningKey
from bastion.matching import services as banks
from bastion.moderation import queries as moderated
from bastion.moderation.events import ContentStatus
from bastion.moderation.policy import Category
from bastion.reporting import ncmec
from bastion.reporting.events import (
    Attempt,
    DeliveryChanged,
    Drafted,
    MaterialSupplied,
    Purged,
    RepeatRecorded,
    ReportEventKind,
    Revised,
    Sent,
    allowed_from,
    next_state,
)
from bastion.reporting.interfaces import (
    AlreadyReported,
    CentreName,
    Classification,
    DeliveryState,
    InvalidReport,
    InvalidTransition,
    MaterialGone,
    MaterialMismatch,
    ReportingError,
    ReportNotFound,
    ReportState,
    Trigger,
)
from bastion.reporting.models import ChildSafetyReport, ReportDelivery, ReportedFile, ReportedRepeat, ReportEvent


class ReportMessage(MessageKind):
    """Outbox kinds; ``tasks.ReportSender`` delivers them all. Values are storage keys."""

    NCMEC = "report.ncmec"
    NCMEC_RETRACT = "report.ncmec_retract"
    EU_CENTRE = "report.eu_centre"


NCMEC_KIND = ReportMessage.NCMEC
NCMEC_RETRACT_KIND = ReportMessage.NCMEC_RETRACT
EU_CENTRE_KIND = ReportMessage.EU_CENTRE
LEGAL_BASIS = "Art. 12 and 13 of the proposed Regulation laying down rules to prevent and combat child sexual " \
              "abuse, COM(2022) 209 (provisional text)"
REMOVED_STATUSES = frozenset({ContentStatus.BLOCKED.value, ContentStatus.REMOVED.value})
#: Advisory lock that orders drafting rounds on PostgreSQL (SQLite has one writer at a time already).
DRAFTING_LOCK = 0x5245504F5254
#: Reports in the outbox or half-way through NCMEC's procedure: their material must still be there to upload.
IN_FLIGHT = frozenset(s.value for s in ReportState if s not in allowed_from(ReportEventKind.PURGED))


@dataclass(frozen=True)
class Reporting:
    """What the reporting services need: the database, the clock, the media sealer and the settings."""

    db: Database
    clock: Clock
    sealer: Sealer
    settings: Settings

    @property
    def reporter(self) -> ncmec.Reporter:
        return ncmec.Reporter(platform=self.settings.orders_provider, email=self.settings.reports_reporter_email)

    @property
    def signing_key(self) -> SigningKey | None:
        """The platform's Ed25519 key (``BASTION_ORDERS_SIGNING_KEY``, the one its order answers are signed with):
        it signs the EU Centre's report (Art. 13(b)). ``ValueError`` when set but malformed."""
        text = self.settings.orders_signing_key
        return SigningKey.from_text(text) if text else None

    @property
    def eu_centre(self) -> bool:
        return bool(self.settings.eu_centre_url)

    @property
    def ncmec_url(self) -> str:
        """An explicit URL, else production only when an operator switched it on, else NCMEC's test system."""
        s = self.settings
        return s.ncmec_url or (ncmec.PRODUCTION_URL if s.ncmec_production else ncmec.TEST_URL)


def fingerprint(account_id: str, incident_type: str, media_hashes: Iterable[str]) -> str:
    """Same account, same kind of incident, same material: same fingerprint, whatever the order of the files."""
    parts = [account_id, incident_type, *sorted(set(media_hashes))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _media_hash(f: ReportedFile) -> str:
    return f"sha256:{f.sha256}" if f.sha256 else f"md5:{f.md5}" if f.md5 else f"content:{f.content_id}"


def _material(report: ChildSafetyReport) -> str:
    return f"report-file:{report.id}"


def transition(session: Session, clock: Clock, report: ChildSafetyReport, kind: ReportEventKind, *, actor: str,
               data: BaseModel | None = None, delivery: ReportDelivery | None = None) -> ReportEvent:
    """Move the report, or one of its deliveries, by ``kind`` (``events.next_state``: ``InvalidTransition`` when
    it may not happen now) and record the event, in the caller's transaction. The report follows NCMEC's delivery.
    """
    now = clock.now()
    if delivery is None:
        current = ReportState(report.state) if report.state else None
        report.state = next_state(current, kind).value
    else:
        delivery.state = next_state(ReportState(delivery.state), kind).value
        delivery.updated_at = now
        if delivery.centre == CentreName.NCMEC.value:
            report.state = delivery.state
    return record_event(session, ReportEvent, subject=report.id, kind=kind, actor=actor, at=now, data=data)


def report_history(session: Session, report_id: str) -> list[ReportEvent]:
    """The report's events, oldest first."""
    return list(session.scalars(select(ReportEvent).where(ReportEvent.subject == report_id).order_by(ReportEvent.id)))


# --- drafting -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """Confirmed material not yet in any report."""

    item: moderated.ContentView
    trigger: Trigger
    classification: str


def _classification(categories: Iterable[object]) -> str:
    """A bank entry whose category names a class (``csam-A1``) gives it; otherwise the specialist sets it."""
    for category in categories:
        for code in Classification:
            if str(category).upper().endswith(code.value):
                return code.value
    return ""


#: Restricted-bank categories that are not child sexual abuse material: intimate images shared without consent
#: (StopNCII's ``ncii``). Blocked and kept to child-safety specialists like the rest of a restricted bank, but a
#: report to NCMEC or the EU Centre is drafted from them only when a specialist confirms CSAM. Named here, in what the
#: entry is, so that any other category (or none) still drafts a report: the protective outcome.
NOT_CHILD_ABUSE = frozenset({"ncii"})


def candidates(session: Session) -> list[Candidate]:
    reported = select(ReportedFile.content_id)
    repeated = select(ReportedRepeat.content_id)  # recorded as another upload of a reported file: covered
    found: list[Candidate] = []
    for item in moderated.suspected_csam(session, excluding=[reported, repeated]):
        decision = moderated.confirmed_violation(session, item.content_id)
        if decision is not None and decision.category == Category.CSAM.value:
            found.append(Candidate(item, Trigger.SPECIALIST, ""))
            continue
        matches = moderated.blocked_by_restricted_match(session, item.content_id)
        if matches is not None and not all(m.category in NOT_CHILD_ABUSE for m in matches):
            found.append(Candidate(item, Trigger.KNOWN_HASH, _classification(m.category for m in matches)))
    return found


def _hashes(item: moderated.ContentView) -> tuple[str, str]:
    return item.signal("md5"), item.signal("sha256")


def _refresh_fingerprint(session: Session, report: ChildSafetyReport) -> None:
    files = session.scalars(select(ReportedFile).where(ReportedFile.report_id == report.id)).all()
    report.fingerprint = fingerprint(report.account_id, report.incident_type, (_media_hash(f) for f in files))
    report.incident_at = min(f.uploaded_at for f in files)
    report.removed = all(content_status(session, f.content_id) in REMOVED_STATUSES for f in files)


def content_status(session: Session, content_id: str) -> str:
    return moderated.content_status(session, content_id)


def draft_pending(rep: Reporting, *, actor: str = "system:drafting") -> list[str]:
    """Draft reports for every confirmed piece of material not yet reported; returns the ids of drafts touched.

    Material the same account was already reported for (same hash) is not a second file: it is recorded as
    another upload of that file (``ReportedRepeat``), which its report names while it is a draft.
    Idempotent: run it as often as you like (the API, the CLI and the app's drafting loop all do).
    """
    touched: list[str] = []
    with rep.db.read() as session:  # the usual round finds nothing: no write lock for that
        if not candidates(session):
            return touched
    with rep.db.write() as session:
        # Two rounds racing (the app's loop and a specialist's click, on two replicas) must not both draft the
        # same material: the second waits here and then finds it reported (``content_id`` is unique as well).
        rep.db.serialize_writers(session, DRAFTING_LOCK)
        by_account: dict[str, list[Candidate]] = defaultdict(list)
        for candidate in candidates(session):
            by_account[candidate.item.account_id].append(candidate)
        for account_id, found in by_account.items():
            known = _known_files(session, account_id)
            report = session.scalar(select(ChildSafetyReport).where(
                ChildSafetyReport.account_id == account_id, ChildSafetyReport.state == ReportState.DRAFT.value,
                ChildSafetyReport.purged_at.is_(None))  # a purged draft takes no new material
                .order_by(ChildSafetyReport.created_at).limit(1))
            now = rep.clock.now()
            added = 0
            for candidate in found:
                md5, sha256 = _hashes(candidate.item)
                if sha256 and sha256 in known:
                    repeat = _record_repeat(session, rep.clock, known[sha256], candidate.item, actor=actor)
                    if not repeat.after_sending:
                        touched.append(repeat.report_id)
                    continue
                if report is None:
                    report = ChildSafetyReport(
                        id=str(uuid.uuid4()), account_id=account_id, account_country=candidate.item.account_country,
                        incident_type=ncmec.CSAM_INCIDENT, incident_at=candidate.item.created_at,
                        trigger=candidate.trigger.value, urgent_reason="", removed=True, fingerprint="",
                        state="", created_at=now, sent_by="",
                        preserve_until=now + dt.timedelta(days=rep.settings.reports_preservation_days))
                    session.add(report)
                    transition(session, rep.clock, report, ReportEventKind.DRAFTED, actor=actor,
                               data=Drafted(account_id=account_id, trigger=candidate.trigger.value))
                    session.flush()
                row = ReportedFile(
                    report_id=report.id, content_id=candidate.item.content_id, account_id=account_id,
                    trigger=candidate.trigger.value, content_type=candidate.item.content_type, md5=md5, sha256=sha256,
                    classification=candidate.classification, uploaded_at=candidate.item.created_at, file_name="",
                    original_file_name=ncmec.xml_safe(candidate.item.file_name)[:300], sealed=None, size=0,
                    ncmec_file_id="", ncmec_md5="", ncmec_details_sent=False, ncmec_details="", attached=False)
                session.add(row)
                if sha256:
                    known[sha256] = row
                added += 1
            if report is not None and added:
                session.flush()
                _refresh_fingerprint(session, report)
                touched.append(report.id)
    return list(dict.fromkeys(touched))


def _known_files(session: Session, account_id: str) -> dict[str, ReportedFile]:
    """The account's reported files by SHA-256 (the first of each, should a hash repeat)."""
    rows = session.scalars(select(ReportedFile).where(ReportedFile.account_id == account_id,
                                                      ReportedFile.sha256 != "").order_by(ReportedFile.id))
    known: dict[str, ReportedFile] = {}
    for row in rows:
        known.setdefault(row.sha256, row)
    return known


def _record_repeat(session: Session, clock: Clock, first: ReportedFile, item: moderated.ContentView, *,
                   actor: str) -> ReportedRepeat:
    """The same account uploaded a reported file again: another incident of it, recorded with its report.

    In a draft, the report will name it; once the report was sent, the report as sent covers it (recorded, so it
    is no longer a candidate and the console can show it). Either way a duplicate report was avoided: the
    ``report.repeat_recorded`` event, written here in the row's transaction, is what transparency counts (the
    figures come from events, never from this table).
    """
    session.flush()  # ``first`` may be new in this round
    report = session.get(ChildSafetyReport, first.report_id)
    assert report is not None  # ``report_id`` is a foreign key, and a report is never deleted while its files stay
    sent = report.state != ReportState.DRAFT.value
    repeat = ReportedRepeat(report_id=first.report_id, content_id=item.content_id, repeat_of=first.content_id,
                            uploaded_at=item.created_at, after_sending=sent)
    session.add(repeat)
    transition(session, clock, report, ReportEventKind.REPEAT_RECORDED, actor=actor,
               data=RepeatRecorded(content_id=item.content_id, repeat_of=first.content_id, after_sending=sent))
    return repeat


# --- online enticement -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnticementAttempt:
    """One attempt to reach a minor: when, by which action (``dm``, ``follow``...), which account, and whether the
    platform let it through (``allow``) or Bastion stopped it (``deny``)."""

    at: dt.datetime
    action: str
    target: str
    decision: str


@dataclass(frozen=True)
class EnticementRequest:
    """What a confirmed grooming case gives a report of online enticement: the adult, where it comes from
    (``minors-case:<id>``, one report per source) and the attempts. Nothing else about the children."""

    account_id: str
    source: str
    attempts: Sequence[EnticementAttempt]


def draft_enticement(rep: Reporting, session: Session, request: EnticementRequest, *, actor: str) -> str:
    """Draft a report to NCMEC of online enticement of a child, in the caller's transaction (the confirmation of
    the case that raised it); returns its id. A second request from the same source returns the first report.

    The report has no files: it names the adult as the reported user, each minor reached as a victim (the
    platform's account id only) and each attempt in ``additionalInfo``. A specialist reviews and sends it like any
    other draft.
    """
    if not request.attempts:
        raise InvalidReport("an enticement report needs the attempts it reports")
    if any(ncmec.xml_unsafe(t) for a in request.attempts for t in (a.action, a.target)) or ncmec.xml_unsafe(
            request.account_id):
        raise InvalidReport("an attempt holds characters an XML report cannot carry")
    mark = fingerprint(request.account_id, ncmec.ENTICEMENT_INCIDENT, [request.source])
    earlier = session.scalar(select(ChildSafetyReport.id).where(ChildSafetyReport.fingerprint == mark))
    if earlier is not None:
        return earlier
    now = rep.clock.now()
    report = ChildSafetyReport(
        id=str(uuid.uuid4()), account_id=request.account_id, account_country="",
        incident_type=ncmec.ENTICEMENT_INCIDENT, incident_at=min(a.at for a in request.attempts),
        trigger=Trigger.GROOMING_CASE.value, urgent_reason="", removed=False, fingerprint=mark, state="",
        created_at=now, sent_by="", preserve_until=now + dt.timedelta(days=rep.settings.reports_preservation_days))
    session.add(report)
    transition(session, rep.clock, report, ReportEventKind.DRAFTED, actor=actor, data=Drafted(
        account_id=request.account_id, trigger=Trigger.GROOMING_CASE.value, source=request.source,
        attempts=[Attempt(at=ncmec.iso(a.at), action=a.action, target=a.target, decision=a.decision)
                  for a in sorted(request.attempts, key=lambda a: a.at)]))
    session.flush()
    return report.id


def enticement_attempts(session: Session, report: ChildSafetyReport) -> list[Attempt]:
    """The attempts an enticement report names (recorded with its drafting); none for a report of material."""
    if report.incident_type != ncmec.ENTICEMENT_INCIDENT:
        return []
    drafted = session.scalar(select(ReportEvent).where(ReportEvent.subject == report.id,
                                                       ReportEvent.kind == ReportEventKind.DRAFTED.value).limit(1))
    return Drafted.model_validate(drafted.data).attempts if drafted is not None else []


# --- reading ------------------------------------------------------------------------------------------------------


def get_report(session: Session, report_id: str) -> ChildSafetyReport:
    report = session.get(ChildSafetyReport, report_id)
    if report is None:
        raise ReportNotFound(f"no report {report_id!r}")
    return report


def files_of(session: Session, report_id: str) -> list[ReportedFile]:
    return list(session.scalars(select(ReportedFile).where(ReportedFile.report_id == report_id)
                                .order_by(ReportedFile.uploaded_at, ReportedFile.content_id)))


def repeats_of(session: Session, report_id: str) -> list[ReportedRepeat]:
    return list(session.scalars(select(ReportedRepeat).where(ReportedRepeat.report_id == report_id)
                                .order_by(ReportedRepeat.uploaded_at, ReportedRepeat.content_id)))


def deliveries_of(session: Session, report_id: str) -> dict[CentreName, ReportDelivery]:
    rows = session.scalars(select(ReportDelivery).where(ReportDelivery.report_id == report_id))
    return {CentreName(d.centre): d for d in rows}


def report_view(session: Session, report: ChildSafetyReport) -> dict[str, Any]:
    """The API and console shape: state, files (hashes, never bytes), and each centre's id, state and error."""
    (view,) = report_views(session, [report])
    return view


def report_views(session: Session, reports: Sequence[ChildSafetyReport]) -> list[dict[str, Any]]:
    """``report_view`` of many reports in six statements, however many there are (the console's list).

    Files are read without their sealed bytes: a list says whether material is held, it never carries it. Each file
    names the bank entries it matched and where they came from (``known_from``: an exchange and its record).
    """
    ids = [r.id for r in reports]
    files: dict[str, list[dict[str, Any]]] = defaultdict(list)
    repeats: dict[str, list[dict[str, Any]]] = defaultdict(list)
    centres: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    if ids:
        held = ReportedFile.sealed.is_not(None).label("held")
        for f, is_held in session.execute(
                select(ReportedFile, held).where(ReportedFile.report_id.in_(ids)).options(defer(ReportedFile.sealed))
                .order_by(ReportedFile.uploaded_at, ReportedFile.content_id)):
            files[f.report_id].append({
                "content_id": f.content_id, "content_type": f.content_type, "trigger": f.trigger, "md5": f.md5,
                "sha256": f.sha256, "classification": f.classification or None, "material_held": bool(is_held),
                "ncmec_file_id": f.ncmec_file_id or None, "original_file_name": f.original_file_name or None})
        views = [view for per_report in files.values() for view in per_report]
        matched = moderated.restricted_matches_of(session, [view["content_id"] for view in views])
        origins = banks.origins_of(session, [m.entry_id for ms in matched.values() for m in ms])
        for view in views:
            view["known_from"] = [f"{m.bank} entry {m.entry_id}" + "".join(f" from {o.label()}"
                                                                            for o in origins.get(m.entry_id, []))
                                  for m in matched.get(view["content_id"], [])]
        for r in session.scalars(select(ReportedRepeat).where(ReportedRepeat.report_id.in_(ids))
                                 .order_by(ReportedRepeat.uploaded_at, ReportedRepeat.content_id)):
            repeats[r.report_id].append({"content_id": r.content_id, "repeat_of": r.repeat_of,
                                         "uploaded_at": r.uploaded_at.isoformat(), "after_sending": r.after_sending})
        for d in session.scalars(select(ReportDelivery).where(ReportDelivery.report_id.in_(ids))
                                 .options(defer(ReportDelivery.document)).order_by(ReportDelivery.id)):
            centres[d.report_id][d.centre] = {"state": d.state, "id": d.remote_id or None, "error": d.error or None,
                                              "centre_status": d.centre_status or None}
    return [{
        "id": report.id, "account_id": report.account_id, "state": report.state, "trigger": report.trigger,
        "incident_type": report.incident_type, "incident_at": report.incident_at.isoformat(),
        "urgent": bool(report.urgent_reason), "urgent_reason": report.urgent_reason, "removed": report.removed,
        "fingerprint": report.fingerprint, "created_at": report.created_at.isoformat(),
        "sent_at": report.sent_at.isoformat() if report.sent_at else None, "sent_by": report.sent_by,
        "preserve_until": report.preserve_until.isoformat(),
        "purged_at": report.purged_at.isoformat() if report.purged_at else None,
        "files": files[report.id], "repeats": repeats[report.id], "centres": centres[report.id],
    } for report in reports]


def list_reports(session: Session, state: ReportState | None = None, limit: int = 200) -> list[ChildSafetyReport]:
    query = select(ChildSafetyReport).order_by(ChildSafetyReport.created_at.desc()).limit(limit)
    if state is not None:
        query = query.where(ChildSafetyReport.state == state.value)
    return list(session.scalars(query))


# --- reviewing a draft --------------------------------------------------------------------------------------------


def _file(session: Session, report_id: str, content_id: str) -> ReportedFile:
    row = session.scalar(select(ReportedFile).where(ReportedFile.report_id == report_id,
                                                    ReportedFile.content_id == content_id))
    if row is None:
        raise ReportNotFound(f"report {report_id} has no file {content_id!r}")
    return row


def revise(rep: Reporting, report_id: str, *, urgent_reason: str | None = None,
           classifications: dict[str, Classification] | None = None, actor: str = "system:review") -> None:
    """A specialist's review of a draft: urgency (with the reason) and each file's industry classification."""
    with rep.db.write() as session:
        report = get_report(session, report_id)
        urgent = bool(urgent_reason.strip()) if urgent_reason is not None else bool(report.urgent_reason)
        # First, so a sent report is refused before anything is checked (a refusal below rolls the event back).
        transition(session, rep.clock, report, ReportEventKind.REVISED, actor=actor, data=Revised(
            urgent=urgent, classifications={k: v.value for k, v in (classifications or {}).items()}))
        if urgent_reason is not None:
            if ncmec.xml_unsafe(urgent_reason):
                raise InvalidReport("the urgency reason contains control characters an XML report cannot carry")
            report.urgent_reason = urgent_reason.strip()[:2000]
        for content_id, code in (classifications or {}).items():
            _file(session, report_id, content_id).classification = code.value


def supply_material(rep: Reporting, report_id: str, content_id: str, data: bytes, file_name: str, *,
                    actor: str = "system:platform") -> ReportedFile:
    """Seal the platform's copy of a reported file, once its hashes prove it is the file that was uploaded."""
    md5, sha256 = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    with rep.db.write() as session:
        report = get_report(session, report_id)
        # First, so a sent report is refused before anything is checked (a refusal below rolls the event back).
        transition(session, rep.clock, report, ReportEventKind.MATERIAL_SUPPLIED, actor=actor,
                   data=MaterialSupplied(content_id=content_id, size=len(data)))
        if report.purged_at is not None:
            raise MaterialGone(f"report {report_id} was purged at the end of its preservation period: it holds "
                               "no material any more")
        row = _file(session, report_id, content_id)
        if not row.md5 and not row.sha256:
            raise MaterialMismatch(f"no exact hash was taken of {content_id} at upload: the bytes cannot be checked")
        if (row.sha256 and row.sha256 != sha256) or (row.md5 and row.md5 != md5):
            raise MaterialMismatch(f"these bytes are not {content_id}: their hashes differ from the upload's")
        row.sealed = rep.sealer.seal(data, f"{_material(report)}:{content_id}")
        row.size = len(data)
        row.file_name = ncmec.xml_safe(Path(file_name).name)[:300]
        return row


def open_material(rep: Reporting, report_id: str, content_id: str, *, actor: Principal) -> bytes:
    """The preserved bytes, for a child-safety specialist only; the opening is audited in the same transaction."""
    if actor.role not in CHILD_SAFETY_ROLES:
        raise ReportingError("only child-safety specialists may open reported material")
    with rep.db.write() as session:
        report = get_report(session, report_id)
        row = _file(session, report_id, content_id)
        if row.sealed is None:
            raise MaterialGone("this material is not held (purged at the end of preservation, or never supplied)")
        data = rep.sealer.open(row.sealed, f"{_material(report)}:{content_id}")
        record(rep.db, session, actor=actor.actor, action=AuditAction.REPORT_MATERIAL_OPENED,
               subject=f"report:{report_id}", details={"content_id": content_id}, clock=rep.clock)
        return data


def purge_expired(rep: Reporting) -> list[str]:
    """Delete preserved material whose period has ended; each purge is audited. Hashes and documents stay.

    A report still in the outbox or half-way through NCMEC's procedure keeps its material until it is done.
    """
    purged: list[str] = []
    now = rep.clock.now()
    expired = select(ChildSafetyReport).where(ChildSafetyReport.preserve_until <= now,
                                              ChildSafetyReport.purged_at.is_(None),
                                              ChildSafetyReport.state.not_in(IN_FLIGHT))
    with rep.db.read() as session:
        if session.scalar(expired.limit(1)) is None:
            return purged
    with rep.db.write() as session:
        due = session.scalars(expired).all()
        for report in due:
            files = files_of(session, report.id)
            for f in files:
                f.sealed = None
            report.purged_at = now
            transition(session, rep.clock, report, ReportEventKind.PURGED, actor="system:preservation",
                       data=Purged(files=len(files)))
            record(rep.db, session, actor="system:preservation", action=AuditAction.REPORT_PURGED,
                   subject=f"report:{report.id}", details={"files": len(files)}, clock=rep.clock)
            purged.append(report.id)
    return purged


@dataclass(frozen=True)
class Tick:
    drafted: list[str]
    purged: list[str]


def tick(rep: Reporting) -> Tick:
    """The app's periodic round: draft what was confirmed since, purge what has passed its preservation."""
    return Tick(draft_pending(rep), purge_expired(rep))


# --- documents ----------------------------------------------------------------------------------------------------


def _named_repeats(session: Session, report: ChildSafetyReport) -> list[ReportedRepeat]:
    """The repeats a document names: those recorded while the report was a draft."""
    return [r for r in repeats_of(session, report.id) if not r.after_sending]


def ncmec_facts(session: Session, rep: Reporting, report: ChildSafetyReport) -> ncmec.ReportFacts:
    files = files_of(session, report.id)
    repeats = _named_repeats(session, report)
    urls = sorted({ncmec.xml_safe(u) for u in moderated.content_urls(
        session, [f.content_id for f in files] + [r.content_id for r in repeats])})
    described = [f"{f.content_id} md5={f.md5 or '-'} sha256={f.sha256 or '-'}" for f in files if f.sealed is None]
    again = [f"{r.content_id} at {ncmec.iso(r.uploaded_at)} (the same file as {r.repeat_of})" for r in repeats]
    also = "Also reported to the EU Centre under this provider reference." if rep.eu_centre else ""
    attempts = enticement_attempts(session, report)
    return ncmec.ReportFacts(
        incident_type=report.incident_type, incident_at=report.incident_at, account_id=report.account_id,
        urgent_reason=report.urgent_reason, urls=urls, reference=report.id, described_files=described,
        also_reported_to=also, repeated_uploads=again,
        victims=list(dict.fromkeys(ncmec.xml_safe(a.target) for a in attempts)),
        attempts=[f"{a.at} {a.action} to {ncmec.xml_safe(a.target)} "
                  f"({'stopped' if a.decision == 'deny' else 'let through'})" for a in attempts])


def ncmec_document(session: Session, rep: Reporting, report: ChildSafetyReport) -> bytes:
    return ncmec.report_xml(ncmec_facts(session, rep, report), rep.reporter)


def _kind(trigger: str) -> str:
    return "known" if trigger == Trigger.KNOWN_HASH.value else "new"


def file_details(report: ChildSafetyReport, f: ReportedFile, ncmec_report_id: str, status: str) -> bytes:
    return ncmec.file_details_xml(ncmec.FileFacts(
        report_id=ncmec_report_id, file_id=f.ncmec_file_id, file_name=f.file_name,
        original_file_name=f.original_file_name, uploaded_at=f.uploaded_at,
        viewed_by_esp=(f.trigger or report.trigger) == Trigger.SPECIALIST.value,
        publicly_available=status not in (ContentStatus.BLOCKED.value, ContentStatus.HELD.value),
        classification=f.classification, md5=f.md5, sha256=f.sha256))


def _pdq(session: Session, content_id: str) -> str:
    """The file's PDQ as hashed at upload ("" for a video, or when the item is gone)."""
    view = moderated.content(session, content_id)
    return view.signal("pdq") if view is not None else ""


def eu_centre_document(session: Session, rep: Reporting, report: ChildSafetyReport) -> dict[str, Any]:
    """The provider report of Art. 13 of the proposal, as JSON; (h) carries NCMEC's report id when there is one."""
    files = files_of(session, report.id)
    ncmec_delivery = deliveries_of(session, report.id).get(CentreName.NCMEC)
    also: list[dict[str, str]] = []
    if ncmec_delivery is not None and ncmec_delivery.remote_id:
        also.append({"body": "NCMEC", "country": "US", "report_id": ncmec_delivery.remote_id})
    return {
        "provider": {"name": rep.settings.orders_provider, "member_state": rep.settings.orders_member_state,
                     "contact": rep.settings.reports_reporter_email},  # (a)
        "provider_reference": report.id,
        "reported_at": rep.clock.now().isoformat(),  # (b); the request itself is authenticated
        # (c); the PDQ lets the Centre recognise a re-encoded copy of a file it already has as a duplicate
        "content": [{"content_id": f.content_id, "content_type": f.content_type, "md5": f.md5, "sha256": f.sha256,
                     "pdq": _pdq(session, f.content_id),
                     "classification": f.classification or None, "uploaded_at": f.uploaded_at.isoformat(),
                     "material_held": f.sealed is not None, "material_kind": _kind(f.trigger or report.trigger)}
                    for f in files],
        "incident": {"type": report.incident_type, "at": report.incident_at.isoformat(),  # (d)
                     "repeated_uploads": [{"content_id": r.content_id, "repeat_of": r.repeat_of,
                                           "uploaded_at": r.uploaded_at.isoformat()}
                                          for r in _named_repeats(session, report)]},
        # (e) per file above; the report is "known" only when every file is known material.
        "material_kind": "known" if all(_kind(f.trigger or report.trigger) == "known" for f in files) else "new",
        "geography": {"account_country": report.account_country},  # (f)
        "users": [{"account_id": report.account_id,
                   "role": "reported" if report.incident_type == ncmec.ENTICEMENT_INCIDENT else "uploader"}]
        + [{"account_id": a, "role": "victim"}
           for a in dict.fromkeys(x.target for x in enticement_attempts(session, report))],  # (g)
        "also_reported_to": also,  # (h)
        "removed": report.removed,  # (i)
        "urgent": bool(report.urgent_reason), "urgency_reason": report.urgent_reason,  # (j)
        "legal_basis": LEGAL_BASIS,  # (k)
    }


# --- sending ------------------------------------------------------------------------------------------------------


def _delivery(report: ChildSafetyReport, centre: CentreName, now: dt.datetime, document: str) -> ReportDelivery:
    """A centre's delivery of a report just sent: it starts where the report is now (queued)."""
    return ReportDelivery(report_id=report.id, centre=centre.value, fingerprint=report.fingerprint,
                          state=report.state, remote_id="", centre_status="", error="",
                          document=document, created_at=now, updated_at=now)


def send_blocker(rep: Reporting) -> str:
    """Why no report can be sent with this configuration (no schema, a refused NCMEC URL), or "" when one can.

    The console disables its send buttons and shows this, rather than letting a specialist find out per report.
    """
    try:
        ncmec.check_url(rep.ncmec_url, production=rep.settings.ncmec_production)
        ncmec.load_schema(rep.settings.ncmec_xsd)
    except ReportingError as exc:
        return str(exc)
    return ""


def send(rep: Reporting, report_id: str, *, actor: Principal) -> None:
    """Validate and queue a reviewed draft for NCMEC (and then the EU Centre), in one transaction.

    Refused, with nothing changed, when the XML does not validate or a centre already has this fingerprint.
    """
    with rep.db.write() as session:
        report = get_report(session, report_id)
        centres = [CentreName.NCMEC] + ([CentreName.EU_CENTRE] if rep.eu_centre else [])
        # First, so a sent report is refused before anything is checked (a refusal below rolls it all back).
        transition(session, rep.clock, report, ReportEventKind.SENT, actor=actor.actor,
                   data=Sent(centres=[c.value for c in centres], fingerprint=report.fingerprint))
        if not files_of(session, report_id) and report.incident_type != ncmec.ENTICEMENT_INCIDENT:
            raise InvalidReport("the report has no files")
        destination = ncmec.check_url(rep.ncmec_url, production=rep.settings.ncmec_production)
        document = ncmec_document(session, rep, report)
        ncmec.validate(document, rep.settings.ncmec_xsd)
        for centre in centres:
            earlier = session.scalar(select(ReportDelivery.report_id).where(
                ReportDelivery.centre == centre.value, ReportDelivery.fingerprint == report.fingerprint))
            if earlier is not None:
                raise AlreadyReported(f"this material was already reported to {centre.value} (report {earlier})")
        now = rep.clock.now()
        for f in files_of(session, report_id):
            f.attached = f.sealed is not None  # from now on its bytes must reach NCMEC, or the delivery fails
        # Preservation runs from the sending (Art. 22 of the proposal: kept for the report's sake), never shorter.
        report.preserve_until = max(report.preserve_until,
                                    now + dt.timedelta(days=rep.settings.reports_preservation_days))
        session.add(_delivery(report, CentreName.NCMEC, now, document.decode()))
        if rep.eu_centre:
            session.add(_delivery(report, CentreName.EU_CENTRE, now, ""))
        report.sent_at, report.sent_by = now, actor.actor
        enqueue(session, kind=NCMEC_KIND, destination=destination, payload={"report_id": report.id},
                idempotency_key=f"{NCMEC_KIND}:{report.id}", clock=rep.clock)
        record(rep.db, session, actor=actor.actor, action=AuditAction.REPORT_SENT, subject=f"report:{report.id}",
               details={"centres": [c.value for c in centres], "fingerprint": report.fingerprint}, clock=rep.clock)


def _tries(kind: str, report_id: str) -> Any:
    return select(OutboxMessage).where(OutboxMessage.kind == kind, OutboxMessage.idempotency_key.startswith(
        f"{kind}:{report_id}", autoescape=True))


def _waiting(session: Session, kind: str, report_id: str) -> bool:
    live = (OutboxState.PENDING.value, OutboxState.DELIVERING.value)
    return session.scalar(_tries(kind, report_id).where(OutboxMessage.state.in_(live)).limit(1)) is not None


def _attempt_key(session: Session, kind: str, report_id: str) -> str:
    """A fresh idempotency key for one more try of ``kind``: the fixed key would return the dead message."""
    earlier = session.scalars(_tries(kind, report_id)).all()
    return f"{kind}:{report_id}:{len(earlier) + 1}"


def resend(rep: Reporting, report_id: str, *, actor: Principal, centre: CentreName = CentreName.NCMEC) -> None:
    """Queue a failed delivery again (after fixing credentials, say); NCMEC's resumes where it stopped."""
    with rep.db.write() as session:
        report = get_report(session, report_id)
        delivery = deliveries_of(session, report_id).get(centre)
        if delivery is None:
            raise InvalidTransition(f"the report was never sent to {centre.value}: nothing to send again")
        # NCMEC's procedure resumes where it stopped when NCMEC holds the report; anything else starts anew.
        resume = centre is CentreName.NCMEC and bool(delivery.remote_id)
        transition(session, rep.clock, report, ReportEventKind.RESUMED if resume else ReportEventKind.RESENT,
                   actor=actor.actor, delivery=delivery,
                   data=DeliveryChanged(centre=centre.value, remote_id=delivery.remote_id))
        if centre is CentreName.NCMEC:
            kind = NCMEC_KIND
            destination = ncmec.check_url(rep.ncmec_url, production=rep.settings.ncmec_production)
        else:
            if not rep.settings.eu_centre_url:
                raise ReportingError("no EU Centre is configured (BASTION_EU_CENTRE_URL)")
            if not delivery.document:  # NCMEC never finished: the Centre's report goes without its id
                delivery.document = canonical_body(eu_centre_document(session, rep, report)).decode()
            kind, destination = EU_CENTRE_KIND, rep.settings.eu_centre_url
        enqueue(session, kind=kind, destination=destination, payload={"report_id": report.id},
                idempotency_key=_attempt_key(session, kind, report.id), clock=rep.clock)
        record(rep.db, session, actor=actor.actor, action=AuditAction.REPORT_SENT, subject=f"report:{report.id}",
               details={"resend": True, "centre": centre.value}, clock=rep.clock)


def retract(rep: Reporting, report_id: str, *, actor: Principal) -> None:
    """Ask NCMEC to retract a report it holds (through the outbox, like everything that leaves)."""
    with rep.db.write() as session:
        report = get_report(session, report_id)
        delivery = deliveries_of(session, report_id).get(CentreName.NCMEC)
        if delivery is None or not delivery.remote_id:
            raise InvalidTransition("NCMEC has no id for this report yet: nothing to retract")
        if delivery.state == DeliveryState.RETRACTED.value:
            return
        if _waiting(session, NCMEC_RETRACT_KIND, report.id):
            return  # one retract is on its way already
        transition(session, rep.clock, report, ReportEventKind.RETRACT_REQUESTED, actor=actor.actor,
                   delivery=delivery, data=DeliveryChanged(centre=CentreName.NCMEC.value, remote_id=delivery.remote_id))
        destination = ncmec.check_url(rep.ncmec_url, production=rep.settings.ncmec_production)
        enqueue(session, kind=NCMEC_RETRACT_KIND, destination=destination, payload={"report_id": report.id},
                idempotency_key=_attempt_key(session, NCMEC_RETRACT_KIND, report.id), clock=rep.clock)
        record(rep.db, session, actor=actor.actor, action=AuditAction.REPORT_RETRACTED,
               subject=f"report:{report.id}", details={"ncmec_report_id": delivery.remote_id}, clock=rep.clock)


# --- export -------------------------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Owner-only (0600) from the first byte: the documents name accounts and hashes of abuse material."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(0o600)  # an older file keeps its mode through O_TRUNC


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def _file_documents(session: Session, report: ChildSafetyReport) -> list[tuple[str, bytes]]:
    """Each file's ``<fileDetails>`` as sent to NCMEC. A file not detailed yet (a draft: NCMEC has given no report
    or file id) or reported by its hashes alone (only the ``additionalInfo`` line names it) has none."""
    return [(_UNSAFE_NAME.sub("_", f.content_id), f.ncmec_details.encode())
            for f in files_of(session, report.id) if f.ncmec_details]


def export(rep: Reporting, directory: Path, report_ids: Sequence[str] | None = None,
           advance: Callable[[float], None] | None = None, total: Callable[[int], None] | None = None,
           *, actor: str = "system:export") -> list[Path]:
    """Write each report as it was sent (or, for a draft, as it would be): NCMEC XML, each file's
    ``<fileDetails>`` (``ID.ncmec.CONTENT.file.xml``), the EU Centre JSON and its signature (``ID.eu-centre.sig``:
    the ``Bastion-Ed25519`` header, over the canonical JSON of the ``.json``).

    ``total`` hears the number of reports first and ``advance`` each one done (the CLI's progress bar). The files
    are owner-only, and the export is audited (who, where, which reports) once every file is written.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written: list[Path] = []
    exported: list[str] = []
    with rep.db.read() as session:
        reports = [get_report(session, i) for i in report_ids] if report_ids else list_reports(session, limit=10**9)
        if total is not None:
            total(len(reports))
        for report in reports:
            if advance is not None:
                advance(1)
            deliveries = deliveries_of(session, report.id)
            sent = deliveries.get(CentreName.NCMEC)
            xml = sent.document.encode() if sent is not None and sent.document else ncmec_document(session, rep, report)
            path = directory / f"{report.id}.ncmec.xml"
            _write_private(path, xml)
            written.append(path)
            for name, details in _file_documents(session, report):
                path = directory / f"{report.id}.ncmec.{name}.file.xml"
                _write_private(path, details)
                written.append(path)
            eu = deliveries.get(CentreName.EU_CENTRE)
            body = json.loads(eu.document) if eu is not None and eu.document \
                else eu_centre_document(session, rep, report)
            path = directory / f"{report.id}.eu-centre.json"
            _write_private(path, (json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())
            written.append(path)
            if eu is not None and eu.signature:
                path = directory / f"{report.id}.eu-centre.sig"
                _write_private(path, (eu.signature + "\n").encode())
                written.append(path)
            exported.append(report.id)
    with rep.db.write() as session:
        record(rep.db, session, actor=actor, action=AuditAction.REPORTS_EXPORTED, subject="reports",
               details={"directory": str(directory.resolve()), "reports": exported}, clock=rep.clock)
    return written
