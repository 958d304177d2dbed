"""The Centre's intake: filter duplicates and manifestly unfounded reports, forward the rest, urgent ones first.

Duplicates are recognised two ways (the briefing's "indicate whether also submitted to the other Centre, then
filter"): a report naming an NCMEC report id of a report the Centre already forwarded, and a report whose every
file was already brought by another report, from any provider. A file is known when any of its exact hashes
(SHA-256, MD5) is; all its hashes are then claimed, in ``centre_material`` with one row per hash, so two providers
racing with the same file still forward once, and a file known by its MD5 is known by its SHA-256 from then on.

Forwarding needs somewhere to go: the Centre refuses to start without a Europol endpoint, which takes every report
whose Member State has none (``parse_forwarding``), so a report is never marked forwarded with nothing queued.

Forwarding goes through the outbox (signed, retried, at least once, with an idempotency key the receiving
authority drops repeats by). Urgent reports are queued ahead of any backlog: the outbox delivers in order of
``next_attempt_at``, so an urgent report's message is dated ``URGENT_HEAD_START`` earlier. A failed attempt dates
the message by its back-off; ``keep_urgent_first`` (before each delivery round) dates it early again once that
back-off has passed, so an urgent report that failed once still goes before the backlog, without hammering.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.centre.models import CentreMaterial, CentreReport
from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.errors import DomainError
from bastion.core.eu import MEMBER_STATES
from bastion.core.idempotency import fingerprint
from bastion.core.outbox.models import DeliveryState, OutboxMessage
from bastion.core.outbox.services import enqueue

FORWARD_KIND = "centre.forward"
EUROPOL = "EUROPOL"
URGENT_HEAD_START = dt.timedelta(days=1)


class Status(enum.StrEnum):
    """What the Centre did with a report. Values are storage keys."""

    FORWARDED = "forwarded"
    DUPLICATE = "duplicate"
    UNFOUNDED = "unfounded"


def parse_forwarding(raw: str) -> dict[str, str]:
    """``DE=https://...,EUROPOL=https://...`` to a map; a malformed entry stops the start with its reason."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        code, sep, url = part.partition("=")
        code = code.strip().upper()
        if not sep or not url.strip().startswith(("http://", "https://")):
            raise ValueError(f"BASTION_CENTRE_FORWARD: {part!r} is not CODE=https://...")
        if code != EUROPOL and code not in MEMBER_STATES:
            raise ValueError(f"BASTION_CENTRE_FORWARD: {code} is neither an EU Member State nor EUROPOL")
        out[code] = url.strip()
    require_europol(out)
    return out


def require_europol(forwarding: dict[str, str]) -> None:
    """Europol receives what no Member State endpoint takes: without it a report would be forwarded nowhere."""
    if EUROPOL not in forwarding:
        raise ValueError("BASTION_CENTRE_FORWARD has no EUROPOL=https://... endpoint: reports whose Member State "
                         "has none would be forwarded nowhere")


@dataclass(frozen=True)
class Centre:
    db: Database
    clock: Clock
    #: Where each Member State's competent law-enforcement authority (and Europol) receives reports.
    forwarding: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_europol(self.forwarding)

    def authority_for(self, country: str) -> str:
        """The Member State concerned when it is clear and reachable; Europol otherwise."""
        code = country.strip().upper()
        return code if code in MEMBER_STATES and code in self.forwarding else EUROPOL


def file_hashes(body: dict[str, Any]) -> list[list[str]]:
    """Each content item's exact hashes (``sha256:…``, ``md5:…``); items with none are left out."""
    files: list[list[str]] = []
    for item in body.get("content") or []:
        if isinstance(item, dict):
            hashes = [f"{kind}:{str(item[kind]).lower()}" for kind in ("sha256", "md5") if item.get(kind)]
            if hashes:
                files.append(hashes)
    return files


def media_hashes(body: dict[str, Any]) -> list[str]:
    return sorted({h for hashes in file_hashes(body) for h in hashes})


def _ncmec_ids(body: dict[str, Any]) -> list[str]:
    return [str(o.get("report_id")) for o in body.get("also_reported_to") or []
            if isinstance(o, dict) and str(o.get("body", "")).upper() == "NCMEC" and o.get("report_id")]


def unfounded_reason(body: dict[str, Any]) -> str:
    """Why a report is manifestly unfounded, or "" when it is not (Art. 48(2): the provider is told why)."""
    if not media_hashes(body):
        return "no content data (Art. 13(c)): the report identifies no material by any hash"
    if not body.get("users"):
        return "no user involved is identified (Art. 13(g))"
    return ""


def _owner(session: Session, media_hash: str) -> str | None:
    return session.scalar(select(CentreMaterial.report_id).where(CentreMaterial.media_hash == media_hash))


def _claim_file(session: Session, report_id: str, hashes: list[str], now: dt.datetime) -> str | None:
    """Claim every hash of one file; returns the report that brought the file first, or ``None`` when it is new.

    A known file's unclaimed hashes go to the report that brought it, so it is known by all of them next time.
    """
    first = next((o for h in hashes if (o := _owner(session, h)) is not None), None)
    for media_hash in hashes:
        if _owner(session, media_hash) is not None:
            continue
        try:
            with session.begin_nested():
                session.add(CentreMaterial(media_hash=media_hash, report_id=first or report_id, first_seen_at=now))
        except IntegrityError:  # another provider's report claimed it in the meantime
            first = first or _owner(session, media_hash)
    return first


