"""Append to and verify the audit chain, and anchor it with keyed checkpoints.

Each entry stores the hash of the one before, so editing or deleting any entry breaks every hash after it;
``verify`` walks the chain and names the first entry that does not fit. Appends happen in the caller's transaction,
so a change and its audit entry commit together or not at all.

The chain alone cannot show that its last entries were deleted, or that someone with write access to the database
edited an entry and recomputed every hash after it: both leave a chain that fits. A **checkpoint** anchors it: the
sequence number and hash of the head at one moment, with an HMAC-SHA256 under a key kept outside the database
(``BASTION_AUDIT_KEY`` or the key file). Kept somewhere the database's writers cannot rewrite, a checkpoint shows
truncation below its sequence number and any rewrite of the entries it covers; its MAC shows that it was made by a
holder of the key. It proves nothing about entries appended after it, and nothing against a holder of the key who
can also rewrite the place the checkpoints are kept (docs/architecture.md, "The audit chain's anchor").
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
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
    LOGIN_FAILED = "auth.login_failed"  # a console login with a wrong username or password (never the password)
    LOGIN_LOCKED = "auth.login_locked"  # an account or address locked out after repeated failures
    EXCHANGE_ADDED = "exchange.added"  # a hash exchange configured (never its credentials)
    EXCHANGE_UPDATED = "exchange.updated"
    EXCHANGE_FETCHED = "exchange.fetched"  # a page of an exchange's records changed a bank
    EXCHANGE_FEEDBACK = "exchange.feedback"  # an opinion on an entry queued for the exchanges it came from
    TRANSPARENCY_QUERIED = "transparency.queried"  # figures or a report read (who asked what: DSA Art. 40 access)


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


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment (``seq`` entries, the last hashing to ``head``), MAC'd with the audit key."""

    seq: int
    head: str
    at: str
    mac: str

    @staticmethod
    def _message(seq: int, head: str, at: str) -> bytes:
        return f"bastion-audit-checkpoint:v1:{seq}:{head}:{at}".encode()

    @classmethod
    def make(cls, seq: int, head: str, at: str, key: bytes) -> Checkpoint:
        return cls(seq, head, at, hmac.new(key, cls._message(seq, head, at), hashlib.sha256).hexdigest())

    def mac_ok(self, key: bytes) -> bool:
        expected = hmac.new(key, self._message(self.seq, self.head, self.at), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.mac)

    def to_line(self) -> str:
        """One line of JSON: checkpoints are appended to a file, one a line."""
        return json.dumps({"seq": self.seq, "head": self.head, "at": self.at, "mac": self.mac}, sort_keys=True)

    @classmethod
    def from_line(cls, line: str) -> Checkpoint:
        """Parse one line; ``ValueError`` naming what is wrong."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        seq, head, at, mac = (data.get(k) for k in ("seq", "head", "at", "mac"))
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("seq must be a whole number of entries")
        if not all(isinstance(v, str) and v for v in (head, at, mac)):
            raise ValueError("head, at and mac must be non-empty strings")
        assert isinstance(head, str) and isinstance(at, str) and isinstance(mac, str)
        return cls(seq, head, at, mac)


def read_checkpoints(text: str) -> list[Checkpoint]:
    """Every checkpoint in a file's text (one a line, blank lines skipped); ``ValueError`` names the bad line."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                found.append(Checkpoint.from_line(line))
            except ValueError as exc:
                raise ValueError(f"line {number}: {exc}") from None
    return found


def checkpoint(db: Database, key: bytes, clock: Clock | None = None) -> Checkpoint:
    """A checkpoint of the chain's head now (``seq`` 0 and the genesis hash for an empty log)."""
    with db.read() as session:
        last = session.execute(select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc())
                               .limit(1)).first()
    at = (clock or SystemClock()).now().isoformat()
    return Checkpoint.make(last.id if last else 0, last.entry_hash if last else GENESIS, at, key)


def verify(db: Database, checkpoints: Sequence[Checkpoint] = (), key: bytes | None = None) -> VerifyResult:
    """Recompute the chain; report altered entries (hash mismatch) and deleted ones (gap or broken link).

    With ``checkpoints`` (and the ``key`` they were made with), also report a checkpoint that is not genuine, and
    every one whose entry is gone (the log was cut back) or hashes differently (rewritten and recomputed).
    """
    if checkpoints and key is None:
        raise ValueError("checking checkpoints needs the audit key")
    problems: list[ChainProblem] = []
    genuine = [c for c in checkpoints if key is not None and c.mac_ok(key)]
    problems += [ChainProblem(c.seq, f"the checkpoint of {c.at} is not genuine (its MAC does not match: altered, "
                                     "forged, or made with another key)") for c in checkpoints if c not in genuine]
    wanted = {c.seq for c in genuine}
    heads: dict[int, str] = {0: GENESIS}
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
            if entry.id in wanted:
                heads[entry.id] = entry.entry_hash
    for c in genuine:
        if c.seq not in heads:
            problems.append(ChainProblem(c.seq, f"entry {c.seq}, covered by the checkpoint of {c.at}, is missing "
                                                f"(the log ends at entry {expected_id - 1}: cut back)"))
        elif heads[c.seq] != c.head:
            problems.append(ChainProblem(c.seq, f"entry {c.seq} differs from the checkpoint of {c.at} "
                                                "(rewritten and its chain recomputed)"))
    return VerifyResult(checked, problems)
