"""Append to and verify the audit chain.

Each entry stores the hash of the one before, so editing or deleting any entry breaks every hash after it;
``verify`` walks the chain and names the first entry that does not fit. Appends happen in the caller's transaction,
so a change and its audit entry commit together or not at all.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.audit.models import AuditEntry
from bastion.core.clock import Clock, SystemClock
from bastion.core.db import Database

GENESIS = "0" * 64
#: Advisory-lock key that orders concurrent appenders on PostgreSQL.
AUDIT_LOCK = 0x4155444954


class AuditAction(enum.StrEnum):
    """Retired values stay reserved: never reuse a name for another meaning."""

    BANK_CREATED = "bank.created"
    BANK_UPDATED = "bank.updated"
    BANK_IMPORTED = "bank.imported"
    ENTRY_ADDED = "bank.entry_added"
    ENTRY_REMOVED = "bank.entry_removed"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    SETTING_CHANGED = "setting.changed"
    MEDIA_REVEALED = "media.revealed"  # a reviewer viewed restricted media un-blurred
    REPORT_SENT = "report.sent"  # a child-safety report sent to NCMEC / the EU Centre
    REPORT_RETRACTED = "report.retracted"
    REPORT_MATERIAL_OPENED = "report.material_opened"  # preserved reported material opened by a specialist
    REPORT_PURGED = "report.purged"  # preserved material deleted at the end of its preservation period
    REPORTS_EXPORTED = "reports.exported"  # child-safety reports written to files (``bastion reports export``)
    MATCH_LOOKUP = "match.lookup"  # a lookup in the banks (/v1/match, the console): query digests, never values


def _digest(prev_hash: str, entry: AuditEntry) -> str:
    body = {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "details": entry.details,
        "prev": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    db: Database,
    session: Session,
    *,
    actor: str,
    action: AuditAction,
    subject: str,
    details: dict[str, object] | None = None,
    clock: Clock | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction."""
    db.serialize_writers(session, AUDIT_LOCK)
    last = session.execute(select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)).first()
    prev_hash = last.entry_hash if last else GENESIS
    entry = AuditEntry(
        id=(last.id + 1) if last else 1,
        at=(clock or SystemClock()).now(),
        actor=actor,
        action=action.value,
        subject=subject,
        details=json.loads(json.dumps(details or {}, default=str)),
        prev_hash=prev_hash,
        entry_hash="",
    )
    entry.entry_hash = _digest(prev_hash, entry)
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _walk(session: Session) -> Iterator[AuditEntry]:
    yield from session.scalars(select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=2000))


def verify(db: Database) -> VerifyResult:
    """Recompute the chain; report altered entries (hash mismatch) and deleted ones (gap or broken link)."""
    problems: list[ChainProblem] = []
    expected_prev = GENESIS
    expected_id = 1
    checked = 0
    with db.read() as session:
        for entry in _walk(session):
            checked += 1
            if entry.id != expected_id:
                problems.append(ChainProblem(entry.id, f"entries {expected_id}..{entry.id - 1} are missing"))
            if entry.prev_hash != expected_prev:
                problems.append(ChainProblem(entry.id, "link to the previous entry is broken"))
            if _digest(entry.prev_hash, entry) != entry.entry_hash:
                problems.append(ChainProblem(entry.id, "content does not match its hash (altered)"))
            expected_prev = entry.entry_hash
            expected_id = entry.id + 1
    return VerifyResult(checked, problems)
