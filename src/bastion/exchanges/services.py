"""Exchanges: configure one, fetch it into its bank page by page, report its state, send feedback.

A fetch applies each page in one transaction: the page's entries added and removed through matching's services (so
the change log moves and every matcher follows), the records' origins, and the exchange's new checkpoint. A crash
between two pages resumes from the last page committed; a page is applied by comparing what the record holds now
with what Bastion holds for it, so applying one twice changes nothing.

Restricted exchanges (NCMEC: child sexual abuse material; StopNCII: intimate images) feed restricted banks only,
and reveal nothing, not even that they exist, outside the child-safety roles.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from bastion.core.audit.services import AuditAction, record
from bastion.core.auth.roles import CHILD_SAFETY_ROLES, Role
from bastion.core.auth.services import Principal
from bastion.core.clock import Clock, SystemClock
from bastion.core.db import Database
from bastion.core.outbox.kinds import MessageKind
from bastion.core.outbox.services import body_key, enqueue
from bastion.exchanges import clients
from bastion.exchanges.interfaces import (
    RESTRICTED_KINDS,
    Batch,
    Contribution,
    ExchangeError,
    ExchangeExists,
    ExchangeKind,
    ExchangeNotFound,
    FeedbackTarget,
    FetchRaced,
    InvalidExchange,
    Opinion,
    RecordUpdate,
)
from bastion.exchanges.models import Exchange, ExchangeCursor
from bastion.matching import services as banks
from bastion.matching.interfaces import BankError
from bastion.matching.matcher import restricted_category
from bastion.matching.models import Bank, BankEntry, EntryOrigin
from bastion.moderation import queries as moderated

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,63}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
#: The principal a scheduled fetch acts as (named in the audit log).
SYSTEM = Principal("system", 0, "exchanges", Role.ADMIN)
MIN_INTERVAL_SECONDS = 60


class ExchangeMessage(MessageKind):
    """What Bastion sends to an exchange: feedback (``tasks.FeedbackSender``) and contributed hashes."""

    FEEDBACK = "exchange.feedback"
    #: A new hash shared with an exchange (a crisis's confirmed perpetrator content), by ``tasks.ContributionSender``.
    CONTRIBUTION = "exchange.contribution"


def source_of(name: str) -> str:
    """The ``source`` of entries an exchange added: only those does it remove again."""
    return f"exchange:{name}"


def can_see(exchange: Exchange, bank: Bank, viewer: Principal) -> bool:
    """A restricted exchange, or one feeding a restricted bank, is a child-safety matter."""
    restricted = bank.restricted or exchange.kind in RESTRICTED_KINDS
    return not restricted or viewer.role in CHILD_SAFETY_ROLES


def _visible(session: Session, name: str, viewer: Principal) -> tuple[Exchange, Bank]:
    """The exchange and its bank, or the same ``ExchangeNotFound`` whether it is missing or hidden from ``viewer``."""
    exchange = session.scalar(select(Exchange).where(Exchange.name == name))
    bank = session.get(Bank, exchange.bank_id) if exchange is not None else None
    if exchange is None or bank is None or not can_see(exchange, bank, viewer):
        raise ExchangeNotFound(f"no exchange named {name!r}")
    return exchange, bank


# --- configuration -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewExchange:
    """An exchange's settings, checked before anything is written."""

    name: str
    kind: ExchangeKind
    bank: str
    signal_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    entry_category: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    credentials_env: str = ""
    interval_seconds: int = 3600

    def checked(self) -> NewExchange:
        if not NAME.match(self.name):
            raise InvalidExchange("exchange names are 2-64 letters, digits, _ and -, starting with a letter")
        supported = clients.SIGNAL_TYPES[self.kind]
        types = tuple(dict.fromkeys(self.signal_types or supported))
        unknown = [t for t in types if t not in supported]
        if unknown:
            raise InvalidExchange(f"{self.kind.value} brings only {', '.join(supported)}; not {', '.join(unknown)}")
        settings = dict(self.settings)
        unknown_settings = sorted(set(settings) - {"privacy_group", "environment", "only_esp_ids", "base_url"})
        if unknown_settings:
            raise InvalidExchange(f"unknown settings: {', '.join(unknown_settings)}")
        for required in clients.REQUIRED_SETTINGS[self.kind]:
            if required not in settings:
                raise InvalidExchange(f"{self.kind.value} needs the setting {required}")
        if "privacy_group" in settings:
            group = str(settings["privacy_group"])
            if not group.isdigit():
                raise InvalidExchange("privacy_group is ThreatExchange's numeric privacy group id")
            settings["privacy_group"] = int(group)
        base_url = str(settings.get("base_url", ""))
        check_base_url(base_url)
        env = self.credentials_env or clients.DEFAULT_CREDENTIALS_ENV[self.kind]
        if not ENV_NAME.match(env):
            raise InvalidExchange("credentials_env is the name of an environment variable (A-Z, 0-9, _)")
        if env.startswith("BASTION_") and not env.startswith("BASTION_EXCHANGE_"):
            # Bastion's own secrets (the database URL, the media key) must never be sent to an exchange's URL.
            raise InvalidExchange("credentials_env may not name one of Bastion's own settings (BASTION_...); "
                                  "use TX_... or BASTION_EXCHANGE_...")
        if self.interval_seconds < MIN_INTERVAL_SECONDS:
            raise InvalidExchange(f"interval_seconds is at least {MIN_INTERVAL_SECONDS}")
        categories = tuple(c.strip() for c in self.categories if c.strip())
        if len(self.entry_category) > 64 or any(len(c) > 64 for c in categories):
            raise InvalidExchange("categories are at most 64 characters")
        return NewExchange(self.name, self.kind, self.bank, types, categories, self.entry_category.strip(),
                           settings, env, self.interval_seconds)


