"""Bank operations: create, configure, add and remove entries, import and export CSV.

Every change writes three things in one transaction: the change itself, a row in the bank change log (which the
matchers of every process replay to stay current) and an audit entry. Either all three land or none does.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import difflib
import hashlib
import itertools
import queue
import re
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.core.audit.services import AuditAction, record
from bastion.core.auth.roles import CHILD_SAFETY_ROLES
from bastion.core.auth.services import Principal
from bastion.core.clock import Clock, SystemClock
from bastion.core.db import Database
from bastion.hashing import registry
from bastion.hashing.interfaces import HashResult, InvalidSignalValue, SignalType
from bastion.matching.interfaces import (
    BankExists,
    BankNotFound,
    CsvImportError,
    DuplicateEntry,
    EntryNotFound,
    InvalidBank,
    InvalidEntry,
    RestrictedBank,
)
from bastion.matching.matcher import Match, restricted_category
from bastion.matching.models import Bank, BankChange, BankEntry, ChangeOp, EntryOrigin

BANK_NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,99}$")
CSV_HEADER = ("signal_type", "value", "category", "source", "note")
REQUIRED_COLUMNS = CSV_HEADER[:2]
#: Advisory-lock key that keeps change-log ids committing in order on PostgreSQL.
CHANGE_LOG_LOCK = 0x42414E4B
_FIELD_LIMITS = {"category": 64, "source": 200, "note": 10_000}


def value_digest(value: str) -> bytes:
    """An entry's key within its bank and signal type (``BankEntry.value_digest``): the value's SHA-256."""
    return hashlib.sha256(value.encode()).digest()


def can_see(bank: Bank, principal: Principal) -> bool:
    return not bank.restricted or principal.role in CHILD_SAFETY_ROLES


def _not_found(name: str) -> BankNotFound:
    """The one answer for a bank that does not exist and for a restricted bank the caller may not see: two
    answers would tell anyone which restricted banks exist."""
    return BankNotFound(f"no bank named {name!r}")


def _require_access(bank: Bank, principal: Principal) -> None:
    if not can_see(bank, principal):
        raise _not_found(bank.name)


def get_bank(session: Session, name: str) -> Bank:
    bank = session.scalar(select(Bank).where(Bank.name == name))
    if bank is None:
        raise _not_found(name)
    return bank


def close_bank_names(session: Session, name: str, principal: Principal, *, limit: int = 3) -> list[str]:
    """Names of banks ``principal`` may see that look like ``name`` (a typo, a lower-case name), closest first.

    Only banks ``principal`` may see are offered: a restricted bank's name is never suggested to a role that could
    not open it. Meant for the operator's CLI; the API says only that a bank was not found."""
    visible = [bank.name for bank in session.scalars(select(Bank).order_by(Bank.name)) if can_see(bank, principal)]
    wanted = name.strip().upper()
    return difflib.get_close_matches(wanted, visible, n=limit, cutoff=0.6)


def visible_bank(session: Session, name: str, principal: Principal) -> Bank:
    """The bank ``principal`` may see, or ``BankNotFound``, the same whether it is missing or restricted."""
    bank = get_bank(session, name)
    _require_access(bank, principal)
    return bank


def visible_matches(matches: Iterable[Match], principal: Principal) -> list[Match]:
    """The matches ``principal`` may be told of: outside the child-safety roles, restricted matches (child sexual
    abuse material) are left out, so the answer is the same as for a file no bank holds."""
    if principal.role in CHILD_SAFETY_ROLES:
        return list(matches)
    return [m for m in matches if not m.restricted]


def record_lookup(db: Database, principal: Principal, queries: Sequence[HashResult], found: Sequence[Match], *,
                  via: str, clock: Clock | None = None) -> None:
    """Audit one bank lookup (``/v1/match``, the console's match page): who asked, when, what matched, and how
    many restricted matches were withheld from them. Query values are kept as SHA-256 digests, never in clear: a
    digest ties a lookup to a bank entry's ``value_digest`` without the audit log becoming a copy of the banks."""
    shown = visible_matches(found, principal)
    details: dict[str, object] = {
        "via": via,
        "signal_types": sorted({q.signal_type for q in queries}),
        "query_digests": sorted({value_digest(q.value).hex() for q in queries}),
        "matches": [{"bank": m.bank, "entry_id": m.entry_id, "distance": m.distance} for m in shown],
        "restricted_withheld": len(found) - len(shown),
    }
    with db.write() as session:
        record(db, session, actor=principal.actor, action=AuditAction.MATCH_LOOKUP, subject="banks",
               details=details, clock=clock)


def _validate_thresholds(thresholds: dict[str, Any]) -> dict[str, int]:
    clean: dict[str, int] = {}
    for name, raw in thresholds.items():
        try:
            signal_type = registry.get(name)
        except registry.UnknownSignalType as exc:
            raise InvalidBank(str(exc)) from None
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= signal_type.max_threshold:
            raise InvalidBank(f"threshold for {name} must be an integer 0-{signal_type.max_threshold}")
        clean[name] = raw
    return clean


