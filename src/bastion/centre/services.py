"""The Centre's intake: check the provider's signature, filter duplicates and manifestly unfounded reports, forward
the rest, urgent ones first.

Every report is signed by its provider (Art. 13(b): date, time stamp and electronic signature): an Ed25519
``Bastion-Ed25519`` header over the exact body (``core/signing.py``), checked against the keys registered for the
provider (``bastion centre provider NAME --public-key KEY``) and kept with the report, with the bytes it covers.

A duplicate is the same report arriving twice, never another suspect's report about the same material: two
accounts sharing known material are two leads for law enforcement, and most reports concern known material. So a
report is a duplicate when it names an NCMEC report id the Centre already forwarded (the same report, directly and
through NCMEC), or when the same provider already reported every one of its files for the same suspect (the
accounts it names; ``suspect_key``). A file is matched by any of its exact hashes (SHA-256, MD5), or by its PDQ
hash within ``Centre.pdq_threshold`` bits (31, PDQ's usual match threshold) of a PDQ the suspect's material
already has: a re-encoded, resized or slightly cropped copy of a picture is the same material. All its hashes
are then claimed for the suspect in ``centre_suspect_material``, one row per hash, so two copies of one report
racing still forward once. ``centre_material`` keeps which report first brought each file from anyone, so the
Centre can tell law enforcement how much of a forwarded report was already known.

Forwarding needs somewhere to go: the Centre refuses to start without a Europol endpoint, which takes every report
whose Member State has none (``parse_forwarding``), so a report is never marked forwarded with nothing queued.

Forwarding goes through the outbox (signed, retried, at least once, with an idempotency key the receiving
authority drops repeats by). Urgent reports are queued ahead of any backlog with the outbox's ``Priority.URGENT``:
of the messages due, the outbox claims the highest priority first, so an urgent report that failed once waits out
its back-off and then still goes before the backlog, without hammering.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.centre.models import CentreMaterial, CentreReport, ProviderKey, SuspectMaterial
from bastion.core import signing
from bastion.core.clock import Clock
from bastion.core.db import Base, Database
from bastion.core.errors import DomainError
from bastion.core.eu import MEMBER_STATES
from bastion.core.idempotency import fingerprint
from bastion.core.outbox.kinds import MessageKind, Priority
from bastion.core.outbox.services import enqueue


class CentreMessage(MessageKind):
    """What the Centre sends: one kind, signed with the forwarding secret. Values are storage keys."""

    FORWARD = "centre.forward"


FORWARD_KIND = CentreMessage.FORWARD
EUROPOL = "EUROPOL"
#: PDQ's usual match threshold (``hashing.pdq.MATCH_THRESHOLD``; the Centre imports only ``core``).
PDQ_THRESHOLD = 31
_PDQ = "pdq:"


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
    #: A file whose PDQ is within this many bits of one already reported for the suspect is the same material.
    pdq_threshold: int = PDQ_THRESHOLD

    def __post_init__(self) -> None:
        require_europol(self.forwarding)

    def authority_for(self, country: str) -> str:
        """The Member State concerned when it is clear and reachable; Europol otherwise."""
        code = country.strip().upper()
        return code if code in MEMBER_STATES and code in self.forwarding else EUROPOL


def file_hashes(body: dict[str, Any]) -> list[list[str]]:
    """Each content item's hashes (``sha256:…``, ``md5:…``, ``pdq:…``); items with none are left out."""
    files: list[list[str]] = []
    for item in body.get("content") or []:
        if isinstance(item, dict):
            hashes = [f"{kind}:{str(item[kind]).lower()}" for kind in ("sha256", "md5", "pdq") if item.get(kind)]
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


def suspect_key(provider: str, body: dict[str, Any]) -> str:
    """Who a report is about, for one provider: the provider and the sorted account ids it names (Art. 13(g))."""
    accounts = sorted({str(u.get("account_id", "")) for u in body.get("users") or [] if isinstance(u, dict)})
    return hashlib.sha256("\n".join([provider, *accounts]).encode()).hexdigest()


def _claim(session: Session, hashes: list[str], owner: Callable[[str], str | None],
           row: Callable[[str, str], Base], report_id: str,
           near: Callable[[str], str | None] | None = None) -> str | None:
    """Claim every hash of one file; returns the report that had the file first, or ``None`` when it is new.

    ``near``: the report that had a perceptually near copy, asked only when no hash is known exactly. A known
    file's unclaimed hashes (a near copy's own PDQ among them) go to the report that had it, so it is known by all
    of them next time.
    """
    first = next((o for h in hashes if (o := owner(h)) is not None), None)
    if first is None and near is not None:
        first = next((o for h in hashes if h.startswith(_PDQ) and (o := near(h)) is not None), None)
    for media_hash in hashes:
        if owner(media_hash) is not None:
            continue
        try:
            with session.begin_nested():
                session.add(row(media_hash, first or report_id))
        except IntegrityError:  # another report claimed it in the meantime
            first = first or owner(media_hash)
    return first


class ReportConflict(DomainError):
    """A provider reference received before with a different report: the first stands, the new one is refused."""

    status = 409
    title = "Conflict"


def _known_anywhere(session: Session, report_id: str, hashes: list[str], now: dt.datetime) -> str | None:
    return _claim(session, hashes,
                  lambda h: session.scalar(select(CentreMaterial.report_id).where(CentreMaterial.media_hash == h)),
                  lambda h, owner: CentreMaterial(media_hash=h, report_id=owner, first_seen_at=now), report_id)