def check_base_url(base_url: str) -> None:
    """An http(s) URL with no query and no credentials: a ``user:pass@`` would be stored, shown to every operator
    and written to logs, while credentials live only in the environment variable ``credentials_env`` names."""
    if not base_url:
        return
    if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", base_url):
        raise InvalidExchange("base_url must be an http(s) URL with no query")
    if "@" in urllib.parse.urlsplit(base_url).netloc:
        raise InvalidExchange("base_url may not carry credentials (user:password@): name the environment variable "
                              "that holds them in credentials_env")


def add_exchange(db: Database, new: NewExchange, *, actor: Principal, clock: Clock | None = None) -> Exchange:
    """Configure an exchange. NCMEC's feeds a restricted bank only; the credentials stay in the environment."""
    clock = clock or SystemClock()
    new = new.checked()
    with db.write() as session:
        bank = banks.visible_bank(session, new.bank, actor)
        if new.kind in RESTRICTED_KINDS and not bank.restricted:
            raise InvalidExchange(f"{new.kind.value} shares material only child-safety roles may see: it feeds a "
                                  "restricted bank only")
        if new.kind in RESTRICTED_KINDS and actor.role not in CHILD_SAFETY_ROLES:
            raise ExchangeNotFound("no such exchange kind for this role")
        if session.scalar(select(Exchange.id).where(Exchange.name == new.name)) is not None:
            raise ExchangeExists(f"exchange {new.name} exists already")
        exchange = Exchange(
            name=new.name, kind=new.kind.value, bank_id=bank.id, signal_types=list(new.signal_types),
            categories=list(new.categories), entry_category=new.entry_category, settings=dict(new.settings),
            credentials_env=new.credentials_env, enabled=True, interval_seconds=new.interval_seconds,
            checkpoint=None, checkpoint_version=0, last_error="", records_fetched=0, entries_added=0,
            entries_removed=0, created_at=clock.now(), created_by=actor.actor)
        session.add(exchange)
        session.flush()
        record(db, session, actor=actor.actor, action=AuditAction.EXCHANGE_ADDED, subject=f"exchange:{new.name}",
               details={"kind": new.kind.value, "bank": bank.name, "signal_types": list(new.signal_types),
                        "categories": list(new.categories), "credentials_env": new.credentials_env}, clock=clock)
        return exchange