def _log_change(db: Database, session: Session, op: ChangeOp, bank_id: int, clock: Clock, *,
                signal_type: str | None = None, entry_id: int | None = None,
                last_entry_id: int | None = None) -> None:
    db.serialize_writers(session, CHANGE_LOG_LOCK)
    session.add(BankChange(op=op.value, bank_id=bank_id, signal_type=signal_type, entry_id=entry_id,
                           last_entry_id=last_entry_id, at=clock.now()))


def create_bank(
    db: Database,
    name: str,
    *,
    actor: Principal,
    description: str = "",
    restricted: bool = False,
    dihedral: bool = False,
    thresholds: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> Bank:
    with db.write() as session:
        return create_bank_in(db, session, name, actor=actor, description=description, restricted=restricted,
                              dihedral=dihedral, thresholds=thresholds, clock=clock)


def create_bank_in(db: Database, session: Session, name: str, *, actor: Principal, description: str = "",
                   restricted: bool = False, dihedral: bool = False, thresholds: dict[str, Any] | None = None,
                   clock: Clock | None = None) -> Bank:
    """``create_bank`` in the caller's transaction, so a bank made for something else (a crisis) is made with it
    or not at all."""
    clock = clock or SystemClock()
    if not BANK_NAME.match(name):
        raise InvalidBank("bank names are 2-100 characters: capital letters, digits and _, starting with a letter")
    if restricted and actor.role not in CHILD_SAFETY_ROLES:
        raise RestrictedBank("only admins and child-safety specialists may create a restricted bank")
    clean = _validate_thresholds(thresholds or {})
    if session.scalar(select(Bank.id).where(Bank.name == name)) is not None:
        raise BankExists(f"bank {name} exists already")
    bank = Bank(name=name, description=description, restricted=restricted, dihedral=dihedral,
                thresholds=clean, enabled=True, created_at=clock.now(), created_by=actor.actor)
    session.add(bank)
    session.flush()
    _log_change(db, session, ChangeOp.BANK, bank.id, clock)
    record(db, session, actor=actor.actor, action=AuditAction.BANK_CREATED, subject=f"bank:{name}",
           details={"restricted": restricted, "dihedral": dihedral, "thresholds": clean}, clock=clock)
    return bank


def update_bank(
    db: Database,
    name: str,
    *,
    actor: Principal,
    enabled: bool | None = None,
    dihedral: bool | None = None,
    thresholds: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> Bank:
    """Change a bank's settings; matchers pick the change up from the log within a refresh interval."""
    clock = clock or SystemClock()
    with db.write() as session:
        bank = get_bank(session, name)
        _require_access(bank, actor)
        changed: dict[str, object] = {}
        if enabled is not None and enabled != bank.enabled:
            bank.enabled = changed["enabled"] = enabled
        if dihedral is not None and dihedral != bank.dihedral:
            bank.dihedral = changed["dihedral"] = dihedral
        if thresholds is not None:
            merged = {**bank.thresholds, **_validate_thresholds(thresholds)}
            if merged != bank.thresholds:
                bank.thresholds = changed["thresholds"] = merged
        if changed:
            _log_change(db, session, ChangeOp.BANK, bank.id, clock)
            record(db, session, actor=actor.actor, action=AuditAction.BANK_UPDATED, subject=f"bank:{name}",
                   details=changed, clock=clock)
        return bank


def recategorise_entries(db: Database, session: Session, name: str, *, old: str, new: str, actor: Principal,
                         clock: Clock) -> int:
    """Give the bank's entries of category ``old`` the category ``new`` (a designated entity moved from one policy
    to another), in the caller's transaction, with an audit entry; returns how many changed. Matchers read an entry's
    category for each hit (``matcher.py``), so future matches follow at once and no change-log row is needed.
    Restricted banks are refused like any change by a role that may not see them."""
    bank = get_bank(session, name)
    _require_access(bank, actor)
    entries = list(session.scalars(select(BankEntry).where(BankEntry.bank_id == bank.id, BankEntry.category == old)))
    for entry in entries:
        entry.category = new
    if entries:
        record(db, session, actor=actor.actor, action=AuditAction.BANK_UPDATED, subject=f"bank:{name}",
               details={"category": {"from": old, "to": new, "entries": len(entries)}}, clock=clock)
    return len(entries)


@dataclass(frozen=True)
class BankSummary:
    bank: Bank
    entries: int
    by_signal_type: dict[str, int]


def list_banks(session: Session, bank_id: int | None = None, *,
               viewer: Principal | None = None) -> list[BankSummary]:
    """Every bank with its enabled entries counted by signal type; only the bank ``bank_id`` when given. With a
    ``viewer``, only the banks they may see: a restricted bank's name, description and size are child-safety
    matters too."""
    counts: dict[int, dict[str, int]] = {}
    count_query = (
        select(BankEntry.bank_id, BankEntry.signal_type, func.count())
        .where(BankEntry.enabled.is_(True))
        .group_by(BankEntry.bank_id, BankEntry.signal_type)
    )
    bank_query = select(Bank).order_by(Bank.name)
    if bank_id is not None:
        count_query = count_query.where(BankEntry.bank_id == bank_id)
        bank_query = bank_query.where(Bank.id == bank_id)
    for entry_bank_id, signal_type, n in session.execute(count_query):
        counts.setdefault(entry_bank_id, {})[signal_type] = n
    banks = [b for b in session.scalars(bank_query) if viewer is None or can_see(b, viewer)]
    return [BankSummary(b, sum(counts.get(b.id, {}).values()), counts.get(b.id, {})) for b in banks]


@dataclass(frozen=True)
class NewEntry:
    """A validated entry, ready to insert."""

    signal_type: str
    value: str
    category: str = ""
    source: str = ""
    note: str = ""

    @classmethod
    def parse(cls, signal_type: str, value: str, category: str = "", source: str = "",
              note: str = "") -> NewEntry:
        """Validate raw input; raises ``InvalidEntry`` with the reason."""
        try:
            kind: type[SignalType] = registry.get(signal_type.strip())
        except registry.UnknownSignalType as exc:
            raise InvalidEntry(str(exc)) from None
        if not value.strip():
            raise InvalidEntry("value is empty")
        try:
            canonical = kind.validate(value)
        except InvalidSignalValue as exc:
            raise InvalidEntry(f"invalid {kind.name} value: {exc}") from None
        for field_name, text in (("category", category), ("source", source), ("note", note)):
            if len(text) > _FIELD_LIMITS[field_name]:
                raise InvalidEntry(f"{field_name} is longer than {_FIELD_LIMITS[field_name]} characters")
        return cls(kind.name, canonical, category.strip(), source.strip(), note.strip())

    def row(self, bank_id: int, actor: str, clock: Clock) -> dict[str, Any]:
        return {
            "bank_id": bank_id, "signal_type": self.signal_type, "value": self.value,
            "value_digest": value_digest(self.value), "category": self.category, "source": self.source,
            "note": self.note, "enabled": True, "added_by": actor, "added_at": clock.now(),
        }


def add_entry(db: Database, bank_name: str, entry: NewEntry, *, actor: Principal,
              clock: Clock | None = None) -> BankEntry:
    try:
        with db.write() as session:
            return add_entry_in(db, session, get_bank(session, bank_name), entry, actor=actor,
                                clock=clock or SystemClock())
    except IntegrityError:
        raise DuplicateEntry(f"bank {bank_name} already holds this {entry.signal_type} value") from None


def add_entry_in(db: Database, session: Session, bank: Bank, entry: NewEntry, *, actor: Principal,
                 clock: Clock) -> BankEntry:
    """Add an entry inside the caller's transaction (with its change-log row and audit entry), so a caller can
    write its own record of why in the same commit. A duplicate raises ``DuplicateEntry``; the caller's
    transaction stays usable (the insert runs in a savepoint)."""
    _require_access(bank, actor)
    _check_restricted_home(bank.restricted, entry)
    row = BankEntry(**entry.row(bank.id, actor.actor, clock))
    # The change log's lock before the insert, not only for the log row: an import holding it that meets this
    # value waits for this transaction, which would otherwise wait for the lock (a deadlock).
    db.serialize_writers(session, CHANGE_LOG_LOCK)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise DuplicateEntry(f"bank {bank.name} already holds this {entry.signal_type} value") from None
    _log_change(db, session, ChangeOp.ADD, bank.id, clock, signal_type=entry.signal_type, entry_id=row.id)
    record(db, session, actor=actor.actor, action=AuditAction.ENTRY_ADDED, subject=f"bank:{bank.name}",
           details={"entry_id": row.id, "signal_type": entry.signal_type, "category": entry.category,
                    "source": entry.source}, clock=clock)
    return row


def add_entries_in(db: Database, session: Session, bank: Bank, entries: Sequence[NewEntry], *, actor: Principal,
                   clock: Clock, why: str) -> int:
    """Add many entries inside the caller's transaction as an import does: batched inserts (values the bank holds
    already are skipped), one ``add_range`` change-log row and one audit entry for them all (``why`` says what
    brought them). Returns how many were added. Each entry must be fit for the bank (``InvalidEntry`` otherwise)."""
    _require_access(bank, actor)
    for entry in entries:
        _check_restricted_home(bank.restricted, entry)
    if not entries:
        return 0
    db.serialize_writers(session, CHANGE_LOG_LOCK)
    before = session.scalar(select(func.max(BankEntry.id))) or 0
    now = clock.now()
    added = sum(_write_chunk(session, bank.id, _Chunk.of_entries(entries[start:start + IMPORT_CHUNK]), actor.actor, now)
                for start in range(0, len(entries), IMPORT_CHUNK))
    if added:
        last = session.scalar(select(func.max(BankEntry.id))) or 0
        _log_change(db, session, ChangeOp.ADD_RANGE, bank.id, clock, entry_id=before + 1, last_entry_id=last)
        record(db, session, actor=actor.actor, action=AuditAction.BANK_IMPORTED, subject=f"bank:{bank.name}",
               details={"added": added, "via": why}, clock=clock)
    return added


def entries_from(session: Session, bank: Bank, source: str) -> list[BankEntry]:
    """The bank's entries added from one source (``content:<id>``: a content's curated media), oldest first."""
    return list(session.scalars(select(BankEntry).where(BankEntry.bank_id == bank.id, BankEntry.source == source)
                                .order_by(BankEntry.id)))


def _check_restricted_home(restricted_bank: bool, entry: NewEntry) -> None:
    """Child sexual abuse material goes only into restricted banks: in an open bank, every curator could read it."""
    if restricted_category(entry.category) and not restricted_bank:
        raise InvalidEntry(f"category {entry.category!r} is child sexual abuse material: it goes only into a "
                           "restricted bank")


def _entry_of(session: Session, bank: Bank, entry_id: int) -> BankEntry:
    entry = session.get(BankEntry, entry_id)
    if entry is None or entry.bank_id != bank.id:
        raise EntryNotFound(f"bank {bank.name} has no entry {entry_id}")
    return entry


def remove_entry(db: Database, bank_name: str, entry_id: int, *, actor: Principal,
                 clock: Clock | None = None) -> None:
    """Delete an entry. The change log and the audit chain keep the record that it existed."""
    clock = clock or SystemClock()
    with db.write() as session:
        remove_entry_in(db, session, get_bank(session, bank_name), entry_id, actor=actor, clock=clock)


def remove_entry_in(db: Database, session: Session, bank: Bank, entry_id: int, *, actor: Principal,
                    clock: Clock) -> None:
    """Delete an entry inside the caller's transaction, with its change-log row and audit entry (an exchange's
    deletion lands in the same commit as the exchange's checkpoint)."""
    _require_access(bank, actor)
    entry = _entry_of(session, bank, entry_id)
    details = {"entry_id": entry_id, "signal_type": entry.signal_type, "value_digest": entry.value_digest.hex()}
    session.delete(entry)
    _log_change(db, session, ChangeOp.REMOVE, bank.id, clock, signal_type=entry.signal_type, entry_id=entry_id)
    record(db, session, actor=actor.actor, action=AuditAction.ENTRY_REMOVED, subject=f"bank:{bank.name}",
           details=details, clock=clock)


def set_entry_enabled(db: Database, bank_name: str, entry_id: int, enabled: bool, *, actor: Principal,
                      clock: Clock | None = None) -> None:
    clock = clock or SystemClock()
    with db.write() as session:
        bank = get_bank(session, bank_name)
        _require_access(bank, actor)
        entry = _entry_of(session, bank, entry_id)
        if entry.enabled == enabled:
            return
        entry.enabled = enabled
        op = ChangeOp.ADD if enabled else ChangeOp.REMOVE
        _log_change(db, session, op, bank.id, clock, signal_type=entry.signal_type, entry_id=entry_id)
        record(db, session, actor=actor.actor, action=AuditAction.ENTRY_ADDED if enabled else
               AuditAction.ENTRY_REMOVED, subject=f"bank:{bank_name}",
               details={"entry_id": entry_id, "enabled": enabled}, clock=clock)


def recent_entries(session: Session, bank: Bank, limit: int = 20) -> Sequence[BankEntry]:
    return session.scalars(
        select(BankEntry).where(BankEntry.bank_id == bank.id).order_by(BankEntry.id.desc()).limit(limit)
    ).all()


@dataclass(frozen=True)
class EntryPage:
    entries: Sequence[BankEntry]
    has_next: bool


def search_entries(session: Session, bank: Bank, *, text: str = "", page: int = 1,
                   per_page: int = 50) -> EntryPage:
    """One page of a bank's entries, newest first; ``text`` matches the start of a value, a category, a source or
    anywhere in a note. The caller checks the viewer may see the bank."""
    query = select(BankEntry).where(BankEntry.bank_id == bank.id)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(BankEntry.value.like(f"{escaped}%", escape="\\"),
                                BankEntry.category.like(f"{escaped}%", escape="\\"),
                                BankEntry.source.like(f"{escaped}%", escape="\\"),
                                BankEntry.note.like(f"%{escaped}%", escape="\\")))
    rows = session.scalars(query.order_by(BankEntry.id.desc()).offset((max(1, page) - 1) * per_page)
                           .limit(per_page + 1)).all()
    return EntryPage(rows[:per_page], len(rows) > per_page)


# --- CSV import and export --------------------------------------------------------------------------------------

#: Lines read, validated and written together: large enough that per-chunk costs vanish, small enough that memory
#: stays flat however long the file is.
IMPORT_CHUNK = 65_536
#: PostgreSQL: lines staged before one INSERT ... SELECT writes them (``_insert_staged``).
IMPORT_FLUSH_LINES = 1_048_576
_NOT_LOWER_HEX = re.compile(r"[^0-9a-f]")
_ENTRY_COLUMNS = ("bank_id", "signal_type", "value", "value_digest", "category", "source", "note", "enabled",
                  "added_by", "added_at")


@dataclass
class ImportResult:
    lines: int = 0
    added: int = 0
    duplicates: int = 0
    by_signal_type: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Chunk:
    """Validated lines as columns, one per name in ``CSV_HEADER`` (a column the file lacks is empty on every line).

    ``text`` is the lines' own text where it is exactly these entries, unquoted, with the columns ``header`` names:
    PostgreSQL COPYs it as it is, with nothing formatted per line."""

    columns: dict[str, Sequence[str]]
    count: int
    by_signal_type: dict[str, int]
    text: str | None = None
    header: tuple[str, ...] = ()

    @classmethod
    def of_entries(cls, entries: Sequence[NewEntry]) -> _Chunk:
        columns: dict[str, Sequence[str]] = {name: [getattr(e, name) for e in entries] for name in CSV_HEADER}
        return cls(columns, len(entries), dict(Counter(e.signal_type for e in entries)))


def _read_header(reader: Iterator[list[str]]) -> list[str]:
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CsvImportError(1, "the file is empty; expected a header signal_type,value[,...]") from None
    except csv.Error as exc:
        raise CsvImportError(1, f"malformed CSV: {exc}") from None
    unknown = [h for h in header if h not in CSV_HEADER]
    if unknown or any(col not in header for col in REQUIRED_COLUMNS) or len(set(header)) != len(header):
        raise CsvImportError(1, f"header must be signal_type,value[,category,source,note], got {','.join(header)}")
    return header


def _parse_rows(reader: Iterator[list[str]], header: list[str], restricted: bool,
                first_line: int) -> Iterator[NewEntry]:
    """Line by line: the reference for what a line means, and the path that names a bad line and says why."""
    line = first_line - 1
    while True:
        line += 1
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvImportError(line, f"malformed CSV: {exc}") from None
        if not raw or all(not cell.strip() for cell in raw):
            continue
        if len(raw) != len(header):
            raise CsvImportError(line, f"expected {len(header)} fields, got {len(raw)}")
        fields = dict(zip(header, raw, strict=True))
        try:
            entry = NewEntry.parse(**fields)
            _check_restricted_home(restricted, entry)
        except InvalidEntry as exc:
            raise CsvImportError(line, str(exc)) from None
        yield entry


def _read_chunks(stream: Iterable[str], restricted: bool, *, text_only: bool = False) -> Iterator[_Chunk]:
    """The file's entries, validated, ``IMPORT_CHUNK`` lines at a time. With ``text_only`` (PostgreSQL, which
    COPYs a chunk's text), a chunk that has its text keeps no columns: a flush's worth of chunks read ahead then
    holds little more than the file's own bytes.

    A chunk without quotes is checked a column at a time (``_bulk_chunk``); one it cannot pass whole (a blank line,
    a value to canonicalise, a bad line) is read line by line, which gives the same entries or names the bad line.
    From the first quote or lone carriage return on, the csv module reads the rest, since a quoted field may run
    over lines and so over chunks."""
    lines_in = iter(stream)
    header = _read_header(csv.reader(lines_in))  # the csv module pulls one line at a time from lines_in
    line = 2
    while lines := list(itertools.islice(lines_in, IMPORT_CHUNK)):
        text = "".join(lines)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        if '"' in text or "\r" in text or "\x00" in text:
            rest = _parse_rows(csv.reader(itertools.chain(lines, lines_in)), header, restricted, line)
            while entries := list(itertools.islice(rest, IMPORT_CHUNK)):
                yield _Chunk.of_entries(entries)
            return
        chunk = _bulk_chunk(text, header, restricted)
        if chunk is None:
            chunk = _Chunk.of_entries(list(_parse_rows(csv.reader(lines), header, restricted, line)))
        line += len(lines)
        if chunk.count:
            yield dataclasses.replace(chunk, columns={}) if text_only and chunk.text is not None else chunk


def _bulk_chunk(text: str, header: list[str], restricted: bool) -> _Chunk | None:
    """Unquoted lines checked a column at a time: every line has the header's fields, known signal types whose
    values are canonical hex already (``SignalType.hex_length``), short and stripped text fields, no child sexual
    abuse material in an open bank. The set of distinct texts is checked, not each line. ``None`` when a line
    fails any of it: the line-by-line reading then says which and why (or canonicalises it, as it always has)."""
    rows = text.split("\n")
    if rows[-1] == "":
        rows.pop()
    fields = [row.split(",") for row in rows]
    if set(map(len, fields)) != {len(header)}:
        return None
    given: dict[str, Sequence[str]] = dict(zip(header, zip(*fields, strict=True), strict=True))
    lengths: dict[str, int] = {}
    for name in set(given["signal_type"]):
        try:
            kind = registry.get(name)
        except registry.UnknownSignalType:
            return None
        if kind.name != name or kind.hex_length is None:
            return None
        lengths[name] = kind.hex_length
    values, count = given["value"], len(rows)
    if len(lengths) == 1:
        if set(map(len, values)) != set(lengths.values()):
            return None
    elif list(map(len, values)) != [lengths[name] for name in given["signal_type"]]:
        return None
    if _NOT_LOWER_HEX.search("".join(values)):
        return None
    for name, limit in _FIELD_LIMITS.items():
        for distinct in set(given.get(name, ())):
            if len(distinct) > limit or distinct != distinct.strip():
                return None
            if name == "category" and restricted_category(distinct) and not restricted:
                return None
    by_type = {next(iter(lengths)): count} if len(lengths) == 1 else dict(Counter(given["signal_type"]))
    columns = {name: given.get(name, ("",) * count) for name in CSV_HEADER}
    return _Chunk(columns, count, by_type, text if text.endswith("\n") else text + "\n", tuple(header))


def _read_ahead(chunks: Iterator[_Chunk], depth: int = 2) -> Generator[_Chunk]:
    """``chunks`` as a thread reads and validates them ahead, so that Python parses the next chunk while the
    database (PostgreSQL on its own core) writes this one. The thread's error (a bad line) is raised here, in
    order; closing this generator (the writer failed) stops the thread."""
    ready: queue.Queue[_Chunk | BaseException | None] = queue.Queue(depth)
    stop = threading.Event()

    def hand_over(item: _Chunk | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not hand_over(chunk):
                    return
        except BaseException as exc:  # raised again in the writer's thread
            hand_over(exc)
            return
        hand_over(None)

    reader = threading.Thread(target=read, name="bastion-import-reader", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _write_chunk(session: Session, bank_id: int, chunk: _Chunk, actor: str, now: dt.datetime, *,
                 flush: bool = True) -> int:
    """Insert a chunk's entries, skipping values the bank holds already (or that came earlier in the import), and
    return how many were added. SQLite: one executemany of plain tuples, the constant columns converted once
    (SQLAlchemy's per-row conversion was a third of the time). PostgreSQL: the chunk is staged
    (``_stage_chunk``) and, with ``flush``, everything staged is inserted (``_insert_staged``); without it the
    rows wait for a later chunk's flush or ``_flush_staged``, and 0 is returned."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        _stage_chunk(session, chunk)
        return _insert_staged(session, bank_id, actor, now) if flush else 0
    table = cast(Table, BankEntry.__table__)

    def stored(column: str, value: object) -> object:
        convert = table.c[column].type.bind_processor(dialect)
        return convert(value) if convert else value

    c = chunk.columns
    rows = list(zip(itertools.repeat(bank_id), c["signal_type"], c["value"], map(value_digest, c["value"]),
                    c["category"], c["source"], c["note"], itertools.repeat(stored("enabled", True)),
                    itertools.repeat(actor), itertools.repeat(stored("added_at", now))))
    sql = (f"INSERT INTO bank_entries ({', '.join(_ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(_ENTRY_COLUMNS))})"
           " ON CONFLICT DO NOTHING")
    added: int = session.connection().exec_driver_sql(sql, rows).rowcount
    return added


def _flush_staged(session: Session, bank_id: int, actor: str, now: dt.datetime) -> int:
    """Insert what ``_write_chunk`` staged without flushing (PostgreSQL); SQLite stages nothing."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    return _insert_staged(session, bank_id, actor, now)


def _stage_chunk(session: Session, chunk: _Chunk) -> None:
    """PostgreSQL: COPY a chunk's lines into the import's temporary table. A chunk that came through
    ``_bulk_chunk`` is sent as the file's own text, in COPY's CSV format (an empty field arrives as NULL, hence the
    coalesces in ``_insert_staged``)."""
    driver = session.connection().connection.driver_connection  # psycopg's own connection
    assert driver is not None
    with driver.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS bank_import_lines (signal_type text, value text, "
                    "category text, source text, note text) ON COMMIT DROP")
        if chunk.text is not None:
            with cur.copy(f"COPY bank_import_lines ({', '.join(chunk.header)}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(chunk.text)
        else:
            with cur.copy(f"COPY bank_import_lines ({', '.join(CSV_HEADER)}) FROM STDIN") as copy:
                for row in zip(*(chunk.columns[name] for name in CSV_HEADER), strict=True):
                    copy.write_row(row)


def _insert_staged(session: Session, bank_id: int, actor: str, now: dt.datetime) -> int:
    """PostgreSQL: one INSERT ... SELECT of the staged lines that takes each value's SHA-256 on the server (on its
    own core, not Python's) and skips duplicates; returns how many were added.

    The rows go in the unique index's order, so the index on random digests is walked once per flush rather than
    at random; the more lines a flush holds (``IMPORT_FLUSH_LINES``), the more of them land on each index page it
    visits, which counts once the index outgrows the server's buffers. The id sequence is named by its oid, a
    constant (``nextval(pg_get_serial_sequence(...))`` looked it up again for every row).

    Most imports bring values the bank does not hold. A flush therefore first tries a plain INSERT of its distinct
    values in a savepoint, which costs the unique index one probe a row where ``ON CONFLICT`` costs two (a sixth
    of the server's time); a value the bank holds already fails it, and the flush, with every later one of this
    import, is redone with ``ON CONFLICT DO NOTHING``. No other writer can add to a bank meanwhile: the import holds
    ``CHANGE_LOG_LOCK`` from its start. Where the role may (``_checks_bank_itself``), the foreign key's per-row
    check is replaced by one lock on the bank row, which is what that check takes."""
    import psycopg  # PostgreSQL's driver, there whenever this runs (the ``postgres`` extra)

    driver = session.connection().connection.driver_connection
    assert driver is not None
    plan = _import_plan(session, driver)
    with driver.cursor() as cur:
        if plan.checks_bank_itself and cur.execute("SELECT 1 FROM banks WHERE id = %s FOR KEY SHARE",
                                                   (bank_id,)).fetchone() is None:
            raise BankNotFound(f"bank {bank_id} is gone")  # deleted since it was read: the foreign key's refusal
        added = None
        if not plan.found_duplicate:
            cur.execute("SAVEPOINT bastion_import")
            try:
                added = _insert_lines(cur, plan, bank_id, actor, now, skip_held=False)
                cur.execute("RELEASE SAVEPOINT bastion_import")
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT bastion_import")
                plan.found_duplicate = True
        if added is None:
            added = _insert_lines(cur, plan, bank_id, actor, now, skip_held=True)
        cur.execute("TRUNCATE bank_import_lines")
    return added


@dataclass
class _ImportPlan:
    """What one PostgreSQL import's flushes share, found at its first flush (``_import_plan``)."""

    sequence: int
    checks_bank_itself: bool
    found_duplicate: bool = False


def _import_plan(session: Session, driver: Any) -> _ImportPlan:
    """The import's plan, kept in the session for its transaction's later flushes."""
    plan = session.info.get(_IMPORT_PLAN_KEY)
    if isinstance(plan, _ImportPlan):
        return plan
    row = driver.execute("SELECT pg_get_serial_sequence('bank_entries', 'id')::regclass::oid").fetchone()
    plan = _ImportPlan(sequence=int(row[0]), checks_bank_itself=_checks_bank_itself(driver))
    session.info[_IMPORT_PLAN_KEY] = plan
    return plan


_IMPORT_PLAN_KEY = "bastion.bank_import_plan"


def _checks_bank_itself(driver: Any) -> bool:
    """Whether this import may skip the foreign key's per-row check (a tenth of the server's time) by setting
    ``session_replication_role`` to ``replica`` around its INSERT, as ``pg_restore --disable-triggers`` does: only
    a role allowed to (a superuser, or on PostgreSQL 15 and later one granted ``SET`` on that parameter), and only
    while ``bank_entries`` has no trigger of its own, which that setting would skip too. Otherwise the check runs
    per row as usual."""
    superuser = driver.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    allowed = bool(superuser and superuser[0])
    if not allowed and driver.info.server_version >= 150000:
        granted = driver.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')").fetchone()
        allowed = bool(granted and granted[0])
    if not allowed:
        return False
    own = driver.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'bank_entries'::regclass "
                         "AND NOT tgisinternal").fetchone()
    return own is not None and int(own[0]) == 0


def _insert_lines(cur: Any, plan: _ImportPlan, bank_id: int, actor: str, now: dt.datetime, *,
                  skip_held: bool) -> int:
    """The staged lines' INSERT ... SELECT: each value once (the file's first line of it), ids drawn in the file's
    order (an export lists the bank as imported), rows in the index's order; with ``skip_held``, values the bank
    holds already are skipped rather than refused."""
    if plan.checks_bank_itself:
        cur.execute("SET LOCAL session_replication_role = replica")
    cur.execute(f"INSERT INTO bank_entries (id, {', '.join(_ENTRY_COLUMNS)}) "
                "SELECT id, %(bank)s, signal_type, value, digest, coalesce(category, ''), coalesce(source, ''), "
                "coalesce(note, ''), true, %(actor)s, %(now)s FROM (SELECT DISTINCT ON (signal_type, digest) * "
                f"FROM (SELECT nextval({plan.sequence}::regclass) AS id, *, "
                "sha256(convert_to(value, 'UTF8')) AS digest FROM bank_import_lines) AS drawn "
                "ORDER BY signal_type, digest, id) AS lines"
                + (" ON CONFLICT (bank_id, signal_type, value_digest) DO NOTHING" if skip_held else ""),
                {"bank": bank_id, "actor": actor, "now": now})
    added: int = cur.rowcount
    if plan.checks_bank_itself:
        cur.execute("SET LOCAL session_replication_role = origin")
    return added


#: PostgreSQL's sort memory for the import's transaction (the default is 4 MB): a flush's rows are sorted in the
#: index's order, about 260 bytes each.
_IMPORT_WORK_MEM = "64MB"

#: SQLite's page cache while importing, in KiB (its default is 2 MiB): the unique index on random digests is
#: written all over, and past the cache each insert reads its pages back from the file.
SQLITE_IMPORT_CACHE_KIB = 256 * 1024


@contextlib.contextmanager
def _import_cache(session: Session) -> Iterator[None]:
    """On SQLite, a larger page cache for the import's connection, then its own size again (it goes back to the
    pool). On PostgreSQL, room to sort a chunk for the import's transaction only (``SET LOCAL``); its shared buffers
    are the server's to size."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.connection().exec_driver_sql(f"SET LOCAL work_mem = '{_IMPORT_WORK_MEM}'")
    if dialect != "sqlite":
        yield
        return
    conn = session.connection()
    size = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(size or -2000)}")


def import_csv(
    db: Database,
    bank_name: str,
    stream: Iterable[str],
    *,
    actor: Principal,
    progress: Callable[[int], None] | None = None,
    clock: Clock | None = None,
) -> ImportResult:
    """Stream a CSV into a bank in one transaction: any bad line rolls the whole import back, so a crash or a
    refusal leaves nothing behind.

    Lines are validated and inserted ``IMPORT_CHUNK`` at a time, so memory stays flat however long the file is.
    The change log gets one ``add_range`` row for the whole import instead of one row per entry; every entry
    shares the import's one timestamp.
    """
    clock = clock or SystemClock()
    now = clock.now()
    result = ImportResult()
    with db.write() as session:
        bank = get_bank(session, bank_name)
        _require_access(bank, actor)
        db.serialize_writers(session, CHANGE_LOG_LOCK)
        before = session.scalar(select(func.max(BankEntry.id))) or 0
        staged = 0
        # PostgreSQL: a flush's chunks are read ahead while the last flush's INSERT runs on the server's core, so
        # the server is not left idle while Python validates them after it (a sixth of the wall time at 10M).
        postgres = session.get_bind().dialect.name == "postgresql"
        read = _read_ahead(_read_chunks(stream, bank.restricted, text_only=postgres),
                           depth=IMPORT_FLUSH_LINES // IMPORT_CHUNK + 1 if postgres else 2)
        with _import_cache(session), contextlib.closing(read) as chunks:
            for chunk in chunks:
                result.lines += chunk.count
                for signal_type, n in chunk.by_signal_type.items():
                    result.by_signal_type[signal_type] = result.by_signal_type.get(signal_type, 0) + n
                staged += chunk.count
                flush = staged >= IMPORT_FLUSH_LINES
                result.added += _write_chunk(session, bank.id, chunk, actor.actor, now, flush=flush)
                staged = 0 if flush else staged
                if progress:
                    progress(chunk.count)
            result.added += _flush_staged(session, bank.id, actor.actor, now) if staged else 0
        result.duplicates = result.lines - result.added
        if result.added:
            last = session.scalar(select(func.max(BankEntry.id))) or 0
            _log_change(db, session, ChangeOp.ADD_RANGE, bank.id, clock, entry_id=before + 1, last_entry_id=last)
        record(db, session, actor=actor.actor, action=AuditAction.BANK_IMPORTED, subject=f"bank:{bank_name}",
               details={"lines": result.lines, "added": result.added, "duplicates": result.duplicates,
                        "by_signal_type": result.by_signal_type}, clock=clock)
    return result


def export_rows(db: Database, bank_name: str, *, actor: Principal) -> Iterator[list[str]]:
    """Yield the header and then every enabled entry, streamed from the database in id order."""
    with db.read() as session:
        bank = get_bank(session, bank_name)
        _require_access(bank, actor)
        yield list(CSV_HEADER)
        rows = session.execute(
            select(BankEntry.signal_type, BankEntry.value, BankEntry.category, BankEntry.source, BankEntry.note)
            .where(BankEntry.bank_id == bank.id, BankEntry.enabled.is_(True))
            .order_by(BankEntry.id)
            .execution_options(yield_per=5000)
        )
        for row in rows:
            yield list(row)


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    """Format rows as CSV text, one line at a time (for streaming HTTP responses and files alike)."""

    class _Line:
        value = ""

        def write(self, s: str) -> int:
            self.value = s
            return len(s)

    buf = _Line()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
        yield buf.value



# --- origins: where an exchange's entries came from ---------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """An entry's source outside Bastion: the exchange's configured name and its id of the record."""

    exchange: str
    record: str

    def label(self) -> str:
        return f"{self.exchange} record {self.record}"


def origins_of(session: Session, entry_ids: Iterable[int]) -> dict[int, list[Origin]]:
    """Each entry's origins (entries banked by hand have none), for the pages and reports that name a match's
    source. The caller has already decided the viewer may see these entries."""
    ids = sorted(set(entry_ids))
    found: dict[int, list[Origin]] = {}
    if not ids:
        return found
    rows = session.execute(select(EntryOrigin.entry_id, EntryOrigin.exchange, EntryOrigin.record)
                           .where(EntryOrigin.entry_id.in_(ids)).order_by(EntryOrigin.id))
    for entry_id, exchange, record_id in rows:
        found.setdefault(entry_id, []).append(Origin(exchange, record_id))
    return found