def pdq_distance(a: str, b: str) -> int:
    """Bits in which two 64-hex-digit PDQ hashes differ."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _near_for_suspect(session: Session, suspect: str, report_id: str, threshold: int
                      ) -> Callable[[str], str | None]:
    """The earlier report of the suspect's nearest PDQ within ``threshold`` of a ``pdq:`` hash (this report's own
    files do not count). One suspect's material is a few rows, so they are compared in Python; the Centre keeps no
    PDQ index."""
    def near(media_hash: str) -> str | None:
        rows = session.execute(select(SuspectMaterial.media_hash, SuspectMaterial.report_id).where(
            SuspectMaterial.suspect == suspect, SuspectMaterial.report_id != report_id,
            SuspectMaterial.media_hash.startswith(_PDQ))).all()
        value = media_hash.removeprefix(_PDQ)
        found = [(d, report) for known, report in rows
                 if (d := pdq_distance(value, known.removeprefix(_PDQ))) <= threshold]
        return min(found)[1] if found else None
    return near


def _known_for_suspect(session: Session, suspect: str, report_id: str, hashes: list[str],
                       now: dt.datetime, pdq_threshold: int) -> str | None:
    return _claim(session, hashes,
                  lambda h: session.scalar(select(SuspectMaterial.report_id).where(
                      SuspectMaterial.suspect == suspect, SuspectMaterial.media_hash == h)),
                  lambda h, owner: SuspectMaterial(suspect=suspect, media_hash=h, report_id=owner, first_seen_at=now),
                  report_id, _near_for_suspect(session, suspect, report_id, pdq_threshold))


# --- signatures (Art. 13(b)) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """A report's signature as received: the header, the key that made it, and the exact bytes it covers."""

    header: str
    key_id: str
    body: bytes


def register_key(db: Database, provider: str, public_key: str, clock: Clock) -> str:
    """Register a provider's Ed25519 public key (as ``bastion keygen`` prints it); returns its key id."""
    public = signing.load_public_key(public_key)
    kid = signing.key_id(public)
    with db.write() as session:
        existing = session.get(ProviderKey, kid)
        if existing is not None and existing.provider != provider:
            raise ValueError(f"key {kid} is registered for another provider")
        if existing is None:
            session.add(ProviderKey(key_id=kid, provider=provider, public_key=signing.public_key_text(public),
                                    created_at=clock.now()))
    return kid


def provider_keys(db: Database, provider: str) -> Callable[[str], Ed25519PublicKey | None]:
    """The lookup ``signing.verify`` needs: a key id to the public key, when it is this provider's."""
    def lookup(kid: str) -> Ed25519PublicKey | None:
        with db.read() as session:
            row = session.get(ProviderKey, kid)
            return signing.load_public_key(row.public_key) if row is not None and row.provider == provider else None
    return lookup


def check_signature(centre: Centre, provider: str, headers: Mapping[str, str], raw: bytes) -> Signed:
    """The provider's signature on the raw body, checked; raises ``signing.Refused`` (unsigned, unknown key, ...)."""
    verified = signing.verify(headers, raw, keys=provider_keys(centre.db, provider), now=centre.clock.now())
    return Signed(signing.signature_header(headers), verified.key_id, raw)


# --- receiving ----------------------------------------------------------------------------------------------------


def receive(centre: Centre, provider: str, body: dict[str, Any], signed: Signed | None = None) -> CentreReport:
    """File one provider report and decide: unfounded, duplicate, or forwarded. Idempotent per provider reference
    for the same report; the same reference with another body is ``ReportConflict`` (never the first's answer).

    ``signed`` is the checked signature, kept with the report (the API requires one).
    """
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
                              forwarded_to="", body=body, received_at=now,
                              signature=signed.header if signed else "", key_id=signed.key_id if signed else "",
                              signed_body=signed.body if signed else None)
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
        suspect = suspect_key(provider, body)
        before = [o for o in (_known_for_suspect(session, suspect, report.id, h, now, centre.pdq_threshold)
                              for h in files) if o is not None]
        known = sum(_known_anywhere(session, report.id, h, now) is not None for h in files)
        if len(before) == len(files):
            report.status, report.duplicate_of = Status.DUPLICATE.value, before[0]
            report.reason = "this provider already reported all of its files for the same accounts"
            return report
        _forward(centre, session, report, media_hashes(body), already=known, files=len(files))
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
               "users": body.get("users") or [], "incident": body.get("incident") or {},
               "files": files, "files_known_before": already, "signed_by_provider": bool(report.signature)}
    enqueue(session, kind=FORWARD_KIND, destination=destination, payload=payload,
            idempotency_key=f"{FORWARD_KIND}:{report.id}", clock=centre.clock,
            priority=Priority.URGENT if report.urgent else Priority.NORMAL)


def report_view(report: CentreReport) -> dict[str, Any]:
    return {"id": report.id, "status": report.status, "reason": report.reason or None,
            "duplicate_of": report.duplicate_of or None, "forwarded_to": report.forwarded_to or None,
            "urgent": report.urgent, "provider_reference": report.provider_reference,
            "received_at": report.received_at.isoformat()}


def list_reports(session: Session, limit: int = 500) -> list[CentreReport]:
    return list(session.scalars(select(CentreReport).order_by(CentreReport.received_at.desc()).limit(limit)))