def set_enabled(db: Database, name: str, enabled: bool, *, actor: Principal, clock: Clock | None = None) -> None:
    update_exchange(db, name, actor=actor, enabled=enabled, clock=clock)


def update_exchange(db: Database, name: str, *, actor: Principal, enabled: bool | None = None,
                    interval_seconds: int | None = None, categories: Sequence[str] | None = None,
                    entry_category: str | None = None, refetch: bool = False, clock: Clock | None = None) -> None:
    """Change an exchange's schedule or filters. ``refetch`` forgets the checkpoint, so the next fetch reads every
    record again and applies the filters as they are now (records no longer taken leave the bank)."""
    clock = clock or SystemClock()
    with db.write() as session:
        exchange, _ = _visible(session, name, actor)
        current = NewExchange(exchange.name, ExchangeKind(exchange.kind), "", tuple(exchange.signal_types),
                              tuple(exchange.categories) if categories is None else tuple(categories),
                              exchange.entry_category if entry_category is None else entry_category,
                              dict(exchange.settings), exchange.credentials_env,
                              exchange.interval_seconds if interval_seconds is None else interval_seconds).checked()
        changed: dict[str, object] = {}
        if enabled is not None and enabled != exchange.enabled:
            exchange.enabled = changed["enabled"] = enabled
        if current.interval_seconds != exchange.interval_seconds:
            exchange.interval_seconds = changed["interval_seconds"] = current.interval_seconds
        if list(current.categories) != list(exchange.categories):
            exchange.categories = list(current.categories)
            changed["categories"] = list(current.categories)
        if current.entry_category != exchange.entry_category:
            exchange.entry_category = changed["entry_category"] = current.entry_category
        if refetch and exchange.checkpoint is not None:
            exchange.checkpoint = None
            exchange.checkpoint_version += 1  # a fetch in progress stops at its next page
            changed["refetch"] = True
        if changed:
            record(db, session, actor=actor.actor, action=AuditAction.EXCHANGE_UPDATED, subject=f"exchange:{name}",
                   details=changed, clock=clock)


@dataclass(frozen=True)
class ExchangeStatus:
    """What an operator sees of an exchange: settings (never the credentials), last fetch, counts, error."""

    name: str
    kind: str
    bank: str
    restricted: bool
    enabled: bool
    signal_types: list[str]
    categories: list[str]
    entry_category: str
    settings: dict[str, Any]
    credentials_env: str
    credentials_present: bool
    interval_seconds: int
    fetched: bool
    progress: int | None
    last_fetch_at: str | None
    last_success_at: str | None
    last_error: str
    records_fetched: int
    entries_added: int
    entries_removed: int
    entries: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _status(session: Session, exchange: Exchange, bank: Bank, env: Mapping[str, str]) -> ExchangeStatus:
    entries = session.scalar(select(func.count(func.distinct(EntryOrigin.entry_id)))
                             .where(EntryOrigin.exchange == exchange.name)) or 0
    checkpoint = exchange.checkpoint or {}
    progress = checkpoint.get("update_time") or checkpoint.get("get_entries_max_ts")
    return ExchangeStatus(
        exchange.name, exchange.kind, bank.name, bank.restricted or exchange.kind in RESTRICTED_KINDS,
        exchange.enabled, list(exchange.signal_types), list(exchange.categories), exchange.entry_category,
        dict(exchange.settings), exchange.credentials_env, bool(env.get(exchange.credentials_env)),
        exchange.interval_seconds, exchange.checkpoint is not None, int(progress) if progress else None,
        exchange.last_fetch_at.isoformat() if exchange.last_fetch_at else None,
        exchange.last_success_at.isoformat() if exchange.last_success_at else None,
        exchange.last_error, exchange.records_fetched, exchange.entries_added, exchange.entries_removed, entries)


def list_exchanges(db: Database, viewer: Principal, env: Mapping[str, str] | None = None) -> list[ExchangeStatus]:
    """The exchanges ``viewer`` may see, by name: restricted ones only for the child-safety roles."""
    env = os.environ if env is None else env
    with db.read() as session:
        rows = session.execute(select(Exchange, Bank).join(Bank, Bank.id == Exchange.bank_id)
                               .order_by(Exchange.name)).all()
        return [_status(session, ex, bank, env) for ex, bank in rows if can_see(ex, bank, viewer)]


