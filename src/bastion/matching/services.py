"""Bank operations: create, configure, add and remove entries, import and export CSV.

Every change writes three things in one transaction: the change itself, a row in the bank change log (which the
matchers of every process replay to stay current) and an audit entry. Either all three land or none does.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, cast

from sqlalchemy import Table, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
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
IMPORT_BATCH = 5000
_FIELD_LIMITS = {"category": 64, "source": 200, "note": 10_000}


def value_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


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
        "query_digests": sorted({value_digest(q.value) for q in queries}),
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
    _check_restricted_home(bank, entry)
    row = BankEntry(**entry.row(bank.id, actor.actor, clock))
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
        _check_restricted_home(bank, entry)
    if not entries:
        return 0
    db.serialize_writers(session, CHANGE_LOG_LOCK)
    before = session.scalar(select(func.max(BankEntry.id))) or 0
    count_before = session.scalar(select(func.count()).where(BankEntry.bank_id == bank.id)) or 0
    rows = [entry.row(bank.id, actor.actor, clock) for entry in entries]
    for start in range(0, len(rows), IMPORT_BATCH):
        _insert_ignoring_duplicates(session, rows[start:start + IMPORT_BATCH])
    added = (session.scalar(select(func.count()).where(BankEntry.bank_id == bank.id)) or 0) - count_before
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


def _check_restricted_home(bank: Bank, entry: NewEntry) -> None:
    """Child sexual abuse material goes only into restricted banks: in an open bank, every curator could read it."""
    if restricted_category(entry.category) and not bank.restricted:
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
    details = {"entry_id": entry_id, "signal_type": entry.signal_type, "value_digest": entry.value_digest}
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


@dataclass
class ImportResult:
    lines: int = 0
    added: int = 0
    duplicates: int = 0
    by_signal_type: dict[str, int] = field(default_factory=dict)


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


def _parse_rows(reader: Iterator[list[str]], header: list[str], bank: Bank) -> Iterator[NewEntry]:
    line = 1
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
            _check_restricted_home(bank, entry)
        except InvalidEntry as exc:
            raise CsvImportError(line, str(exc)) from None
        yield entry


_COPY_COLUMNS = ("bank_id", "signal_type", "value", "value_digest", "category", "source", "note", "enabled",
                 "added_by", "added_at")


def _copy_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY the batch into a temporary table, then one INSERT ... SELECT that skips duplicates. COPY
    sends rows as one stream instead of statements (bench/import.py: several times the executemany's rate)."""
    cols = ", ".join(_COPY_COLUMNS)
    driver = session.connection().connection.driver_connection  # psycopg's own connection
    assert driver is not None
    with driver.cursor() as cur:
        # the columns' types without bank_entries' id default: the rows get their ids once, on the INSERT
        cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS bank_import_rows ON COMMIT DROP "
                    f"AS SELECT {cols} FROM bank_entries WITH NO DATA")
        with cur.copy(f"COPY bank_import_rows ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in _COPY_COLUMNS))
        cur.execute(f"INSERT INTO bank_entries ({cols}) SELECT {cols} FROM bank_import_rows "
                    "ON CONFLICT DO NOTHING")
        cur.execute("TRUNCATE bank_import_rows")


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    """A Core executemany (the ORM's bulk path costs a third of the import); duplicates are skipped, not errors.
    On PostgreSQL a COPY (``_copy_ignoring_duplicates``)."""
    table = cast(Table, BankEntry.__table__)
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        _copy_ignoring_duplicates(session, rows)
        return
    if dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    elif dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        stmt = insert(table)
    session.connection().execute(stmt, rows)


def import_csv(
    db: Database,
    bank_name: str,
    stream: IO[str],
    *,
    actor: Principal,
    progress: Callable[[int], None] | None = None,
    clock: Clock | None = None,
) -> ImportResult:
    """Stream a CSV into a bank in one transaction: any bad line rolls the whole import back.

    Rows are validated and inserted in batches, so memory stays flat however long the file is. The change log gets
    one ``add_range`` row for the whole import instead of one row per entry.
    """
    clock = clock or SystemClock()
    result = ImportResult()
    reader = csv.reader(stream)
    with db.write() as session:
        bank = get_bank(session, bank_name)
        _require_access(bank, actor)
        db.serialize_writers(session, CHANGE_LOG_LOCK)
        before = session.scalar(select(func.max(BankEntry.id))) or 0
        count_before = session.scalar(select(func.count()).where(BankEntry.bank_id == bank.id)) or 0
        header = _read_header(reader)
        batch: list[dict[str, Any]] = []
        for entry in _parse_rows(reader, header, bank):
            result.lines += 1

            result.by_signal_type[entry.signal_type] = result.by_signal_type.get(entry.signal_type, 0) + 1
            batch.append(entry.row(bank.id, actor.actor, clock))
            if len(batch) >= IMPORT_BATCH:
                _insert_ignoring_duplicates(session, batch)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            _insert_ignoring_duplicates(session, batch)
            if progress:
                progress(len(batch))
        count_after = session.scalar(select(func.count()).where(BankEntry.bank_id == bank.id)) or 0
        result.added = count_after - count_before
        result.duplicates = result.lines - result.added
        last = session.scalar(select(func.max(BankEntry.id))) or 0
        if result.added:
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
