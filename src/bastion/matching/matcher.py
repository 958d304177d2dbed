"""The matcher: one in-memory index per signal type, kept in step with the banks through the change log.

Start-up streams every enabled entry into its type's index. After that, each process replays the bank change log
(``bank_changes``, ids only grow) every refresh interval, so an entry added through any process is live in every
process within about a second, and a removed one is forgotten as fast; no index is ever rebuilt and shipped whole.

With a snapshot directory (``snapshot``), start-up memory-maps the PDQ index as ``save_snapshot`` last wrote it
(``PdqIndex.from_snapshot``: nothing is built) and replays the change log from the snapshot's change id, so a
process with ten million PDQ hashes answers within seconds of starting instead of after a full load.

Indexes know nothing of banks: they map values to entry ids. Which bank an entry belongs to, its category and the
bank's threshold are looked up for the few hits a query returns, so memory stays proportional to the hashes alone.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.core.db import Database
from bastion.core.rwlock import RWLock
from bastion.core.worker import Rounds, Worker
from bastion.hashing import registry
from bastion.hashing.interfaces import HashResult, SignalIndex
from bastion.hashing.pdq_index import PdqIndex
from bastion.hashing.services import FileSignals
from bastion.matching.models import Bank, BankChange, BankEntry, ChangeOp

_LOAD_BATCH = 20_000
_SNAPSHOT_TYPE = "pdq"
log = logging.getLogger(__name__)

#: The refresher's name (its thread's, and on ``/status``).
REFRESHER = "bastion-matcher-refresh"


def restricted_category(category: str) -> bool:
    """Whether an entry's own category says child sexual abuse material (``csam``, ``csam_a1``, ``CSAM-B2``...).

    Such an entry is restricted material wherever it is banked: a curator who files one in an open bank by mistake
    must not open it to every role, nor let an upload matching it through.
    """
    head = re.split(r"[\s_.:/-]", category.strip().lower(), maxsplit=1)[0]
    return head == "csam"


@dataclass(frozen=True)
class BankInfo:
    """What matching needs to know of a bank, kept in memory (there are few banks)."""

    id: int
    name: str
    enabled: bool
    restricted: bool
    dihedral: bool
    thresholds: dict[str, int]

    def threshold(self, signal_type: str) -> int:
        return self.thresholds.get(signal_type, registry.get(signal_type).default_threshold)

    @classmethod
    def from_row(cls, bank: Bank) -> BankInfo:
        return cls(bank.id, bank.name, bank.enabled, bank.restricted, bank.dihedral, dict(bank.thresholds))


@dataclass(frozen=True)
class Match:
    """One bank entry that a query signal matched."""

    bank: str
    entry_id: int
    signal_type: str
    category: str
    distance: int
    #: The query value that matched (for a dihedral match: the hash of the flipped or rotated copy).
    query_value: str
    variant: bool = False
    #: Child sexual abuse material: the bank is restricted, or the entry's own category says so. Outside the
    #: child-safety roles such a match is never shown, not even as a yes or no.
    restricted: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type,
            "category": self.category,
            "distance": self.distance,
            "variant": self.variant,
        }


@dataclass(frozen=True)
class Query:
    """A signal to look up; ``variant`` marks hashes of flipped or rotated copies (matched by dihedral banks)."""

    signal: HashResult
    variant: bool = False


def queries_for(signals: FileSignals) -> list[Query]:
    """A file's signals and alternates (the file as reference tools decode it: matched in every bank, like the
    signals), and its variants flagged as such, ready to match."""
    return ([Query(s) for s in signals.signals + signals.alternates]
            + [Query(s, variant=True) for s in signals.variants])


@dataclass
class Freshness:
    applied_change_id: int = 0
    last_refresh: float = 0.0
    loaded: bool = False
    errors: list[str] = field(default_factory=list)


class Matcher:
    """Thread-safe: queries may run from many threads at once while a refresher thread applies changes.

    No lock serialises lookups. An index that says it is ``concurrent`` (PDQ) is queried and changed with no
    matcher lock at all; the others sit behind a readers-writer lock that lookups share. ``banks`` is never
    changed in place, only replaced, so a lookup reads it with one attribute load.
    """

    def __init__(self, db: Database, snapshot: Path | None = None) -> None:
        """``snapshot``: a directory for the PDQ index's snapshot (read at ``load``, written by ``save_snapshot``)."""
        self._db = db
        self._snapshot = snapshot
        self._lock = RWLock()
        self._bank_lock = threading.Lock()  # serialises replacements of ``banks``
        self._refresh_lock = threading.Lock()  # one refresh at a time (start-up and the refresher thread)
        self.indexes: dict[str, SignalIndex] = {t.name: t.index_class()() for t in registry.signal_types()}
        self.banks: dict[int, BankInfo] = {}
        self.freshness = Freshness()
        self._refresher: Worker | None = None

    # --- loading and refreshing --------------------------------------------------------------------------------

    def load(self, progress: Callable[[int], None] | None = None) -> int:
        """Build every index from the database (PDQ's from the snapshot when there is a usable one); returns the
        number of entries loaded."""
        with self._db.read() as session:
            # Read the log position first: anything committed after it is replayed by refresh(), and replaying an
            # add that the stream below already saw is harmless (indexes treat re-adding a key as replacing it).
            version = session.scalar(select(func.max(BankChange.id))) or 0
            self._load_banks(session)
            loaded = 0
            from_snapshot = self._open_snapshot(version)
            if from_snapshot is not None:
                pdq, change_id = from_snapshot
                self.indexes[_SNAPSHOT_TYPE] = pdq
                loaded += len(pdq)
                # Replaying from the snapshot's position brings PDQ current; for the indexes streamed below it
                # replays changes they already hold, which leaves them as they are (each entry ends in its last
                # change's state).
                version = change_id
            for signal_type, index in self.indexes.items():
                if from_snapshot is not None and signal_type == _SNAPSHOT_TYPE:
                    continue
                # One stream per index: an index that builds in bulk (PDQ) builds once, not once per batch.
                rows = _counted(self._stream(session, BankEntry.signal_type == signal_type), progress)
                with self._writing(index):
                    before = len(index)
                    index.add_many(rows)
                    loaded += len(index) - before
        with self._refresh_lock:
            if from_snapshot is not None:
                self.freshness.applied_change_id = version
            else:
                self.freshness.applied_change_id = max(self.freshness.applied_change_id, version)
            self.freshness.loaded = True
        self.refresh()
        return loaded

    def _open_snapshot(self, version: int) -> tuple[PdqIndex, int] | None:
        """The PDQ index memory-mapped from the snapshot and its change id; ``None`` (load in full) when there is
        none, it is unreadable, or it is ahead of this database's log (another database's snapshot)."""
        if self._snapshot is None or not (self._snapshot / "meta.json").exists():
            return None
        try:
            index, meta = PdqIndex.from_snapshot(self._snapshot)
        except ValueError as exc:
            log.warning("ignoring the PDQ snapshot, loading in full: %s", exc)
            return None
        change_id = meta.get("change_id")
        if not isinstance(change_id, int) or not 0 <= change_id <= version:
            log.warning("ignoring the PDQ snapshot at change %s: the log ends at %s", change_id, version)
            return None
        return index, change_id

    def save_snapshot(self) -> dict[str, object]:
        """Write the PDQ index's snapshot at the change id applied so far (no refresh runs meanwhile; lookups
        do). Returns the snapshot's meta."""
        if self._snapshot is None:
            raise ValueError("this matcher has no snapshot directory")
        index = self.indexes[_SNAPSHOT_TYPE]
        assert isinstance(index, PdqIndex)
        with self._refresh_lock:
            return index.save_snapshot(self._snapshot, {"change_id": self.freshness.applied_change_id})

    def _load_banks(self, session: Session) -> None:
        banks = {b.id: BankInfo.from_row(b) for b in session.scalars(select(Bank))}
        with self._bank_lock:
            self.banks = banks

    def _writing(self, index: SignalIndex) -> AbstractContextManager[object]:
        """The lock a change to ``index`` takes: none for an index that locks for itself."""
        return nullcontext() if index.concurrent else self._lock.write()

    def _reading(self, index: SignalIndex) -> AbstractContextManager[object]:
        return nullcontext() if index.concurrent else self._lock.read()

    @staticmethod
    def _stream(session: Session, *where: object) -> Iterator[tuple[int, str]]:
        stmt = (
            select(BankEntry.id, BankEntry.value)
            .where(BankEntry.enabled.is_(True), *where)  # type: ignore[arg-type]
            .order_by(BankEntry.id)
            .execution_options(yield_per=_LOAD_BATCH)
        )
        yield from session.execute(stmt)

    def refresh(self) -> int:
        """Apply every change logged since the last refresh; returns how many were applied."""
        applied = 0
        with self._refresh_lock, self._db.read() as session:
            while True:
                changes = session.scalars(
                    select(BankChange)
                    .where(BankChange.id > self.freshness.applied_change_id)
                    .order_by(BankChange.id)
                    .limit(1000)
                ).all()
                if not changes:
                    break
                for change in changes:
                    self._apply(session, change)
                    self.freshness.applied_change_id = change.id
                applied += len(changes)
        self.freshness.last_refresh = time.time()
        return applied

    def _apply(self, session: Session, change: BankChange) -> None:
        op = ChangeOp(change.op)
        if op is ChangeOp.BANK:
            bank = session.get(Bank, change.bank_id)
            with self._bank_lock:
                banks = dict(self.banks)
                if bank is None:
                    banks.pop(change.bank_id, None)
                else:
                    banks[bank.id] = BankInfo.from_row(bank)
                self.banks = banks
        elif op is ChangeOp.REMOVE:
            assert change.signal_type is not None and change.entry_id is not None
            if (index := self.indexes.get(change.signal_type)) is not None:  # None: its extension is gone
                with self._writing(index):
                    index.remove(change.entry_id)
        elif op is ChangeOp.ADD:
            assert change.signal_type is not None and change.entry_id is not None
            entry = session.get(BankEntry, change.entry_id)
            if entry is not None and entry.enabled and (index := self.indexes.get(entry.signal_type)) is not None:
                with self._writing(index):
                    index.add(entry.id, entry.value)
        elif op is ChangeOp.ADD_RANGE:
            assert change.entry_id is not None and change.last_entry_id is not None
            for signal_type, index in self.indexes.items():
                rows = self._stream(
                    session,
                    BankEntry.bank_id == change.bank_id,
                    BankEntry.signal_type == signal_type,
                    BankEntry.id.between(change.entry_id, change.last_entry_id),
                )
                with self._writing(index):
                    index.add_many(rows)

    def start(self, interval: float) -> None:
        """Refresh on the shared worker loop until ``stop``; errors are kept for /status, never fatal."""
        self._refresher = Worker(self._refresh_round, interval, REFRESHER,
                                 on_error=self._refresh_failed)
        self._refresher.start()

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.stop()

    @property
    def rounds(self) -> Rounds:
        """How the refresher's rounds have gone (none before ``start``)."""
        return self._refresher.rounds if self._refresher is not None else Rounds(REFRESHER)

    def _refresh_round(self) -> None:
        self.refresh()
        self.freshness.errors.clear()

    def _refresh_failed(self, exc: Exception) -> None:
        # The database may be briefly away: keep serving what we have, and say why on /status.
        self.freshness.errors[:] = [f"{type(exc).__name__}: {exc}"]

    def lag(self) -> int:
        """How many logged changes this process has not applied yet (0 when current)."""
        with self._db.read() as session:
            latest = session.scalar(select(func.max(BankChange.id))) or 0
        return max(0, latest - self.freshness.applied_change_id)

    # --- matching ----------------------------------------------------------------------------------------------

    def match(self, queries: Iterable[Query], banks: set[str] | None = None) -> list[Match]:
        """Every enabled bank entry within its bank's threshold of a query signal, best first, each entry once.

        Restricted matches are included: what a caller may be told is ``matching.services.visible_matches``.
        """
        bank_infos = self.banks  # replaced, never changed in place
        candidates: dict[int, tuple[Query, int]] = {}
        for query in queries:
            signal_type = registry.get(query.signal.signal_type)
            if not signal_type.matchable(query.signal):
                continue
            threshold = self._widest_threshold(bank_infos, signal_type.name, banks)
            if threshold is None:
                continue
            index = self.indexes[signal_type.name]
            with self._reading(index):
                hits = index.query(query.signal.value, threshold)
            for hit in hits:
                best = candidates.get(hit.key)
                if best is None or (hit.distance, query.variant) < (best[1], best[0].variant):
                    candidates[hit.key] = (query, hit.distance)
        if not candidates:
            return []
        return self._resolve(candidates, bank_infos, banks)

    @staticmethod
    def _widest_threshold(bank_infos: dict[int, BankInfo], signal_type: str, banks: set[str] | None) -> int | None:
        live = [b for b in bank_infos.values() if b.enabled and (banks is None or b.name in banks)]
        return max((b.threshold(signal_type) for b in live), default=None)

    def _resolve(self, candidates: dict[int, tuple[Query, int]], bank_infos: dict[int, BankInfo],
                 banks: set[str] | None) -> list[Match]:
        with self._db.read() as session:
            rows = session.execute(
                select(BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.category)
                .where(BankEntry.id.in_(list(candidates)), BankEntry.enabled.is_(True))
            ).all()
        matches = []
        for entry_id, bank_id, signal_type, category in rows:
            bank = bank_infos.get(bank_id)
            query, distance = candidates[entry_id]
            if bank is None or not bank.enabled or (banks is not None and bank.name not in banks):
                continue
            if distance > bank.threshold(signal_type) or (query.variant and not bank.dihedral):
                continue
            matches.append(Match(bank.name, entry_id, signal_type, category, distance, query.signal.value,
                                 query.variant, bank.restricted or restricted_category(category)))
        return sorted(matches, key=lambda m: (m.distance, m.bank, m.entry_id))

    def wants_variants(self) -> bool:
        return any(b.enabled and b.dihedral for b in self.banks.values())

    def sizes(self) -> dict[str, int]:
        with self._lock.read():
            return {name: len(index) for name, index in self.indexes.items()}

    def memory(self) -> dict[str, int]:
        with self._lock.read():
            return {name: index.nbytes() for name, index in self.indexes.items()}


def _counted(rows: Iterable[tuple[int, str]], progress: Callable[[int], None] | None
             ) -> Iterator[tuple[int, str]]:
    """Pass rows through, reporting progress every ``_LOAD_BATCH`` rows."""
    n = 0
    for row in rows:
        yield row
        n += 1
        if progress and n % _LOAD_BATCH == 0:
            progress(_LOAD_BATCH)
    if progress and n % _LOAD_BATCH:
        progress(n % _LOAD_BATCH)