def exchange_status(db: Database, name: str, viewer: Principal,
                    env: Mapping[str, str] | None = None) -> ExchangeStatus:
    env = os.environ if env is None else env
    with db.read() as session:
        exchange, bank = _visible(session, name, viewer)
        return _status(session, exchange, bank, env)


# --- fetching ------------------------------------------------------------------------------------------------------


@dataclass
class FetchResult:
    pages: int = 0
    records: int = 0
    added: int = 0
    removed: int = 0
    skipped: int = 0
    #: False when ``max_pages`` stopped it before the exchange said it was up to date.
    complete: bool = True


def config_of(exchange: Exchange) -> clients.Config:
    check_base_url(str(exchange.settings.get("base_url") or ""))  # a row written before the rule: nothing is sent
    return clients.Config(exchange.name, ExchangeKind(exchange.kind), dict(exchange.settings),
                          tuple(exchange.signal_types), tuple(exchange.categories), exchange.entry_category)


def credentials_of(exchange: Exchange, env: Mapping[str, str]) -> str:
    value = env.get(exchange.credentials_env, "")
    if not value.strip():
        raise InvalidExchange(f"the credentials of exchange {exchange.name} are not set: set the environment "
                              f"variable {exchange.credentials_env} for the fetching process")
    return value


def fetch(db: Database, name: str, *, actor: Principal, clock: Clock | None = None,
          env: Mapping[str, str] | None = None, progress: Callable[[int], None] | None = None,
          max_pages: int | None = None,
          client_factory: Callable[[clients.Config, str], clients.ExchangeClient] = clients.client_for,
          ) -> FetchResult:
    """Fetch from the exchange's checkpoint until it is up to date (or ``max_pages``), one transaction a page.

    An error is recorded on the exchange (``last_error``, without credentials) and raised as ``FetchFailed``;
    the pages committed before it stay, and the next fetch resumes after them.
    """
    clock = clock or SystemClock()
    env = os.environ if env is None else env
    with db.read() as session:
        exchange, _ = _visible(session, name, actor)
        exchange_id, version, checkpoint = exchange.id, exchange.checkpoint_version, exchange.checkpoint
        config = config_of(exchange)
        try:
            credentials = credentials_of(exchange, env)
        except InvalidExchange as exc:
            missing: InvalidExchange | None = exc
        else:
            missing = None
    if missing is not None:  # shown on the exchange, so a scheduled fetch that cannot start says why
        _failed(db, exchange_id, str(missing), clock)
        raise missing
    result = FetchResult()
    pages = _pages(db, exchange_id, config, credentials, checkpoint, client_factory, clock)
    for batch in pages:
        with db.write() as session:
            moved = session.execute(
                update(Exchange).where(Exchange.id == exchange_id, Exchange.checkpoint_version == version)
                .values(checkpoint=batch.checkpoint, checkpoint_version=version + 1, last_fetch_at=clock.now()))
            if getattr(moved, "rowcount", 0) != 1:
                raise FetchRaced(f"another fetch of exchange {name} moved its checkpoint: this one stops")
            row = session.get(Exchange, exchange_id)
            bank = session.get(Bank, row.bank_id) if row is not None else None
            assert row is not None and bank is not None
            page = FetchResult()
            _apply(db, session, row, bank, batch.records, actor=SYSTEM, clock=clock, result=page)
            row.records_fetched += len(batch.records)
            row.entries_added += page.added
            row.entries_removed += page.removed
            if page.added or page.removed:
                record(db, session, actor=actor.actor, action=AuditAction.EXCHANGE_FETCHED,
                       subject=f"exchange:{name}", details={"records": len(batch.records), "added": page.added,
                                                            "removed": page.removed}, clock=clock)
        version += 1
        result.pages += 1
        result.records += len(batch.records)
        result.added += page.added
        result.removed += page.removed
        result.skipped += page.skipped
        if progress is not None:
            progress(len(batch.records))
        if max_pages is not None and result.pages >= max_pages:
            result.complete = False
            break
    with db.write() as session:
        session.execute(update(Exchange).where(Exchange.id == exchange_id)
                        .values(last_fetch_at=clock.now(), last_success_at=clock.now(), last_error=""))
    return result


