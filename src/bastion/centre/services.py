"""The Centre's intake: filter duplicates and manifestly unfounded reports, forward the rest, urgent ones first.

Duplicates are recognised two ways (the briefing's "indicate whether also submitted to the other Centre, then
filter"): a report naming an NCMEC report id the Centre already holds, and a report whose every piece of material
(by exact hash) was already brought by another report, from any provider. Material is claimed in
``centre_material`` with one row per hash, so two providers racing with the same file still forward once.

Forwarding goes through the outbox (signed, retried, at least once, with an idempotency key the receiving
authority drops repeats by). Urgent reports are queued ahead of any backlog: the outbox delivers in order of
``next_attempt_at``, so an urgent report's message is dated ``URGENT_HEAD_START`` earlier.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.centre.models import CentreMaterial, CentreReport
from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.outbox.services import enqueue

FORWARD_KIND = "centre.forward"
EUROPOL = "EUROPOL"
URGENT_HEAD_START = dt.timedelta(days=1)
MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
    "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})


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
    return out


@dataclass(frozen=True)
class Centre:
    db: Database
    clock: Clock
    #: Where each Member State's competent law-enforcement authority (and Europol) receives reports.
    forwarding: dict[str, str] = field(default_factory=dict)

    def authority_for(self, country: str) -> str:
        """The Member State concerned when it is clear and reachable; Europol otherwise."""
        code = country.strip().upper()
        return code if code in MEMBER_STATES and code in self.forwarding else EUROPOL


def media_hashes(body: dict[str, Any]) -> list[str]:
    found: set[str] = set()
    for item in body.get("content") or []:
        if isinstance(item, dict):
            for kind in ("sha256", "md5"):
                if item.get(kind):
                    found.add(f"{kind}:{str(item[kind]).lower()}")
    return sorted(found)


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


def _claim_material(session: Session, report_id: str, hashes: list[str], now: dt.datetime) -> list[str]:
    """Claim each hash for ``report_id``; returns the ids of the reports that brought the others first."""
    earlier: list[str] = []
    for media_hash in hashes:
        owner = session.scalar(select(CentreMaterial.report_id).where(CentreMaterial.media_hash == media_hash))
        if owner is None:
            try:
                with session.begin_nested():
                    session.add(CentreMaterial(media_hash=media_hash, report_id=report_id, first_seen_at=now))
                continue
            except IntegrityError:  # another provider's report claimed it in the meantime
                owner = session.scalar(select(CentreMaterial.report_id)
                                       .where(CentreMaterial.media_hash == media_hash))
        if owner is not None:
            earlier.append(owner)
    return earlier


def receive(centre: Centre, provider: str, body: dict[str, Any]) -> CentreReport:
    """File one provider report and decide: unfounded, duplicate, or forwarded. Idempotent per provider reference."""
    reference = str(body["provider_reference"])
    now = centre.clock.now()
    with centre.db.write() as session:
        existing = session.scalar(select(CentreReport).where(CentreReport.provider == provider,
                                                             CentreReport.provider_reference == reference))
        if existing is not None:
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
        seen = session.scalar(select(CentreReport.id).where(
            CentreReport.id != report.id, CentreReport.ncmec_report_id.in_(ids)).limit(1)) if ids else None
        if seen is not None:
            report.status, report.duplicate_of = Status.DUPLICATE.value, seen
            report.reason = "already received with the same NCMEC report id"
            return report
        hashes = media_hashes(body)
        earlier = _claim_material(session, report.id, hashes, now)
        if len(earlier) == len(hashes):
            report.status, report.duplicate_of = Status.DUPLICATE.value, earlier[0]
            report.reason = "all of its material was already reported (by this or another provider)"
            return report
        _forward(centre, session, report, hashes, already=len(earlier))
        return report


def _forward(centre: Centre, session: Session, report: CentreReport, hashes: list[str], already: int) -> None:
    authority = centre.authority_for(report.member_state)
    report.status, report.forwarded_to = Status.FORWARDED.value, authority
    report.reason = f"{already} of {len(hashes)} files were already known" if already else ""
    destination = centre.forwarding.get(authority)
    if destination is None:  # nowhere configured, not even Europol: kept, visible to admins, not lost
        report.reason = (report.reason + "; " if report.reason else "") + f"no endpoint configured for {authority}"
        return
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


def report_view(report: CentreReport) -> dict[str, Any]:
    return {"id": report.id, "status": report.status, "reason": report.reason or None,
            "duplicate_of": report.duplicate_of or None, "forwarded_to": report.forwarded_to or None,
            "urgent": report.urgent, "provider_reference": report.provider_reference,
            "received_at": report.received_at.isoformat()}


def list_reports(session: Session, limit: int = 500) -> list[CentreReport]:
    return list(session.scalars(select(CentreReport).order_by(CentreReport.received_at.desc()).limit(limit)))