class ReportConflict(DomainError):
    """A provider reference received before with a different report: the first stands, the new one is refused."""

    status = 409
    title = "Conflict"


def receive(centre: Centre, provider: str, body: dict[str, Any]) -> CentreReport:
    """File one provider report and decide: unfounded, duplicate, or forwarded. Idempotent per provider reference
    for the same report; the same reference with another body is ``ReportConflict`` (never the first's answer)."""
    reference = str(body["provider_reference"])
    now = centre.clock.now()
    with centre.db.write() as session:
        existing = session.scalar(select(CentreReport).where(CentreReport.provider == provider,
                                                             CentreReport.provider_reference == reference))
        if existing is not None:
            if fingerprint(existing.body) != fingerprint(body):
                raise ReportConflict(f"provider reference {reference!r} was received before with a different "
                                     "report; send a new report under a new reference")
            return existing
        report = CentreReport(id=str(uuid.uuid4()), provider=provider, provider_reference=reference,
                              ncmec_report_id=next(iter(_ncmec_ids(body)), "")[:100],
                              member_state=str((body.get("geography") or {}).get("account_country", ""))[:8],
                              urgent=bool(body.get("urgent")), status="", reason="", duplicate_of="",
                              forwarded_to="", body=body, received_at=now)
        session.add(report)
        session.flush()
        reason = unfounded_reason(body)
        if reason:
            report.status, report.reason = Status.UNFOUNDED.value, reason
            return report
        ids = _ncmec_ids(body)
        seen = session.scalar(select(CentreReport.id).where(  # only a forwarded report makes this one redundant
            CentreReport.id != report.id, CentreReport.ncmec_report_id.in_(ids),
            CentreReport.status == Status.FORWARDED.value).limit(1)) if ids else None
        if seen is not None:
            report.status, report.duplicate_of = Status.DUPLICATE.value, seen
            report.reason = "already received with the same NCMEC report id"
            return report
        files = file_hashes(body)
        earlier = [o for o in (_claim_file(session, report.id, hashes, now) for hashes in files) if o is not None]
        if len(earlier) == len(files):
            report.status, report.duplicate_of = Status.DUPLICATE.value, earlier[0]
            report.reason = "all of its files were already reported (by this or another provider)"
            return report
        _forward(centre, session, report, media_hashes(body), already=len(earlier), files=len(files))
        return report


def _forward(centre: Centre, session: Session, report: CentreReport, hashes: list[str], *, already: int,
             files: int) -> None:
    authority = centre.authority_for(report.member_state)
    report.status, report.forwarded_to = Status.FORWARDED.value, authority
    report.reason = f"{already} of {files} files were already known" if already else ""
    destination = centre.forwarding[authority]  # Europol's at least: required at start
    body = report.body
    payload = {"centre_reference": report.id, "urgent": report.urgent, "member_state": report.member_state,
               "provider": report.provider, "provider_reference": report.provider_reference,
               "material": hashes, "also_reported_to": body.get("also_reported_to") or [],
               "material_kind": body.get("material_kind"), "removed": body.get("removed"),
               "users": body.get("users") or [], "incident": body.get("incident") or {}}
    message = enqueue(session, kind=FORWARD_KIND, destination=destination, payload=payload,
                      idempotency_key=f"{FORWARD_KIND}:{report.id}", clock=centre.clock)
    if report.urgent:
        message.next_attempt_at = centre.clock.now() - URGENT_HEAD_START


def keep_urgent_first(db: Database, clock: Clock) -> int:
    """Date urgent forwards that are due again (their back-off after a failure has passed) ahead of the backlog.

    Only messages due now and not already ahead are touched, so the back-off itself is kept; returns how many.
    """
    now = clock.now()
    urgent = select(literal(f"{FORWARD_KIND}:") + CentreReport.id).where(CentreReport.urgent.is_(True))
    behind = (OutboxMessage.kind == FORWARD_KIND, OutboxMessage.state == DeliveryState.PENDING.value,
              OutboxMessage.attempts > 0, OutboxMessage.next_attempt_at <= now,
              OutboxMessage.next_attempt_at > now - URGENT_HEAD_START, OutboxMessage.idempotency_key.in_(urgent))
    with db.read() as session:  # the usual round finds none: no write lock for that
        if session.scalar(select(OutboxMessage.id).where(*behind).limit(1)) is None:
            return 0
    with db.write() as session:
        done = session.execute(update(OutboxMessage).where(*behind).values(next_attempt_at=now - URGENT_HEAD_START)
                               .execution_options(synchronize_session=False))
        return int(getattr(done, "rowcount", 0))


def report_view(report: CentreReport) -> dict[str, Any]:
    return {"id": report.id, "status": report.status, "reason": report.reason or None,
            "duplicate_of": report.duplicate_of or None, "forwarded_to": report.forwarded_to or None,
            "urgent": report.urgent, "provider_reference": report.provider_reference,
            "received_at": report.received_at.isoformat()}


def list_reports(session: Session, limit: int = 500) -> list[CentreReport]:
    return list(session.scalars(select(CentreReport).order_by(CentreReport.received_at.desc()).limit(limit)))