def _pages(db: Database, exchange_id: int, config: clients.Config, credentials: str,
           checkpoint: dict[str, Any] | None,
           client_factory: Callable[[clients.Config, str], clients.ExchangeClient], clock: Clock) -> Iterator[Batch]:
    """The client's pages; what goes wrong in the client (not in applying a page: that is Bastion's own error and
    propagates as it is) is recorded on the exchange and raised as an ``ExchangeError`` without credentials."""
    try:
        iterator = iter(client_factory(config, credentials).batches(checkpoint))
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            yield batch
    except GeneratorExit:
        raise
    except ExchangeError as exc:
        _failed(db, exchange_id, str(exc), clock)
        raise
    except Exception as exc:  # requests' errors name the URL, which may hold a token: never passed on
        failure = clients.http_failure(config.kind.value, exc)
        _failed(db, exchange_id, str(failure), clock)
        raise failure from None


def _failed(db: Database, exchange_id: int, error: str, clock: Clock) -> None:
    with db.write() as session:
        session.execute(update(Exchange).where(Exchange.id == exchange_id)
                        .values(last_fetch_at=clock.now(), last_error=error[:500]))


def _apply(db: Database, session: Session, exchange: Exchange, bank: Bank, updates: Sequence[RecordUpdate], *,
           actor: Principal, clock: Clock, result: FetchResult) -> None:
    """Make the bank hold what a page's records hold now: new signals added (or linked, when the bank has the value
    already), signals a record no longer has unlinked, and an entry this exchange added removed with its last origin.

    A page at a time, in a few statements: the records' origins read at once, the new entries inserted as a batch
    (one ``add_range`` change-log row), the new origins inserted together."""
    source = source_of(exchange.name)
    wanted: dict[str, dict[tuple[str, bytes], banks.NewEntry]] = {}
    details: dict[str, str] = {}
    for update_ in updates:
        want = wanted.setdefault(update_.key, {})
        details[update_.key] = update_.detail
        for signal in update_.signals:
            try:
                new = banks.NewEntry.parse(signal.signal_type, signal.value, category=signal.category, source=source)
            except BankError:
                result.skipped += 1
                continue
            want[(new.signal_type, banks.value_digest(new.value))] = new
    held: dict[str, dict[tuple[str, bytes], tuple[EntryOrigin, BankEntry]]] = {}
    for chunk in _chunks(list(wanted)):
        for origin, entry in session.execute(
                select(EntryOrigin, BankEntry).join(BankEntry, BankEntry.id == EntryOrigin.entry_id)
                .where(EntryOrigin.exchange == exchange.name, EntryOrigin.record.in_(chunk))):
            held.setdefault(origin.record, {})[(entry.signal_type, entry.value_digest)] = (origin, entry)
    orphans: dict[int, BankEntry] = {}
    for key, have in held.items():
        for signal_key, (origin, entry) in have.items():
            new_ = wanted[key].get(signal_key)
            if new_ is not None and restricted_category(new_.category) and not bank.restricted:
                new_ = None  # now child sexual abuse material: it leaves the open bank, as a new one never enters it
            if new_ is not None:
                origin.detail = details[key]
                if entry.source == source and entry.category != new_.category:
                    entry.category = new_.category
                continue
            session.delete(origin)
            if entry.source == source:
                orphans[entry.id] = entry
    session.flush()
    for entry_id in sorted(orphans):
        if not session.scalar(select(func.count()).where(EntryOrigin.entry_id == entry_id)):
            banks.remove_entry_in(db, session, bank, entry_id, actor=actor, clock=clock)
            result.removed += 1
    links = [(key, signal_key, new) for key, want in wanted.items() for signal_key, new in want.items()
             if signal_key not in held.get(key, {})]
    if not links:
        return
    ids = _entry_ids(session, bank, {signal_key for _, signal_key, _ in links})
    missing: dict[tuple[str, bytes], banks.NewEntry] = {}
    for _, signal_key, new in links:
        if signal_key not in ids and signal_key not in missing:
            if restricted_category(new.category) and not bank.restricted:
                continue  # child sexual abuse material never goes into an open bank: skipped below
            missing[signal_key] = new
    if missing:
        result.added += banks.add_entries_in(db, session, bank, list(missing.values()), actor=actor, clock=clock,
                                             why=source)
        ids.update(_entry_ids(session, bank, set(missing)))
    now = clock.now()
    rows = [{"entry_id": ids[signal_key], "exchange": exchange.name, "record": key, "detail": details[key], "at": now}
            for key, signal_key, _ in links if signal_key in ids]
    result.skipped += len(links) - len(rows)
    if rows:
        session.execute(insert(EntryOrigin), rows)


def _chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _entry_ids(session: Session, bank: Bank, keys: set[tuple[str, bytes]]) -> dict[tuple[str, bytes], int]:
    """The bank's entry ids of these (signal type, value digest) pairs, where it holds them."""
    found: dict[tuple[str, bytes], int] = {}
    for chunk in _chunks(sorted({digest for _, digest in keys})):
        for entry_id, signal_type, digest in session.execute(
                select(BankEntry.id, BankEntry.signal_type, BankEntry.value_digest)
                .where(BankEntry.bank_id == bank.id, BankEntry.value_digest.in_(chunk))):
            if (signal_type, digest) in keys:
                found[(signal_type, digest)] = entry_id
    return found


# --- schedule ------------------------------------------------------------------------------------------------------


def due(db: Database, now_ts: float) -> list[str]:
    """Enabled exchanges whose interval has passed since their last fetch (or that never fetched)."""
    with db.read() as session:
        rows = session.scalars(select(Exchange).where(Exchange.enabled.is_(True)).order_by(Exchange.id)).all()
        return [ex.name for ex in rows
                if ex.last_fetch_at is None or ex.last_fetch_at.timestamp() + ex.interval_seconds <= now_ts]


def tick(db: Database, clock: Clock, env: Mapping[str, str] | None = None, *, max_pages: int = 100) -> bool:
    """One scheduler round: fetch each due exchange (at most ``max_pages`` each, so one big backlog does not hold
    the others); a failure is recorded on its exchange and the round goes on. True when one has more waiting."""
    if not clients.available():
        return False
    feedback_from_decisions(db, clock)
    more = False
    for name in due(db, clock.now().timestamp()):
        try:
            result = fetch(db, name, actor=SYSTEM, clock=clock, env=env, max_pages=max_pages)
        except ExchangeError:
            continue
        more = more or not result.complete
    return more


# --- feedback ------------------------------------------------------------------------------------------------------


def send_feedback(db: Database, entry_id: int, opinion: Opinion, *, actor: Principal,
                  clock: Clock | None = None) -> list[str]:
    """Queue ``opinion`` on the entry for every exchange it came from that takes it; returns those exchanges.

    Written to the outbox in this transaction and delivered after (``tasks.FeedbackSender``); the key makes a
    repeated request queue nothing more.
    """
    clock = clock or SystemClock()
    with db.write() as session:
        entry = session.get(BankEntry, entry_id)
        bank = session.get(Bank, entry.bank_id) if entry is not None else None
        if entry is None or bank is None or not banks.can_see(bank, actor):
            raise ExchangeNotFound(f"no bank entry {entry_id}")
        queued: list[str] = []
        refused: list[str] = []
        rows = session.execute(select(EntryOrigin, Exchange).join(Exchange, Exchange.name == EntryOrigin.exchange)
                               .where(EntryOrigin.entry_id == entry_id).order_by(EntryOrigin.id)).all()
        for origin, exchange in rows:
            if opinion not in clients.OPINIONS[ExchangeKind(exchange.kind)]:
                refused.append(exchange.name)
                continue
            payload = {"exchange": exchange.name, "record": origin.record, "detail": origin.detail,
                       "signal_type": entry.signal_type, "value": entry.value, "opinion": opinion.value}
            enqueue(session, kind=ExchangeMessage.FEEDBACK, destination=source_of(exchange.name), payload=payload,
                    idempotency_key=feedback_key(origin.id, opinion, payload), clock=clock, strict=True)
            queued.append(exchange.name)
        if not queued:
            why = (f"{', '.join(refused)} take no {opinion.value} feedback" if refused
                   else "the entry came from no exchange")
            raise InvalidExchange(f"nothing to send for entry {entry_id}: {why}")
        record(db, session, actor=actor.actor, action=AuditAction.EXCHANGE_FEEDBACK, subject=f"bank:{bank.name}",
               details={"entry_id": entry_id, "opinion": opinion.value, "exchanges": queued}, clock=clock)
        return queued


def feedback_key(origin_id: int, opinion: Opinion, payload: dict[str, Any]) -> str:
    """One message per origin, opinion and body: asked twice, it is sent once; the record's descriptors changed
    since (a new ``detail``), the opinion goes to the new ones too, where a key without the body dropped it."""
    return body_key(f"exchange-feedback:{origin_id}:{opinion.value}", payload)


#: A moderator's decision on a content that matched an exchange's entry, as the opinion sent back.
DECISION_OPINIONS = {True: Opinion.TRUE_POSITIVE, False: Opinion.FALSE_POSITIVE}
DECISIONS_CURSOR = "decisions"


def feedback_from_decisions(db: Database, clock: Clock, *, limit: int = 200) -> int:
    """Turn moderators' decisions on matched uploads into feedback: a violation confirms the matched entries' records
    (true positive), no violation disputes them (false positive), for every exchange they came from that takes it.

    Reads the moderation log from a cursor and moves it in the same transaction as the messages it queues: a crash
    queues nothing twice (the idempotency key would refuse it anyway) and skips nothing.
    Returns how many decisions with matches it read.
    """
    with db.write() as session:
        cursor = session.get(ExchangeCursor, DECISIONS_CURSOR, with_for_update=True)
        if cursor is None:
            cursor = ExchangeCursor(name=DECISIONS_CURSOR, position=0)
            session.add(cursor)
            session.flush()
        found, last = moderated.decisions_on_matches(session, cursor.position, limit)
        for decision in found:
            opinion = DECISION_OPINIONS[decision.violation]
            rows = session.execute(
                select(EntryOrigin, Exchange, BankEntry).join(Exchange, Exchange.name == EntryOrigin.exchange)
                .join(BankEntry, BankEntry.id == EntryOrigin.entry_id)
                .where(EntryOrigin.entry_id.in_(decision.entry_ids)).order_by(EntryOrigin.id)).all()
            for origin, exchange, entry in rows:
                if opinion not in clients.OPINIONS[ExchangeKind(exchange.kind)]:
                    continue
                payload = {"exchange": exchange.name, "record": origin.record, "detail": origin.detail,
                           "signal_type": entry.signal_type, "value": entry.value, "opinion": opinion.value}
                enqueue(session, kind=ExchangeMessage.FEEDBACK, destination=source_of(exchange.name),
                        payload=payload, idempotency_key=feedback_key(origin.id, opinion, payload), clock=clock,
                        strict=True)
        cursor.position = last
        return len(found)


def feedback_target(payload: Mapping[str, Any]) -> FeedbackTarget:
    return FeedbackTarget(str(payload["record"]), str(payload.get("detail", "")), str(payload["signal_type"]),
                          str(payload["value"]), Opinion(str(payload["opinion"])))



class HmaDirectory:
    """The exchanges as HMA's ``/c/exchanges`` and ``/c/exchange/<name>`` show them (``hma.interfaces``'s
    ``ExchangeDirectory``): names, the APIs this server can fetch, one exchange's settings and state."""

    def __init__(self, db: Database, env: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.env = env

    def names(self, viewer: Principal) -> list[str]:
        return [s.name for s in list_exchanges(self.db, viewer, self.env)]

    def apis(self) -> list[str]:
        return [kind.value for kind in ExchangeKind] if clients.available() else []

    def describe(self, name: str, viewer: Principal) -> dict[str, Any] | None:
        try:
            status = exchange_status(self.db, name, viewer, self.env)
        except ExchangeNotFound:
            return None
        return {"name": status.name, "api": status.kind, "enabled": status.enabled, "bank": status.bank,
                "api_json": status.settings, "fetch_status": {
                    "last_fetch_complete_ts": status.last_success_at, "last_fetch_succeeded": not status.last_error,
                    "checkpoint_ts": status.progress, "fetched_items": status.records_fetched}}


# --- contributions (a crisis's hashes shared with exchanges) ----------------------------------------------------------


def _contributing(session: Session, name: str) -> Exchange:
    """An exchange hashes may be shared with: it exists, it takes contributions, and it is no child-safety matter
    (a restricted kind, or one feeding a restricted bank, is answered as missing: the same words either way)."""
    exchange = session.scalar(select(Exchange).where(Exchange.name == name))
    bank = session.get(Bank, exchange.bank_id) if exchange is not None else None
    if exchange is None or bank is None or bank.restricted or exchange.kind in RESTRICTED_KINDS:
        raise ExchangeNotFound(f"no exchange named {name!r} that takes shared hashes")
    if ExchangeKind(exchange.kind) not in clients.CONTRIBUTES:
        raise InvalidExchange(f"exchange {name} ({exchange.kind}) takes no shared hashes; only "
                              f"{', '.join(k.value for k in clients.CONTRIBUTES)} do")
    return exchange


class CrisisSharing:
    """Shares a crisis's confirmed perpetrator content with the exchanges an admin named for it (``feed``'s
    ``HashSharing``, wired in ``web/app.py``: feed never imports this domain).

    Fail closed: only the exchanges named, only kinds that take contributions, never a child-safety exchange, and
    never a hash that is child sexual abuse material (from a restricted bank, or of a restricted category) to any of
    them. Each hash is an outbox message in the caller's transaction, keyed by exchange, crisis and body.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()

    def check_targets(self, session: Session, names: Sequence[str]) -> list[str]:
        """The names, deduplicated, each an exchange that takes shared hashes (else ``ExchangeNotFound``/422)."""
        found = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        for name in found:
            _contributing(session, name)
        return found

    def queue(self, session: Session, *, subject: str, names: Sequence[str],
              hashes: Sequence[tuple[str, str, str, bool]], tags: Sequence[str], description: str) -> list[str]:
        """Queue each ``(signal type, value, category, from a restricted bank)`` hash to each exchange that takes
        its type; returns what was done, in words for the crisis timeline (``"te: 2 queued"``)."""
        said: list[str] = []
        for name in names:
            try:
                exchange = _contributing(session, name)
            except ExchangeError as exc:
                said.append(f"{name}: not sent ({exc})")
                continue
            takes = set(clients.CONTRIBUTES[ExchangeKind(exchange.kind)]) & set(exchange.signal_types)
            queued = refused = 0
            withheld = any(restricted_category(t) for t in tags)
            for signal_type, value, category, restricted in hashes:
                if withheld or restricted or restricted_category(category):
                    refused += 1  # child sexual abuse material: never to an exchange a crisis shares with
                    continue
                if signal_type not in takes:
                    said.append(f"{name}: {signal_type} not taken")
                    continue
                payload = {"exchange": name, "subject": subject, "signal_type": signal_type, "value": value,
                           "tags": list(tags), "description": description}
                enqueue(session, kind=ExchangeMessage.CONTRIBUTION, destination=source_of(name), payload=payload,
                        idempotency_key=body_key(f"exchange-contribution:{name}:{subject}", payload),
                        clock=self.clock, strict=True)
                queued += 1
            said.append(f"{name}: {queued} queued" + (f", {refused} withheld (restricted)" if refused else ""))
        return said


def contribution_of(payload: Mapping[str, Any]) -> Contribution:
    return Contribution(str(payload["signal_type"]), str(payload["value"]),
                        tuple(str(t) for t in payload.get("tags", [])), str(payload.get("description", "")))
